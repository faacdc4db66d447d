"""`qa chat`: ask question after question of one loaded answerer.

At a terminal it is a prompt_toolkit REPL whose history outlives the session; with piped input
it reads one question a line with no prompt, so `qa chat < questions.txt` works as a small batch.
prompt_toolkit is imported only for the terminal.
"""
from __future__ import annotations

import json
import os
import sys
import traceback
from pathlib import Path

from rich.text import Text

from . import render
from .errors import BadInput, ExitStatus, QAError
from .types import Answer, Result

PROMPT = "qa> "
MAX_K = 50  # the same bound as `--top-k`
CONTEXT_LINES = 2  # file lines :open shows above and below the cited ones
QUIT = (":quit", ":q", "exit", "quit")

HELP = """\
Type a question, or one of:
  :k N       show up to N answers (1-{max_k}; now {k})
  :sources   the passages behind the last answers, answer highlighted
  :open N    answer N's source in its file, with the lines around it
  :json      raw JSON records on/off (now {json})
  :help      this list
  :quit      leave (also :q, exit, quit, Ctrl-D)
Up and down recall earlier questions; Ctrl-C clears the line or abandons an answer."""


def run(answerer, top_k: int, history: Path, json_output: bool = False, input=None, output=None) -> int:
    """Answer lines of input until end of input or :quit; return the exit code.

    At a terminal: a prompt with history kept in `history` (up arrow, across sessions), a
    greeting on stderr, Ctrl-C dropping the line being typed or abandoning the question being
    answered. Failed turns print one line on stderr and the session goes on; it always ends 0.

    With piped input: no prompt and no greeting; one question or :command a line, blank lines
    skipped. It ends 0 when every line went through and ExitStatus.PARTIAL (5) when some
    failed, as `qa batch` does, so a script notices. Ctrl-C stops the run (KeyboardInterrupt
    propagates: the CLI exits 130).

    Args:
        answerer: has ask(question, k) -> Result, and .index for the greeting, :sources, :open.
        input: None reads stdin, as a REPL when it is a terminal. A prompt_toolkit Input
            (tests use create_pipe_input()) runs the REPL on it, drawing nothing; any other
            text stream is read line by line.
        output: text stream for answers and sources (default stdout). Notes, help and errors
            go to stderr.
    """
    out = render.console()
    if output is not None:
        out.file = output
    err = render.console(stderr=True)
    if input is None and sys.stdin.isatty():
        interactive, keys = True, None
    else:
        interactive, keys = _is_prompt_input(input), input
    chat = _Chat(answerer, top_k, json_output, out, err, interactive)
    if interactive:
        _greet(err, answerer)
        _prompt_loop(chat, Path(history).expanduser(), keys)
        return ExitStatus.OK
    for number, line in enumerate(_lines(input), 1):
        chat.line = number
        if not chat.handle(line):
            break
    return ExitStatus.PARTIAL if chat.failed else ExitStatus.OK


def _is_prompt_input(obj) -> bool:
    # Looked up, not imported: a piped run never loads prompt_toolkit.
    module = sys.modules.get("prompt_toolkit.input")
    return module is not None and isinstance(obj, module.Input)


def _lines(stream):
    """The lines of stream (default stdin) without their line endings."""
    if stream is None:
        stream = sys.stdin
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="replace")  # a stray non-UTF-8 byte spoils a question, not the run
    for line in stream:
        yield line.rstrip("\r\n")


def _greet(err, answerer) -> None:
    index = answerer.index
    render.message(err, Text(
        f"qa chat: {index.manifest['counts']['documents']} documents, {index.live_passages} passages, model {index.model}. "
        ":help for commands, Ctrl-D to quit",
        style="dim",
    ))


