"""The `qa` command as a user runs it: real processes, exit codes, one-line errors."""
import json
import re

import pytest

from qa.cli import app
from qa.errors import ExitStatus

from conftest import run_qa


def test_ask_without_an_index_builds_one_first(workdir):
    done = run_qa("ask", "Whose positive reaction to the start of the Russian-Syrian humanitarian operation in Aleppo did Borodavkin welcome?", cwd=workdir)
    assert done.returncode == 0, done.stderr
    assert "indexing" in done.stderr and (workdir / "vectors" / "CURRENT").exists()
    again = run_qa("ask", "Whose positive reaction to the start of the Russian-Syrian humanitarian operation in Aleppo did Borodavkin welcome?", cwd=workdir)
    assert "indexing" not in again.stderr and again.stdout == done.stdout


def test_stale_index_is_updated_before_answering(workdir):
    run_qa("index", cwd=workdir)
    (workdir / "seeds" / "new.txt").write_text("OSLO, May 2. The mayor of Oslo is Kari Nordmann.\n", encoding="utf-8")
    done = run_qa("ask", "Who is the mayor of Oslo?", "--json", cwd=workdir)
    assert done.returncode == 0 and "corpus changed" in done.stderr
    record = json.loads(done.stdout)
    assert record["answers"][0]["source"]["path"] == "seeds/new.txt"


@pytest.mark.parametrize("args,code,needle", [
    (("ask", ""), ExitStatus.BAD_INPUT, "empty"),
    (("ask", "   \t "), ExitStatus.BAD_INPUT, "empty"),
    (("ask", "\x01\x02\x03"), ExitStatus.BAD_INPUT, "empty"),
    (("ask", "x" * 100_000), ExitStatus.BAD_INPUT, "too long"),
    (("index", "no-such-folder"), ExitStatus.BAD_INPUT, "no such corpus folder"),
    (("ask", "Who?", "--corpus", "no-such-folder"), ExitStatus.BAD_INPUT, "no such corpus folder"),
    (("ask", "Who?", "--top-k", "0"), ExitStatus.USAGE, "top-k"),
    (("frobnicate",), ExitStatus.USAGE, "No such command"),
])
def test_user_errors_end_in_one_line_and_a_code(workdir, args, code, needle):
    done = run_qa(*args, cwd=workdir)
    assert done.returncode == code, (done.returncode, done.stderr)
    assert needle in done.stderr
    assert "Traceback" not in done.stderr
    if code != ExitStatus.USAGE:
        assert len(done.stderr.strip().splitlines()) == 1


def test_empty_corpus_is_a_clear_error(workdir):
    (workdir / "empty").mkdir()
    done = run_qa("index", "empty", cwd=workdir)
    assert done.returncode == ExitStatus.BAD_INPUT and "no article text" in done.stderr


def test_foreign_index_is_refused_with_the_fix(workdir):
    run_qa("index", cwd=workdir)
    done = run_qa("ask", "Who?", cwd=workdir, model="all-MiniLM-L6-v2")
    assert done.returncode == ExitStatus.INDEX and "--rebuild" in done.stderr


def _as_format_5(root):
    """The live generation made into what format 5 wrote: no word counts per row, no sentence lengths."""
    gen = root / (root / "CURRENT").read_text().strip()
    record = json.loads((gen / "manifest.json").read_text())
    gone = [f for f in record["data"] if f.endswith("sent_words.npy") or "-words." in f]
    assert len(gone) == 7  # spans/sent_words.npy, and three files of each kind in the one segment
    for name in gone:
        (gen / name).unlink()
        del record["data"][name]
    record["format"] = 5
    del record["sentence_words"]
    (gen / "manifest.json").write_text(json.dumps(record))
    return gen / "manifest.json"


def test_an_index_of_the_format_before_is_brought_up_to_date_keeping_its_vectors(workdir):
    question = ("ask", "Who is the UN's special envoy for Syria?", "--json")
    run_qa("index", cwd=workdir)
    answer = run_qa(*question, cwd=workdir)
    manifest = _as_format_5(workdir / "vectors")
    before = manifest.read_bytes()
    done = run_qa(*question, cwd=workdir)
    assert done.returncode == ExitStatus.INDEX and len(done.stderr.strip().splitlines()) == 1
    assert "earlier version of qa (format 5); run `qa index` to bring it up to date" in done.stderr
    assert manifest.read_bytes() == before
    done = run_qa("index", cwd=workdir)
    assert done.returncode == 0, done.stderr
    assert "(0 passages and 0 sentences embedded)" in done.stderr  # every vector kept
    again = run_qa(*question, cwd=workdir)
    assert again.returncode == 0 and again.stdout == answer.stdout


