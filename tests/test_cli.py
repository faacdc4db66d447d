"""The `qa` command as a user runs it: real processes, exit codes, one-line errors."""
import json

import pytest

from qa.cli import app
from qa.errors import ExitStatus

from conftest import run_qa


def test_ask_without_an_index_builds_one_first(workdir):
    done = run_qa("ask", "Who is the UN's special envoy for Syria?", cwd=workdir)
    assert done.returncode == 0, done.stderr
    assert "indexing" in done.stderr and (workdir / "vectors" / "CURRENT").exists()
    again = run_qa("ask", "Who is the UN's special envoy for Syria?", cwd=workdir)
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
    plain = run_qa("ask", "Who is the UN's special envoy for Syria?", cwd=workdir, env={"NO_COLOR": None, "FORCE_COLOR": None})
    assert plain.returncode == 0 and "\x1b[" not in plain.stdout and "Staffan de Mistura" in plain.stdout
    as_json = run_qa("ask", "Who is the UN's special envoy for Syria?", "--json", cwd=workdir)
    json.loads(as_json.stdout)  # nothing but the record on stdout
    status = run_qa("status", "--json", cwd=workdir)
    assert json.loads(status.stdout)["files"] == 5
