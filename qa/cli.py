"""The `qa` command: parses arguments, calls the library, renders. Nothing else lives here."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from .errors import ExitStatus, QAError

EXIT_CODES = """\b
Exit codes:
  0    success (including an honest "the articles don't say")
  1    unexpected error
  2    usage error (bad option or argument)
  3    bad input: empty or too-long question, missing or empty corpus, unreadable input file
  4    no usable index: missing, stale, damaged, or built with another model or settings
  5    batch finished, but some input lines failed (see their error records)
  6    another `qa index` is updating the index
  130  interrupted (Ctrl-C)"""

app = typer.Typer(
    name="qa",
    help="Answer questions about a folder of news articles with words copied from them, cited to the character."
    "\n\n\b\nExamples:\n  qa ask \"Who is the UN's special envoy for Syria?\"\n  qa index seeds/\n  qa chat\n\n" + EXIT_CODES,
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)

CorpusOpt = Annotated[Path, typer.Option("--corpus", "-c", envvar="QA_CORPUS", help="Folder of .txt/.md articles.")]
IndexOpt = Annotated[Path, typer.Option("--index", "-i", envvar="QA_INDEX", help="Folder holding the index.")]
ModelOpt = Annotated[str, typer.Option("--model", envvar="QA_MODEL", help="Embedding model.")]
TopKOpt = Annotated[int, typer.Option("--top-k", "-k", min=1, max=50, help="How many distinct answers to show.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the JSON answer record only.")]

DEFAULT_CORPUS = Path("seeds")
DEFAULT_INDEX = Path("vectors")


def _model_default() -> str:
    from .embedder import DEFAULT_MODEL

    return DEFAULT_MODEL


def _err():
    from .render import console

    return console(stderr=True)


def _notify(message: str) -> None:
    _err().print(f"[dim]qa:[/dim] {message}", highlight=False, markup=True)


class _Progress:
    """A rich progress bar on stderr, shown only while something is being embedded."""

    def __init__(self) -> None:
        self.bar = None
        self.task = None

    def __call__(self, stage: str, done: int, total: int) -> None:
        if total == 0:
            return
        if self.bar is None:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                TimeRemainingColumn(), console=_err(), transient=True)
            self.bar.start()
            self.task = self.bar.add_task(stage, total=total)
        self.bar.update(self.task, completed=done)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


def _open(corpus: Path, index: Path, model: str):
    from .api import open_answerer

    progress = _Progress()
    try:
        return open_answerer(corpus, index, model, notify=_notify, progress=progress)
    finally:
        progress.close()


@app.command()
def index(
    corpus: Annotated[Optional[Path], typer.Argument(help="Folder of articles (default: $QA_CORPUS or seeds/).", show_default=False)] = None,
    index: IndexOpt = DEFAULT_INDEX,
    model: ModelOpt = "all-MiniLM-L6-v2",
    rebuild: Annotated[bool, typer.Option("--rebuild", help="Start from scratch instead of updating.")] = False,
) -> None:
    """Index the articles: split them into passages, embed them, and write the index.

    Only new or changed files are embedded again; deleted files leave the index.

    \b
    Examples:
      qa index
      qa index ~/news --index ~/news-index
      qa index --rebuild
    """
    from .api import build_index

    corpus = corpus or Path(os.environ.get("QA_CORPUS", DEFAULT_CORPUS))
    progress = _Progress()
    try:
        report = build_index(corpus, index, model, rebuild=rebuild, progress=progress)
    finally:
        progress.close()
    err = _err()
    for s in report.skipped:
        err.print(f"[yellow]skipped[/yellow] {s.path}: {s.reason}", highlight=False)
    if report.unchanged:
        err.print(f"{index}/ is up to date: {len(report.kept)} files, {report.passages} passages", highlight=False)
        return
    err.print(
        f"indexed {corpus}/ into {index}/: {len(report.added)} added, {len(report.updated)} updated, "
        f"{len(report.removed)} removed, {len(report.kept)} kept; {report.passages} passages "
        f"({report.embedded_passages} passages and {report.embedded_sentences} sentences embedded)",
        highlight=False,
    )


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="The question, in quotes.")],
    top_k: TopKOpt = 1,
    json_: JsonOpt = False,
    corpus: CorpusOpt = DEFAULT_CORPUS,
    index: IndexOpt = DEFAULT_INDEX,
    model: ModelOpt = "all-MiniLM-L6-v2",
) -> None:
    """Answer one question with the sentence or phrase from the articles that answers it.

    Builds or updates the index first when it is missing or older than the articles.

    \b
    Examples:
      qa ask "Who is the UN's special envoy for Syria?"
      qa ask "When did the February ceasefire start?" --top-k 3
      qa ask "How many humanitarian corridors?" --json | jq .answers[0].answer
    """
    from .answerer import clean_question

    clean_question(question)  # a bad question fails before any loading
    answerer = _open(corpus, index, model)
    result = answerer.ask(question, k=top_k)
    if json_:
        sys.stdout.write(json.dumps(result.to_json(), ensure_ascii=False) + "\n")
        return
    from . import render

    render.result(render.console(), result)


def main() -> None:
    """Entry point: run the app, turning expected failures into one line and an exit code."""
    from typer.exceptions import Abort, Exit, TyperException

    try:
        app(standalone_mode=False, prog_name="qa")
    except QAError as exc:
        _err().print(f"[red]qa: error:[/red] {exc}", highlight=False, markup=True, soft_wrap=True)
        sys.exit(int(exc.exit_code))
    except Exit as exc:
        sys.exit(exc.exit_code)
    except Abort:
        sys.exit(ExitStatus.INTERRUPTED)
    except TyperException as exc:  # usage errors: typer prints them with the usage line
        exc.show()
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        _err().print("qa: interrupted", highlight=False)
        sys.exit(ExitStatus.INTERRUPTED)
    except BrokenPipeError:
        sys.stderr.close()  # `qa batch ... | head`: the reader left; not an error
        sys.exit(ExitStatus.OK)
    except Exception as exc:  # a bug: one line, with the way to see more
        if os.environ.get("QA_DEBUG"):
            raise
        _err().print(f"qa: internal error: {type(exc).__name__}: {exc} (set QA_DEBUG=1 for the traceback)", highlight=False)
        sys.exit(ExitStatus.ERROR)
