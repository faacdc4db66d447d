"""`qa chat`: the REPL for real in a pseudo-terminal, its turns in-process, and piped input."""
import io
import json
import os
import re
import shutil
import sys
from pathlib import Path

import pexpect
import pytest

from qa.chat import run
from qa.errors import ExitStatus

from conftest import FAST_MODEL, run_qa

TIMEOUT = 30  # two busy cores: generous, but a hung prompt still fails
ENVOY = "Whose positive reaction to the start of the Russian-Syrian humanitarian operation in Aleppo did Borodavkin welcome?"
TALKS = "Where did talks begin?"
CITED = r"seeds/[\w.]+:\d+"  # a citation as render prints it
# A fresh, empty prompt: "qa>" not followed by typed text, as prompt_toolkit's redraws of the
# line being accepted ("qa> Who is ...") are.
PROMPT = re.compile(r"qa>(?! ?[^\x1b\s])")
ANSI = re.compile(r"\x1b(\[[0-9;?]*[ -/]*[@-~]|[()][0-9A-Za-z]|[=>])")


def visible(text: str) -> str:
    """What a terminal would show of text, roughly: escape sequences and carriage returns gone."""
    return ANSI.sub("", text).replace("\r", "")


@pytest.fixture
def indexed(workdir):
    done = run_qa("index", cwd=workdir)
    assert done.returncode == 0, done.stderr
    return workdir


def spawn(folder: Path, history: Path) -> pexpect.spawn:
    env = {**os.environ, "QA_MODEL": FAST_MODEL, "NO_COLOR": "1", "QA_HISTORY": str(history),
           "TERM": "xterm", "PROMPT_TOOLKIT_NO_CPR": "1"}  # nobody here answers cursor-position requests
    env.pop("QA_INDEX", None)
    env.pop("QA_CORPUS", None)
    child = pexpect.spawn(sys.executable, ["-m", "qa", "chat"], cwd=str(folder), env=env, encoding="utf-8",
                          timeout=TIMEOUT, dimensions=(50, 200))
    child.expect(PROMPT)
    return child


def say(child: pexpect.spawn, line: str, expect: str | None = None) -> str:
    """Type line and Enter; wait for `expect` (if given) and the next prompt; return what was shown after `expect`."""
    child.send(line + "\r")
    if expect is not None:
        child.expect(expect)
    child.expect(PROMPT)
    return visible(child.before)


def quit_with(child: pexpect.spawn, keys: str) -> int:
    child.send(keys)
    child.expect(pexpect.EOF)
    child.close()
    return child.exitstatus


# ---------------------------------------------------------------------------- in a terminal


def test_two_questions_then_ctrl_d(indexed, tmp_path):
    child = spawn(indexed, tmp_path / "history")
    assert re.search(r"\d+ documents, \d+ passages, model hashing-512", visible(child.before))
    say(child, ENVOY, expect=CITED)
    say(child, TALKS, expect=CITED)
    assert quit_with(child, ":quit\r") == 0


def test_up_arrow_recalls_a_question_from_an_earlier_session(indexed, tmp_path):
    history = tmp_path / "deep" / "history"  # its folder does not exist yet
    child = spawn(indexed, history)
    say(child, TALKS, expect=CITED)
    assert quit_with(child, "\x04") == 0
    assert TALKS in history.read_text(encoding="utf-8")

    child = spawn(indexed, history)
    press_up_until(child, TALKS)  # drawn on the prompt line
    child.send("\r")
    child.expect(CITED)
    child.expect(PROMPT)
    assert quit_with(child, "quit\r") == 0
    assert history.read_text(encoding="utf-8").count(TALKS) == 1  # a repeat is not stored twice


def test_unwritable_history_warns_once_and_up_arrow_still_works(indexed, tmp_path):
    (tmp_path / "a-file").write_text("not a folder")
    child = spawn(indexed, tmp_path / "a-file" / "history")
    assert visible(child.before).count("cannot keep history") == 1
    say(child, TALKS, expect=CITED)
    press_up_until(child, TALKS)
    child.send("\r")
    child.expect(CITED)
    child.expect(PROMPT)
    assert "history" not in visible(child.before)
    assert quit_with(child, "\x04") == 0


def press_up_until(child: pexpect.spawn, text: str) -> None:
    # History loads in the background as the prompt starts: an Up pressed before it is there
    # does nothing, so press again. With one entry in the history, extra presses are harmless.
    for _ in range(10):
        child.send("\x1b[A")
        if child.expect_exact([text, pexpect.TIMEOUT], timeout=1) == 0:
            return
    raise AssertionError(f"up arrow never recalled {text!r}")


