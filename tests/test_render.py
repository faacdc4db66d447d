"""How answers and citations look: one citation form everywhere, `qa show` following every form
qa prints, no wrapping off a terminal, hanging indents on one (in a real pty, at 80 and 160 columns)."""
from __future__ import annotations

import csv
import io
import json
import os
import re
import sys
from pathlib import Path

import pexpect
import pytest
from rich.console import Console

from qa import render
from qa.chat import run
from qa.errors import ExitStatus
from qa.types import Answer, Citation, Result

from conftest import FAST_MODEL, run_qa

ENVOY = "Whose positive reaction to the start of the Russian-Syrian humanitarian operation in Aleppo did Borodavkin welcome?"
QUESTIONS = [ENVOY, "Where did Russian and US experts begin consultations on Aleppo?",
             "In how many areas does Bogdanov want work on Syria to proceed in parallel without preconditions?"]
REF = re.compile(r"\S+\.txt:\d+:\d+-\d+")  # PATH:LINE:START-END
ANSI = re.compile(r"\x1b(\[[0-9;?]*[ -/]*[@-~]|[()][0-9A-Za-z]|[=>])")


def visible(text: str) -> str:
    return ANSI.sub("", text).replace("\r", "")


def refs_of(record: dict) -> list[str]:
    """Every citation of an answer record, in the one form, built from the record's own fields."""
    out = []
    for a in record["answers"]:
        s = a["source"]
        out.append(f"{s['path']}:{s['line']}:{s['start']}-{s['end']}")
        out += [f"{c['path']}:{c['line']}:{c['start']}-{c['end']}" for c in a["supporting"]]
    return out


def in_pty(folder: Path, args: list[str], columns: int, colour: bool = False) -> str:
    env = {**os.environ, "QA_MODEL": FAST_MODEL, "TERM": "xterm-256color", "PROMPT_TOOLKIT_NO_CPR": "1"}
    for name in ("QA_INDEX", "QA_CORPUS", "NO_COLOR", "FORCE_COLOR", "COLUMNS", "LINES"):
        env.pop(name, None)
    if not colour:
        env["NO_COLOR"] = "1"
    child = pexpect.spawn(sys.executable, ["-m", "qa", *args], cwd=str(folder), env=env, encoding="utf-8",
                          timeout=60, dimensions=(60, columns))
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, child.before
    return child.before.replace("\r\n", "\n")


@pytest.fixture(scope="module")
def records(indexed_workdir):
    out = {}
    for q in QUESTIONS:
        done = run_qa("ask", q, "--json", "-k", "3", cwd=indexed_workdir)
        assert done.returncode == 0, done.stderr
        out[q] = json.loads(done.stdout)
    return out


# ---------------------------------------------------------------------------- one citation form


def test_ask_prints_every_citation_in_the_one_form(indexed_workdir, records):
    for q, record in records.items():
        done = run_qa("ask", q, "-k", "3", cwd=indexed_workdir)
        printed = REF.findall(done.stdout)
        assert printed == refs_of(record), q


def test_batch_csv_and_markdown_cite_in_the_same_form(indexed_workdir, records, tmp_path):
    questions = tmp_path / "q.txt"
    questions.write_text("\n".join(QUESTIONS) + "\n", encoding="utf-8")
    for ext in ("csv", "md"):
        out = tmp_path / f"out.{ext}"
        done = run_qa("batch", questions, "-o", out, cwd=indexed_workdir)
        assert done.returncode == 0, done.stderr
        text = out.read_text(encoding="utf-8")
        for q in QUESTIONS:
            record = records[q]
            if not record["abstained"]:
                assert refs_of(record)[0] in text, (ext, q)
        if ext == "csv":
            sources = [row["source"] for row in csv.DictReader(io.StringIO(text)) if row["source"]]
            assert sources and all(REF.fullmatch(s) for s in sources)


def test_chat_cites_in_the_same_form(indexed_workdir, records):
    done = run_qa("chat", cwd=indexed_workdir, input=ENVOY + "\n:sources\n")
    assert done.returncode == 0, done.stderr
    assert REF.findall(done.stdout)[0] == refs_of(records[ENVOY])[0]
    assert not re.search(r"\.txt:\d+ \[\d+-\d+\]", done.stdout)  # the old two-part form is gone


# ---------------------------------------------------------------------------- qa show


def every_printed_form(record: dict) -> list[str]:
    """The top citation as each place prints or printed it, verbatim."""
    a = record["answers"][0]
    s = a["source"]
    ref = f"{s['path']}:{s['line']}:{s['start']}-{s['end']}"
    meta = " · ".join(x for x in (s.get("date"), s.get("title")) if x)
    return [
        ref,  # ask, chat, batch CSV and Markdown
        f"{ref}  {meta}" if meta else ref,  # the whole citation line of `qa ask`, as copied
        f"{ref},",  # one entry of an `also:` list, copied with its comma
        f"{s['path']}:{s['line']} [{s['start']}-{s['end']}]",  # the form qa printed before
        f"{s['path']}:{s['start']}-{s['end']}",  # offsets alone, as batch CSV printed them
        f"{s['path']}:{s['line']}",  # a line
    ]