def _prompt_loop(chat: "_Chat", history: Path, keys) -> None:
    from prompt_toolkit import PromptSession
    from prompt_toolkit.output import DummyOutput, create_output

    if keys is not None:
        screen = DummyOutput()
    elif not sys.stdout.isatty() and sys.stderr.isatty():
        screen = create_output(stdout=sys.stderr)  # `qa chat | tee log`: the prompt stays out of the log
    else:
        screen = None  # prompt_toolkit's own choice, which knows about dumb terminals
    session = PromptSession(history=_history(history, chat.warn), input=keys, output=screen)
    while True:
        try:
            line = session.prompt(PROMPT)
        except KeyboardInterrupt:
            continue  # Ctrl-C while typing drops the line, as shells do
        except EOFError:
            return
        if not chat.handle(line):
            return


def _history(path: Path, warn):
    """prompt_toolkit history in path; in memory, after one warning, when the file cannot be used."""
    from prompt_toolkit.history import FileHistory, InMemoryHistory

    def give_up(exc: OSError) -> None:
        warn(f"cannot keep history in {path}: {exc.strerror or exc}; this session's questions will not be saved")

    class Kept(FileHistory):
        broken = False  # set on the first failure, so the warning comes once

        def load_history_strings(self):
            try:
                return list(super().load_history_strings())
            except OSError as exc:
                self.broken = True
                give_up(exc)
                return []

        def store_string(self, string: str) -> None:
            if self.broken:
                return
            try:
                super().store_string(string)
            except OSError as exc:  # disk full, file removed with its folder...
                self.broken = True
                give_up(exc)

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "ab"):
            pass
    except OSError as exc:
        give_up(exc)
        return InMemoryHistory()
    return Kept(path)