def test_commands_errors_and_ctrl_c_keep_the_session(indexed, tmp_path):
    history = tmp_path / "history"
    child = spawn(indexed, history)

    child.send("half-typed question\x03")  # Ctrl-C while typing: the line goes, the session stays
    child.expect(PROMPT)
    say(child, ENVOY, expect=CITED)

    # Ctrl-C straight after Enter lands while the question is answered, or at the next prompt
    # if answering was quicker; either way the session goes on.
    child.send(TALKS + "\r\x03")
    child.expect([r"\(interrupted\)", CITED])
    child.expect(PROMPT)

    assert ":open N" in say(child, ":help", expect="Type a question")
    assert say(child, ":k 2", expect="up to 2 answers").strip() == ""
    say(child, TALKS, expect=r"2\. [^\r\n]*confidence")

    say(child, ":json", expect="JSON records on")
    child.send(ENVOY + "\r")
    child.expect(r'\{"question".*\}\r\n')
    record = json.loads(child.after)
    assert record["question"] == ENVOY and len(record["answers"]) == 2
    child.expect(PROMPT)
    say(child, ":json", expect="JSON records off")

    shown = say(child, ":sources", expect=r"1\. (\x1b\[[\d;]*m)*seeds/")
    assert "2. seeds/" in shown and "Mistura" in shown  # the full passage, not just the sentence
    shown = say(child, ":open 1", expect=r">\s+\d+ │")
    assert "Staffan de Mistura" in shown

    for line, needle in [(":frobnicate", "unknown command :frobnicate"), ("?", "the question is empty"),
                         (":k 99", "from 1 to 50"), (":open 7", ":open takes")]:
        after = say(child, line, expect=needle + r"[^\r\n]*\r\n")
        assert after.strip() == "", f"{line!r} printed more than one line: {after!r}"
    assert say(child, "").strip() == ""  # a blank line just prompts again
    say(child, ENVOY, expect=CITED)  # and the session still answers

    assert quit_with(child, "\x04") == 0
    assert "half-typed" not in history.read_text(encoding="utf-8")


# ---------------------------------------------------------------------------- in-process


@pytest.fixture
def answerer(indexed):
    from qa.api import open_answerer

    return open_answerer(Path("seeds"), Path("vectors"), FAST_MODEL)


class Scripted:
    """The real answerer, but the listed calls (1-based) raise instead of answering."""

    def __init__(self, inner, raises: dict):
        self.inner, self.index, self.raises, self.calls = inner, inner.index, raises, 0

    def ask(self, question, k=1):
        self.calls += 1
        if self.calls in self.raises:
            raise self.raises[self.calls]
        return self.inner.ask(question, k=k)


def converse(answerer, keys: str, history: Path, **options) -> tuple[int, str]:
    """Run the REPL on typed keys (Ctrl-D appended), drawing nothing; return (exit code, stdout)."""
    from prompt_toolkit.input import create_pipe_input

    out = io.StringIO()
    with create_pipe_input() as typed:
        typed.send_text(keys + "\x04")
        code = run(answerer, 1, history, input=typed, output=out, **options)
    return code, out.getvalue()


def test_ctrl_c_while_answering_abandons_only_that_question(answerer, tmp_path, capsys):
    flaky = Scripted(answerer, {1: KeyboardInterrupt()})
    code, out = converse(flaky, f"{ENVOY}\r{TALKS}\r", tmp_path / "history")
    assert code == ExitStatus.OK and flaky.calls == 2
    assert "(interrupted)" in capsys.readouterr().err
    assert re.search(CITED, out) and "Mistura" not in out  # the second question answered, not the first


def test_each_failed_turn_prints_one_line_and_the_loop_goes_on(answerer, tmp_path, capsys):
    buggy = Scripted(answerer, {3: ZeroDivisionError("division by zero")})  # calls: ?, envoy, talks, ...
    keys = "".join(line + "\r" for line in ["?", ":nope", ":k 0", ":open 1", ENVOY, TALKS, "x" * 3000, ":open 9", ENVOY])
    code, out = converse(buggy, keys, tmp_path / "history")
    assert code == ExitStatus.OK  # at a terminal the person saw the errors; the session ended well
    lines = capsys.readouterr().err.splitlines()[1:]  # after the greeting
    assert len(lines) == 7, lines
    for line, needle in zip(lines, ["empty", "unknown command :nope", "from 1 to 50", "no answer yet",
                                    "internal error: division by zero", "too long", ":open takes"]):
        assert line.startswith("qa: ") and needle in line
    assert "Traceback" not in "".join(lines) and "Error" not in "".join(lines)  # no exception class names
    assert out.count("Staffan de Mistura  confidence") == 2