def test_show_follows_every_printed_form_verbatim(indexed_workdir, records):
    record = records[ENVOY]
    a = record["answers"][0]
    s = a["source"]
    for form in every_printed_form(record):
        done = run_qa("show", form, cwd=indexed_workdir)
        assert done.returncode == 0, (form, done.stderr)
        lines = done.stdout.splitlines()
        assert lines[0].startswith(f"{s['path']}:{s['line']}:"), (form, lines[0])  # names the cited line
        cited = [line for line in lines if line.startswith(">")]
        assert cited and cited[0].startswith(f"> {s['line']} │"), (form, lines)
        if "-" in form.rsplit(":", 1)[-1] or "[" in form:
            assert f"[[{a['answer']}]]" in done.stdout, form  # the span, visible without colour


def test_show_marks_the_span_in_reverse_on_a_colour_terminal_and_with_brackets_otherwise(indexed_workdir, records):
    ref = every_printed_form(records[ENVOY])[0]
    answer = records[ENVOY]["answers"][0]["answer"]
    coloured = in_pty(indexed_workdir, ["show", ref], 100, colour=True)
    assert "[[" not in coloured and re.search(r"\x1b\[[0-9;]*7[0-9;]*m" + re.escape(answer.split()[0]), coloured)
    plain = in_pty(indexed_workdir, ["show", ref], 100, colour=False)
    assert f"[[{answer}]]" in re.sub(r"\n +", " ", visible(plain))  # continuations hang under the gutter


def test_show_gutter_numbers_every_line_and_flags_the_cited_one(indexed_workdir, records):
    s = records[ENVOY]["answers"][0]["source"]
    done = run_qa("show", f"{s['path']}:{s['line']}:{s['start']}-{s['end']}", "-C", "2", cwd=indexed_workdir)
    body = done.stdout.splitlines()[1:]
    numbers = [int(re.match(r"[> ] +(\d+) │", line).group(1)) for line in body]
    assert numbers == list(range(max(1, s["line"] - 2), max(1, s["line"] - 2) + len(numbers)))
    assert s["line"] in numbers


@pytest.mark.parametrize("make,needle", [
    (lambda s: f"{s['path']}:{s['end']}-{s['start']}", "ends before it starts"),
    (lambda s: f"{s['path']}:{s['line'] + 1}:{s['start']}-{s['end']}", "not line"),
    (lambda s: f"{s['path']}:999999", "there is no line 999999"),
    (lambda s: f"{s['path']}:1:99999999-99999999", "past the end"),
    (lambda s: "seeds/nope.txt:1:2-3", "no such file"),
])
def test_show_refuses_a_citation_that_does_not_fit_in_one_line(indexed_workdir, records, make, needle):
    done = run_qa("show", make(records[ENVOY]["answers"][0]["source"]), cwd=indexed_workdir)
    assert done.returncode == ExitStatus.BAD_INPUT and needle in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "outside" not in done.stderr


def test_chat_open_and_show_share_one_renderer(indexed_workdir, records):
    """:open N and `qa show` of the same citation print the same gutter and marks."""
    chat = run_qa("chat", cwd=indexed_workdir, input=f"{ENVOY}\n:open 1\n")
    opened = chat.stdout.split("\n")
    start = next(i for i, line in enumerate(opened) if line.startswith(tuple(REF.findall(chat.stdout)[:1])) and i > 0)
    s = records[ENVOY]["answers"][0]["source"]
    shown = run_qa("show", f"{s['path']}:{s['line']}:{s['start']}-{s['end']}", "-C", "2", cwd=indexed_workdir)
    body = shown.stdout.splitlines()[1:]
    assert opened[start + 1 : start + 1 + len(body)] == body
    assert any(line.startswith(">") and "[[" in line for line in body)


# ---------------------------------------------------------------------------- wrapping


def test_piped_output_is_never_wrapped_and_no_line_ends_in_spaces(indexed_workdir, records):
    for q, record in records.items():
        done = run_qa("ask", q, "-k", "3", cwd=indexed_workdir)
        assert done.returncode == 0
        lines = done.stdout.split("\n")
        assert not [line for line in lines if line != line.rstrip()]  # `cat -A` would show no " $"
        for a in record["answers"]:
            # The sentence (or its excerpt) sits on one line, never split.
            assert any(a["answer"] in line and line.startswith("   ") for line in lines), a["answer"]
        for also in (line for line in lines if line.startswith("   also: ")):
            assert also.count(", ") + 1 == len(REF.findall(also))  # the whole list on its one line