class _Chat:
    """One session: its settings and last result, and what each line of input does."""

    def __init__(self, answerer, k: int, json_output: bool, out, err, interactive: bool) -> None:
        self.answerer = answerer
        self.k = k
        self.json = json_output
        self.out = out
        self.err = err
        self.interactive = interactive
        self.last: Result | None = None
        self.failed = 0
        self.line: int | None = None  # of piped input, for error records

    def handle(self, line: str) -> bool:
        """Answer or obey one line; False when it asks to quit."""
        text = line.strip()
        if not text:
            return True
        if text.lower() in QUIT:
            return False
        is_command = text.startswith(":")
        try:
            if is_command:
                self.command(text)
            else:
                self.ask(text)
            self.out.file.flush()  # whoever reads a pipe sees each answer as it is made
        except KeyboardInterrupt:
            if not self.interactive:
                raise
            self.err.print(Text("(interrupted)", style="dim"))
        except BrokenPipeError:
            raise  # the reader left (`qa chat < q.txt | head`): the CLI ends quietly
        except QAError as exc:
            self.fail("error", str(exc), text, is_command)
        except Exception as exc:  # a bug: one line, and the session survives it
            if os.environ.get("QA_DEBUG"):
                traceback.print_exc()
            self.fail("internal error", f"{exc or 'something went wrong'} (set QA_DEBUG=1 for the traceback)",
                      text, is_command)
        return True

    def ask(self, question: str) -> None:
        result = self.answerer.ask(question, k=self.k)
        self.last = result
        if self.json:
            self.emit(result.to_json())
        else:
            render.result(self.out, result)

    def command(self, text: str) -> None:
        name, _, arg = text.replace("\t", " ").partition(" ")
        commands = {":help": self.help, ":k": self.set_k, ":sources": self.sources,
                    ":open": self.open, ":json": self.toggle_json}
        if name.lower() not in commands:
            raise BadInput(f"unknown command {name}; :help lists the commands")
        commands[name.lower()](arg.strip())

    # -- commands -------------------------------------------------------------------------------

    def help(self, arg: str) -> None:
        self.err.print(HELP.format(max_k=MAX_K, k=self.k, json="on" if self.json else "off"),
                       markup=False, highlight=False)

    def set_k(self, arg: str) -> None:
        if not arg:
            self.note(f"{_showing(self.k)}; :k N changes it")
            return
        k = _number(arg, MAX_K)
        if k is None:
            raise BadInput(f":k takes a whole number from 1 to {MAX_K}, not {arg!r}")
        self.k = k
        self.note(_showing(self.k))

    def toggle_json(self, arg: str) -> None:
        if arg.lower() not in ("", "on", "off"):
            raise BadInput(f":json takes on, off or nothing (to toggle), not {arg!r}")
        self.json = not self.json if not arg else arg.lower() == "on"
        self.note("JSON records on" if self.json else "JSON records off")

    def sources(self, arg: str) -> None:
        records = []
        for n, a in enumerate(self.answers(), 1):
            text, start, end = self.passage(a, n)
            c = a.source
            line = text.count("\n", 0, start) + 1
            if self.json:
                records.append({"rank": n, "path": c.path, "line": line, "start": start, "end": end,
                                "text": text[start:end], "source": c.to_json()})
                continue
            head = Text(f"{n}. ", style="dim")
            head.append(f"{c.path}:{line}:{start}-{end}", style="cyan")
            render.emit(self.out, "", head)
            render.emit(self.out, "", render.marked(self.out, text, start, end, c.start, c.end))
            self.out.print()
        if self.json:
            self.emit({"sources": records})

    def open(self, arg: str) -> None:
        answers = self.answers()
        n = _number(arg, len(answers))
        if n is None:
            shown = "1" if len(answers) == 1 else f"from 1 to {len(answers)}"
            raise BadInput(f":open takes the number of an answer shown: {shown}")
        a = answers[n - 1]
        c = a.source
        text, _, _ = self.passage(a, n)
        if self.json:
            lines = text.split("\n")
            last_cited = text.count("\n", 0, max(c.start, c.end - 1)) + 1
            first, last = max(1, c.line - CONTEXT_LINES), min(len(lines), last_cited + CONTEXT_LINES)
            self.emit({"rank": n, "source": c.to_json(), "first_line": first, "lines": lines[first - 1 : last]})
            return
        render.passage(self.out, render.cite(c), text, c.start, c.end, CONTEXT_LINES)

    # -- helpers --------------------------------------------------------------------------------

    def answers(self) -> tuple[Answer, ...]:
        if self.last is None:
            raise BadInput("no answer yet; ask a question first")
        if not self.last.answers:
            raise BadInput("the last question found nothing to show")
        return self.last.answers

    def passage(self, a: Answer, n: int) -> tuple[str, int, int]:
        """The text of the file answer n came from (as indexed) and its passage's span in it."""
        if a.passage < 0:
            raise BadInput(f"answer {n} does not say which passage it came from")
        index = self.answerer.index
        p = index.passage(a.passage)
        return index.documents[p.doc].text, p.start, p.end

    def emit(self, record: dict) -> None:
        self.out.file.write(json.dumps(record, ensure_ascii=False) + "\n")

    def note(self, message: str) -> None:
        render.message(self.err, Text(message, style="dim"))

    def warn(self, message: str) -> None:
        render.message(self.err, Text.assemble(("qa: warning:", "yellow"), f" {message}"))

    def fail(self, kind: str, message: str, text: str, is_command: bool) -> None:
        """One line on stderr; in JSON mode the failed line also gets an error record on stdout,
        in its place, as `qa batch` writes one (with the input line number when piped)."""
        self.failed += 1
        render.message(self.err, Text.assemble((f"qa: {kind}:", "red"), f" {message}"))
        if self.json:
            record: dict = {} if self.line is None else {"line": self.line}
            record["command" if is_command else "question"] = text
            record["error"] = message
            self.emit(record)
            self.out.file.flush()


def _showing(k: int) -> str:
    return "showing 1 answer" if k == 1 else f"showing up to {k} answers"


def _number(arg: str, most: int) -> int | None:
    """arg as a number from 1 to most, or None."""
    if not (arg.isascii() and arg.isdigit() and len(arg) <= 6):
        return None
    return int(arg) if 1 <= int(arg) <= most else None