def test_history_file_failing_mid_session_warns_once_and_keeps_to_memory(tmp_path):
    from qa.chat import _history

    warnings = []
    history = _history(tmp_path / "gone" / "history", warnings.append)
    history.append_string("first")
    shutil.rmtree(tmp_path / "gone")
    history.append_string("second")
    history.append_string("third")
    assert len(warnings) == 1 and "cannot keep history" in warnings[0]
    assert history.get_strings() == ["first", "second", "third"]


def test_unusable_history_file_is_one_warning(answerer, tmp_path, capsys):
    (tmp_path / "history").mkdir()  # a folder where the file should be
    code, out = converse(answerer, f"{TALKS}\r", tmp_path / "history")
    assert code == ExitStatus.OK and re.search(CITED, out)
    assert [line for line in capsys.readouterr().err.splitlines() if "history" in line] == [
        f"qa: warning: cannot keep history in {tmp_path / 'history'}: Is a directory; this session's questions will not be saved"]


def test_json_mode_gives_a_record_per_question_even_for_failures(answerer, tmp_path):
    out = io.StringIO()
    code = run(answerer, 1, tmp_path / "history", json_output=True, input=io.StringIO(f"{ENVOY}\n\n?\n:k 3\n:sources\n"), output=out)
    assert code == ExitStatus.PARTIAL
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    assert records[0]["question"] == ENVOY and records[0]["answers"]
    # In the failed line's place, as `qa batch` writes it: its line number, what it said, why it failed.
    assert records[1] == {"line": 3, "question": "?", "error": records[1]["error"]} and "empty" in records[1]["error"]
    assert records[2]["sources"][0]["source"] == records[0]["answers"][0]["source"]


def test_piped_json_writes_an_error_record_in_place_of_every_failing_line(answerer, tmp_path):
    out = io.StringIO()
    lines = [ENVOY, ":k x", "\x01\x02", ":open 9", TALKS]
    code = run(answerer, 1, tmp_path / "history", json_output=True, input=io.StringIO("\n".join(lines) + "\n"), output=out)
    assert code == ExitStatus.PARTIAL
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    assert len(records) == len(lines)  # one record a line: nothing dropped, nothing out of order
    assert "answers" in records[0] and "answers" in records[4]
    assert {k: records[1][k] for k in ("line", "command")} == {"line": 2, "command": ":k x"} and "whole number" in records[1]["error"]
    assert records[2]["line"] == 3 and "empty" in records[2]["error"]
    assert records[3]["line"] == 4 and records[3]["command"] == ":open 9"


def test_k_says_answer_in_the_singular(answerer, tmp_path, capsys):
    run(answerer, 3, tmp_path / "history", input=io.StringIO(":k 1\n:k\n:k 2\n"), output=io.StringIO())
    notes = capsys.readouterr().err.splitlines()
    assert notes == ["showing 1 answer", "showing 1 answer; :k N changes it", "showing up to 2 answers"]


def test_piped_input_never_loads_prompt_toolkit(answerer, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "prompt_toolkit", None)  # importing it now would fail
    out = io.StringIO()
    assert run(answerer, 1, tmp_path / "history", input=io.StringIO(f"{ENVOY}\nquit\n{TALKS}\n"), output=out) == 0
    assert len(re.findall(r"  confidence \d", out.getvalue())) == 1  # one answer, or one nearest evidence: `quit` ended it
    assert not (tmp_path / "history").exists()


# ---------------------------------------------------------------------------- piped, for real


def test_piped_questions_are_answered_one_a_line(indexed):
    done = run_qa("chat", cwd=indexed, input=f"{ENVOY}\n\n{TALKS}\n", timeout=TIMEOUT * 2)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # no greeting, no prompt
    assert len(re.findall(r"^   " + CITED, done.stdout, re.M)) == 2


def test_piped_json_with_a_failed_line_ends_partial(indexed):
    done = run_qa("chat", "--json", cwd=indexed, input=f"{ENVOY}\n?\n{TALKS}\n", timeout=TIMEOUT * 2)
    assert done.returncode == ExitStatus.PARTIAL
    records = [json.loads(line) for line in done.stdout.splitlines()]
    assert [("error" in r) for r in records] == [False, True, False]
    assert len(done.stderr.splitlines()) == 1 and "empty" in done.stderr