def test_cat_dash_a_shows_whole_lines(indexed_workdir, tmp_path):
    """The issue's own check: `qa ask … | cat -A` ends every line in $ straight after text."""
    import subprocess

    env = {**os.environ, "QA_MODEL": FAST_MODEL}
    env.pop("QA_INDEX", None)
    env.pop("QA_CORPUS", None)
    shown = subprocess.run(f"{sys.executable} -m qa ask \"{ENVOY}\" -k 3 | cat -A", shell=True, cwd=indexed_workdir,
                           env=env, capture_output=True, text=True, timeout=120).stdout
    assert shown and all(line.endswith("$") and not line.endswith(" $") for line in shown.splitlines())
    assert max(len(line) for line in shown.splitlines()) > 81  # longer than a terminal: not wrapped


@pytest.mark.parametrize("columns", [80, 160])
def test_terminal_lines_wrap_at_words_and_hang_under_their_text(indexed_workdir, records, columns):
    for q, record in records.items():
        shown = [line for line in visible(in_pty(indexed_workdir, ["ask", q, "-k", "3"], columns)).split("\n") if line]
        assert all(len(line) <= columns for line in shown), max(shown, key=len)
        assert not [line for line in shown if line != line.rstrip()]
        for ref in refs_of(record):  # every citation whole, on one line, however its list wrapped
            assert any(ref in line for line in shown), (columns, ref)
        for i, line in enumerate(shown):
            if line.startswith("   “"):  # the sentence: continuations under its first letter, column 4
                for more in shown[i + 1:]:
                    if REF.match(more.strip()) and more.startswith("   " + more.strip()[:1]):
                        break  # the citation line below the sentence
                    assert re.match(r"    \S", more), (columns, more)
            if line.startswith("   also: "):  # continuations under the first citation, column 9
                for more in shown[i + 1:]:
                    if not more.startswith(" " * 9):
                        break
                    assert re.match(r" {9}\S", more) and REF.match(more.strip()), (columns, more)
        joined = " ".join(line.strip() for line in shown)  # words come back whole when lines are joined
        for a in record["answers"]:
            assert a["answer"] in joined


def test_wide_terminal_uses_its_width(indexed_workdir):
    shown = visible(in_pty(indexed_workdir, ["ask", ENVOY, "-k", "3"], 160)).split("\n")
    assert max(len(line) for line in shown) > 80


@pytest.mark.parametrize("columns", [80, 160])
def test_chat_banner_breaks_between_words(indexed_workdir, tmp_path, columns):
    env = {**os.environ, "QA_MODEL": FAST_MODEL, "NO_COLOR": "1", "QA_HISTORY": str(tmp_path / "h"),
           "TERM": "xterm", "PROMPT_TOOLKIT_NO_CPR": "1"}
    env.pop("QA_INDEX", None)
    env.pop("QA_CORPUS", None)
    child = pexpect.spawn(sys.executable, ["-m", "qa", "chat"], cwd=str(indexed_workdir), env=env, encoding="utf-8",
                          timeout=60, dimensions=(40, columns))
    child.expect("qa>")  # the prompt, after the banner
    banner = [line for line in visible(child.before).strip().split("\n") if line.strip()]
    child.sendcontrol("d")
    child.expect(pexpect.EOF)
    assert all(len(line) <= columns for line in banner)
    words = " ".join(line.strip() for line in banner).split()
    assert "documents," in words and "passages," in words and "commands," in words and words[-1] == "quit"
    if columns == 80:
        assert len(banner) == 2  # it did wrap, at a space


# ---------------------------------------------------------------------------- the answer block


def _answer(sentence: str, answer: str) -> Answer:
    start = sentence.index(answer)
    c = Citation("seeds/a.txt", 100 + start, 100 + start + len(answer), 100, 100 + len(sentence), 3, "Title", "May 2")
    return Answer(answer, sentence, 0.9, c, (c,))


@pytest.mark.parametrize("sentence,shown", [
    ("“Now there are four corridors,” he said.", "   “Now there are four corridors,” he said.\n"),
    ("\"Now there are four corridors,\" he said.", "   \"Now there are four corridors,\" he said.\n"),
    ("He said: “Now there are four corridors.”", "   He said: “Now there are four corridors.”\n"),
    ("Now there are four corridors.", "   “Now there are four corridors.”\n"),
])
def test_quotes_are_never_doubled_nor_left_unbalanced(sentence, shown):
    out = Console(file=io.StringIO(), width=200, no_color=True)
    out.soft_wrap = True
    render.result(out, Result("q", (_answer(sentence, "four"),), False))
    assert out.file.getvalue().splitlines(keepends=True)[1] == shown