def test_an_index_of_the_previous_format_is_refused_then_rebuilt(workdir):
    """Format 1 (sentence vectors encoded alone, fp32) cannot be updated in place: one line with the
    fix, nothing touched, and `qa index --rebuild` makes a current one."""
    run_qa("index", cwd=workdir)
    root = workdir / "vectors"
    manifest = root / (root / "CURRENT").read_text().strip() / "manifest.json"
    record = json.loads(manifest.read_text())
    record["format"] = 1
    record.pop("vectors")
    manifest.write_text(json.dumps(record))
    before = manifest.read_bytes()
    for command in (("ask", "Who?"), ("status",)):
        done = run_qa(*command, cwd=workdir)
        assert done.returncode == ExitStatus.INDEX, done.stderr
        assert "another version of qa (format 1); run `qa index --rebuild`" in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1
    assert manifest.read_bytes() == before
    assert run_qa("index", "--rebuild", cwd=workdir).returncode == 0
    assert run_qa("ask", "Who is the UN's special envoy for Syria?", cwd=workdir).returncode == 0


def test_python_dash_m_matches_the_script(workdir):
    import subprocess
    import sys
    from pathlib import Path

    script = Path(sys.executable).with_name("qa")
    a = subprocess.run([str(script), "--help"], capture_output=True, text=True)
    b = run_qa("--help", cwd=workdir)
    assert a.returncode == b.returncode == 0 and a.stdout == b.stdout


def _commands():
    import typer.main

    group = typer.main.get_command(app)
    return group, sorted(group.commands)


@pytest.mark.parametrize("name", _commands()[1])
def test_every_command_has_help_with_a_description_and_an_example(name):
    group, _ = _commands()
    command = group.commands[name]
    text = command.help or ""
    assert len(text.split("\n")[0]) > 20, f"{name} has no description"
    assert "Example" in text and f"qa {name}" in text, f"{name} has no example"


def test_piped_output_has_no_colour_and_json_is_only_json(workdir):
    plain = run_qa("ask", "Whose positive reaction to the start of the Russian-Syrian humanitarian operation in Aleppo did Borodavkin welcome?", cwd=workdir, env={"NO_COLOR": None, "FORCE_COLOR": None})
    assert plain.returncode == 0 and "\x1b[" not in plain.stdout and "Staffan de Mistura" in plain.stdout
    as_json = run_qa("ask", "Whose positive reaction to the start of the Russian-Syrian humanitarian operation in Aleppo did Borodavkin welcome?", "--json", cwd=workdir)
    json.loads(as_json.stdout)  # nothing but the record on stdout
    status = run_qa("status", "--json", cwd=workdir)
    assert json.loads(status.stdout)["files"] == 5


# ---------------------------------------------------------------------------- issue 12, point 8

CLASS_NAME = re.compile(r"\b[A-Z][A-Za-z]*(Error|Exception)\b|Traceback")


def test_version(workdir):
    from importlib.metadata import version

    done = run_qa("--version", cwd=workdir)
    assert done.returncode == 0 and done.stdout == f"qa {version('qa')}\n"


def test_help_lists_every_command_without_cutting_its_description(workdir):
    done = run_qa("--help", cwd=workdir, env={"COLUMNS": "80"})
    commands = done.stdout.split("Commands:")[1]
    assert "..." not in commands and "…" not in commands
    assert len([line for line in commands.splitlines() if line.strip()]) == len(_commands()[1])


@pytest.mark.parametrize("name", _commands()[1])
def test_help_examples_quote_what_a_shell_would_expand(name):
    group, _ = _commands()
    for line in (group.commands[name].help or "").splitlines():
        for use in re.findall(r"\|\s*jq\s+(?:-\w+\s+)?(\S+)", line):
            assert use[0] in "'\"", f"unquoted jq filter in {name}'s help: {line.strip()}"  # zsh globs [ ]


def test_status_lines_are_not_padded(indexed_workdir):
    done = run_qa("status", cwd=indexed_workdir, env={"COLUMNS": "200"})
    assert done.returncode == 0
    assert all(line == line.rstrip() for line in done.stdout.splitlines())
    assert max(len(line) for line in done.stdout.splitlines()) < 120


def test_no_blank_lines_on_stderr_off_a_terminal(indexed_workdir, tmp_path):
    questions = tmp_path / "q.txt"
    questions.write_text("Whose positive reaction to the start of the Russian-Syrian humanitarian operation in Aleppo did Borodavkin welcome?\nWhere did talks begin?\n", encoding="utf-8")
    for args in (("batch", questions), ("index", "--rebuild"), ("ask", "Whose positive reaction to the start of the Russian-Syrian humanitarian operation in Aleppo did Borodavkin welcome?")):
        done = run_qa(*args, cwd=indexed_workdir)
        assert done.returncode == 0, done.stderr
        assert "\n\n" not in done.stderr and not done.stderr.startswith("\n"), (args, done.stderr)


