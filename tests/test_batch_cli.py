"""`qa batch` as a user runs it: 1,000 questions, bad lines, a kill halfway, --resume."""
import json
import os
import signal
import subprocess
import sys
import time

from qa.errors import ExitStatus

from conftest import FAST_MODEL, ROOT, run_qa

BAD = {100: "{not json", 300: '{"id": "x300"}', 500: '{"id": "x500", "question": ""}', 700: "[1, 2]",
       900: json.dumps({"id": "x900", "question": "y" * 5000})}


# These tests are about batch input, output and resume, not answers: the rule reader answers a
# thousand questions in seconds where the trained one takes a minute or more on two cores.
READER = {"QA_READER": "rules"}


def write_questions(path, n=1000):
    source = ROOT / "benchmarks" / "data" / "seeds-heldout.jsonl"  # our own questions, not a test set's
    questions = [json.loads(line)["question"] for line in source.read_text(encoding="utf-8").splitlines() if line.strip()]
    with open(path, "w", encoding="utf-8") as handle:
        for i in range(n):
            handle.write((BAD[i] if i in BAD else json.dumps({"id": f"q{i}", "question": questions[i % len(questions)]})) + "\n")


def records(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def check_complete(rows):
    assert len(rows) == 1000
    errors = [r for r in rows if "error" in r]
    assert [r["line"] for r in errors] == [i + 1 for i in sorted(BAD)]
    answers = [r for r in rows if "error" not in r]
    assert [r["id"] for r in answers] == [f"q{i}" for i in range(1000) if i not in BAD]
    assert all(r["answers"] for r in answers)


def test_thousand_questions_with_five_bad_lines(workdir):
    write_questions(workdir / "q.jsonl")
    run_qa("index", cwd=workdir)
    done = run_qa("batch", "q.jsonl", "-o", "a.jsonl", cwd=workdir, env=READER)
    assert done.returncode == ExitStatus.PARTIAL, done.stderr
    assert "995 answered, 5 failed" in done.stderr
    check_complete(records(workdir / "a.jsonl"))


def test_killed_halfway_then_resumed_answers_everything_once(workdir):
    write_questions(workdir / "q.jsonl")
    run_qa("index", cwd=workdir)
    env = {**os.environ, "QA_MODEL": FAST_MODEL, "NO_COLOR": "1", **READER}
    proc = subprocess.Popen([sys.executable, "-m", "qa", "batch", "q.jsonl", "-o", "a.jsonl"], cwd=workdir, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    out = workdir / "a.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and (not out.exists() or out.read_bytes().count(b"\n") < 400):
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    partial = out.read_bytes().count(b"\n")
    assert 400 <= partial < 1000, partial  # really killed halfway
    done = run_qa("batch", "q.jsonl", "-o", "a.jsonl", "--resume", cwd=workdir, env=READER)
    assert done.returncode == ExitStatus.PARTIAL, done.stderr
    assert "already done" in done.stderr
    check_complete(records(out))