def test_progress_says_the_model_is_loading_until_the_first_texts_are_done():
    import io

    from rich.console import Console

    from qa.cli import _Progress

    progress = _Progress(Console(file=io.StringIO(), force_terminal=True))
    progress("embedding", 0, 189)
    assert progress.bar.tasks[0].description == "loading the model"
    progress("embedding", 64, 189)
    assert progress.bar.tasks[0].description == "embedding"
    progress.close()
    quiet = _Progress(Console(file=io.StringIO()))  # not a terminal: no bar at all
    quiet("embedding", 0, 189)
    assert quiet.bar is None


@pytest.mark.parametrize("built", [True, False])
def test_ctrl_c_during_index_says_what_was_kept(workdir, monkeypatch, capsys, built):
    import sys

    from qa import api, cli

    if built:
        assert run_qa("index", cwd=workdir).returncode == 0

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(api, "build_index", interrupted)
    monkeypatch.setattr(sys, "argv", ["qa", "index", "--rebuild", "--model", "hashing-512"])
    with pytest.raises(SystemExit) as exit_:
        cli.main()
    assert exit_.value.code == ExitStatus.INTERRUPTED
    said = capsys.readouterr().err.strip()
    assert len(said.splitlines()) == 1
    if built:
        assert "vectors/ still holds the previous index, whole (5 files" in said
    else:
        assert "nothing was written to vectors/" in said


def test_the_test_embedder_is_not_offered_as_a_model(workdir):
    done = run_qa("ask", "Who?", "--model", "nope", cwd=workdir)
    assert done.returncode == ExitStatus.BAD_INPUT and "all-MiniLM-L6-v2" in done.stderr
    assert "hashing" not in done.stderr
    assert "hashing" not in run_qa("ask", "--help", cwd=workdir).stdout


@pytest.mark.parametrize("args", [("ask", "Who?"), ("index",), ("chat",), ("batch", "q.txt")])
def test_no_seeds_here_points_at_corpus(tmp_path, args):
    (tmp_path / "q.txt").write_text("Who?\n")
    done = run_qa(*args, cwd=tmp_path)
    assert done.returncode == ExitStatus.BAD_INPUT
    assert "no such corpus folder: seeds" in done.stderr and ("--corpus" in done.stderr or "qa index PATH" in done.stderr)
    assert len(done.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("content", [bytes(range(256)) * 40, b"\x89PNG\r\n\x1a\n" + bytes(4000), "Who?\n".encode("utf-16")])
def test_batch_refuses_a_binary_file(workdir, content):
    (workdir / "q.txt").write_bytes(content)
    done = run_qa("batch", "q.txt", cwd=workdir)
    assert done.returncode == ExitStatus.BAD_INPUT and "looks binary" in done.stderr and done.stdout == ""


@pytest.mark.parametrize("args", [
    ("eval", "bad.jsonl"), ("eval", "bad.json", "--squad"), ("batch", "q.jsonl"), ("show", "seeds"),
    ("ask", "Who?", "--index", "seeds/000_6e27ee18d903cc94.txt"), ("status", "--index", "seeds/000_6e27ee18d903cc94.txt"),
])
def test_no_message_names_a_python_exception(workdir, args):
    (workdir / "bad.jsonl").write_text('{"id": 1, "question": "Q?"}\n')
    (workdir / "bad.json").write_text("[1, 2]")
    (workdir / "q.jsonl").write_text('{"question": [1]}\n{"question": {"a": 1}}\n')
    done = run_qa(*args, cwd=workdir)
    assert done.returncode != 0 and done.stderr.strip()
    assert not CLASS_NAME.search(done.stderr + done.stdout), done.stderr


def test_eval_report_fits_80_columns_with_three_places_and_says_what_retrieval_counts():
    from qa.cli import eval_lines

    r = {"recall@1": 0.9118, "recall@5": 1.0, "recall@20": 1.0, "mrr": 0.95}
    figures = {"questions": 40, "retrieval": {"questions": 34, **r}, "baselines": {"bm25": r, "dense": r},
               "sentence_acc": 0.9706, "span_em": 0.8235, "span_f1": 0.8462, "answered": 1.0, "abstain_ok": 0.8333,
               "offsets_ok": 1.0, "mean_answer_tokens": 2.74, "calibration": {"ece": 0.1714, "brier": 0.0463}}
    lines = eval_lines(figures, answerable=34)
    assert all(len(line) <= 80 and line == line.rstrip() for line in lines)
    assert "34 of 40 questions" in lines[0]
    numbers = re.findall(r"(?<![\w@])\d+\.\d+", "\n".join(lines))
    assert numbers and all(len(n.split(".")[1]) == 3 for n in numbers if not n.startswith("2.7")), numbers
    assert any(line.startswith("span_em") and "0.824" in line for line in lines)
