"""The `qa` command: parses arguments, calls the library, renders. Nothing else lives here."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from .errors import ExitStatus, QAError

# Questions are answered one at a time: a threaded BLAS made each question-vector product 17x
# slower here (11.9 ms against 0.68 ms for 12k sentence vectors). Set before numpy loads;
# torch, which does the indexing, keeps its own threads.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

EXIT_CODES = """\b
Exit codes:
  0    success (including an honest "the articles don't say")
  1    unexpected error
  2    usage error (bad option or argument)
  3    bad input: empty or too-long question, missing or empty corpus, unreadable input file
  4    no usable index: missing, stale, damaged, or built with another model or settings
  5    batch or piped chat finished, but some input lines failed
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


@app.command()
def chat(
    top_k: TopKOpt = 1,
    json_: Annotated[bool, typer.Option("--json", help="Start with raw JSON records on (toggle with :json).")] = False,
    corpus: CorpusOpt = DEFAULT_CORPUS,
    index: IndexOpt = DEFAULT_INDEX,
    model: ModelOpt = "all-MiniLM-L6-v2",
    history: Annotated[Optional[Path], typer.Option("--history", envvar="QA_HISTORY", help="History file (default: ~/.qa_history).", show_default=False)] = None,
) -> None:
    """Ask question after question, loading the model and index once.

    Type :help inside for commands (:k N, :sources, :open N, :json, :quit).
    Piped input works too: one answer per line.

    \b
    Examples:
      qa chat
      printf 'Who is the UN envoy?\\nWhere did talks begin?\\n' | qa chat --json
    """
    from .chat import run

    answerer = _open(corpus, index, model)
    raise typer.Exit(run(answerer, top_k=top_k, history=history or Path.home() / ".qa_history", json_output=json_))


@app.command()
def status(
    json_: Annotated[bool, typer.Option("--json", help="Print JSON only.")] = False,
    corpus: CorpusOpt = DEFAULT_CORPUS,
    index: IndexOpt = DEFAULT_INDEX,
) -> None:
    """Show what is indexed and whether the index is stale against the corpus.

    \b
    Examples:
      qa status
      qa status --json | jq .stale
    """
    from . import store

    manifest = store.read_manifest(index)
    changed = store.stale_files(index, corpus, manifest) if corpus.exists() else None
    info = {
        "index": str(index),
        "corpus": manifest["corpus"],
        "generation": manifest["generation"],
        "model": manifest["model"],
        "built_at": manifest["built_at"],
        "files": manifest["counts"]["documents"],
        "passages": manifest["counts"]["passages"],
        "sentences": manifest["counts"]["sentences"],
        "faiss": manifest["faiss"],
        "chunking": manifest["chunking"],
        "skipped": manifest.get("skipped", []),
        "stale": bool(changed) if changed is not None else None,
        "changed_files": changed or [],
    }
    if json_:
        sys.stdout.write(json.dumps(info, ensure_ascii=False) + "\n")
        return
    from rich.table import Table

    from .render import console

    table = Table(show_header=False, box=None, pad_edge=False)
    for key in ("index", "corpus", "generation", "model", "built_at", "files", "passages", "sentences", "faiss"):
        table.add_row(key, str(info[key]))
    if changed is None:
        table.add_row("stale", f"unknown: {corpus}/ not found")
    else:
        table.add_row("stale", ("yes: " + ", ".join(changed[:5]) + (" …" if len(changed) > 5 else "")) if changed else "no")
    for s in info["skipped"]:
        table.add_row("skipped", f"{s['path']}: {s['reason']}")
    console().print(table)


@app.command()
def show(
    citation: Annotated[str, typer.Argument(help="PATH or PATH:START-END, as printed in any answer.")],
    context: Annotated[int, typer.Option("--context", "-C", min=0, max=50, help="Lines shown around the span.")] = 2,
) -> None:
    """Print a cited passage with the cited span highlighted, so any citation can be followed.

    \b
    Examples:
      qa show seeds/000_6e27ee18d903cc94.txt:71-89
      qa show seeds/000_6e27ee18d903cc94.txt
    """
    from .errors import BadInput
    from .render import console, passage

    path, start, end = _parse_citation(citation)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BadInput(f"no such file: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInput(f"cannot read {path}: {exc}") from None
    if start is None:
        start, end = 0, 0
    if not 0 <= start <= end <= len(text):
        raise BadInput(f"{start}-{end} is outside {path} ({len(text)} characters)")
    console().print(passage(path, text, start, end, context if end else None))


def _parse_citation(citation: str) -> tuple[str, int | None, int | None]:
    import re

    from .errors import BadInput

    m = re.fullmatch(r"(.+?):(\d+)-(\d+)", citation)
    if m:
        return m.group(1), int(m.group(2)), int(m.group(3))
    if re.search(r":\d+(-\d*)?$", citation) and not Path(citation).exists():
        raise BadInput(f"cannot read the span in {citation!r}; write PATH:START-END, e.g. seeds/a.txt:71-89")
    return citation, None, None


@app.command()
def batch(
    file: Annotated[str, typer.Argument(help="Questions: .txt (one a line), .jsonl (id, question), .csv (question[, id]) or - for stdin.")],
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Write here; .jsonl, .csv or .md by extension (default: JSON Lines on stdout).", show_default=False)] = None,
    fmt: Annotated[Optional[str], typer.Option("--format", "-f", help="Input format when the extension doesn't say: txt, jsonl or csv.", show_default=False)] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Skip questions already answered in the output file.")] = False,
    top_k: TopKOpt = 1,
    corpus: CorpusOpt = DEFAULT_CORPUS,
    index: IndexOpt = DEFAULT_INDEX,
    model: ModelOpt = "all-MiniLM-L6-v2",
) -> None:
    """Answer a file of questions, one answer record per question, in input order.

    Answers are written as they are found, so an interrupted run keeps its work;
    --resume picks up where it stopped. A bad input line gets an error record in
    its place and the run goes on (exit code 5 at the end).

    \b
    Examples:
      qa batch questions.txt -o answers.jsonl
      qa batch questions.csv -o report.md
      qa batch questions.jsonl -o answers.jsonl --resume
      cat questions.txt | qa batch - > answers.jsonl
    """
    import dataclasses

    from . import batchio
    from .answerer import clean_question
    from .errors import BadInput, BadQuestion

    if output is not None and file != "-" and Path(file).exists() and output.exists() and output.samefile(file):
        raise BadInput(f"the output {output} is the input file; choose another -o")
    total = _count_lines(file)
    items = batchio.read_items(file, fmt)
    done = batchio.answered_keys(output) if resume and output is not None else set()
    answerer = _open(corpus, index, model)
    failed = answered = 0
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    columns = [TextColumn("answering"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[rate]}"),
               TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn()]
    with Progress(*columns, console=_err(), transient=True) as bar, batchio.open_writer(output, resume) as writer:
        task = bar.add_task("answering", total=total, rate="")
        pending: list = []

        def flush() -> None:
            nonlocal answered
            good = [i for i in pending if i.error is None]
            results = iter(answerer.ask_batch([i.question for i in good], k=top_k, ids=[i.id for i in good]) if good else [])
            for item in pending:
                if item.error is None:
                    writer.write_result(item, next(results))
                    answered += 1
                else:
                    writer.write_error(item)
            bar.advance(task, len(pending))
            speed = bar.tasks[0].speed
            bar.update(task, rate=f"{speed:.1f} q/s" if speed else "")
            pending.clear()

        for item in items:
            if item.key in done:
                bar.advance(task, 1)
                continue
            if item.error is None:
                try:
                    clean_question(item.question)
                except BadQuestion as exc:
                    item = dataclasses.replace(item, error=str(exc))
            failed += item.error is not None
            pending.append(item)
            if len(pending) >= BATCH:
                flush()
        flush()
    skipped = len(done)
    _err().print(f"{answered} answered, {failed} failed" + (f", {skipped} already done" if skipped else "")
                 + (f" → {output}" if output else ""), highlight=False)
    if failed:
        raise typer.Exit(ExitStatus.PARTIAL)


BATCH = 16  # questions answered together: one encoder call, results written straight after


def _count_lines(file: str) -> int | None:
    """Lines in the input, for the progress bar's ETA (None for stdin or an unreadable file)."""
    if file == "-":
        return None
    try:
        with open(file, "rb") as handle:
            return sum(block.count(b"\n") for block in iter(lambda: handle.read(1 << 20), b""))
    except OSError:
        return None


@app.command("eval")
def eval_(
    gold: Annotated[Path, typer.Argument(help="Questions with gold answers (.jsonl as in seeds-dev), or SQuAD JSON with --squad.", exists=True, dir_okay=False)],
    squad: Annotated[bool, typer.Option("--squad", help="GOLD is a SQuAD file: index its paragraphs as the corpus.")] = False,
    json_: Annotated[bool, typer.Option("--json", help="Print the figures as JSON only.")] = False,
    plot: Annotated[Optional[Path], typer.Option("--plot", help="Draw accuracy against coverage and a reliability diagram to this PNG.", show_default=False)] = None,
    limit: Annotated[Optional[int], typer.Option("--limit", min=1, help="Only the first N questions.", show_default=False)] = None,
    corpus: CorpusOpt = DEFAULT_CORPUS,
    index: IndexOpt = DEFAULT_INDEX,
    model: ModelOpt = "all-MiniLM-L6-v2",
) -> None:
    """Measure qa on questions with known answers: retrieval, answers, abstention, calibration.

    Reports the figures of shared/eval/score.py (sentence_acc, span EM/F1, answered,
    abstain_ok, offsets_ok) plus recall@1/5/20, MRR, and ECE/Brier of the confidence,
    with BM25-only and dense-only retrieval beside qa's fused ranking.

    \b
    Examples:
      qa eval ../shared/eval/seeds-dev.jsonl
      qa eval dev-v1.1.json --squad --index squad-vectors --json
      qa eval ../shared/eval/seeds-dev.jsonl --plot calibration.png
    """
    from . import evaluate
    from .retriever import Retriever, Weights

    if squad:
        corpus = index.parent / f"{index.name}-corpus"
        golds = evaluate.write_squad_corpus(gold, corpus)
    else:
        golds = evaluate.load_gold(gold)
    golds = golds[:limit] if limit else golds
    answerer = _open(corpus, index, model)
    baselines = {
        "bm25": Retriever(answerer.index, answerer.retriever.encoder, Weights(1, 0, 0, 0)),
        "dense": Retriever(answerer.index, answerer.retriever.encoder, Weights(0, 1, 0, 0)),
    }
    progress = _Progress()
    try:
        report = evaluate.evaluate(answerer, golds, baselines=baselines, progress=progress)
    finally:
        progress.close()
    if plot:
        evaluate.plot(report, plot)
    if json_:
        sys.stdout.write(json.dumps(report.to_json(), ensure_ascii=False) + "\n")
        return
    from rich.table import Table

    from .render import console

    out = console()
    figures = report.to_json()
    table = Table(title=f"{len(golds)} questions", show_header=True)
    table.add_column("retrieval")
    for k in ("recall@1", "recall@5", "recall@20", "mrr"):
        table.add_column(k, justify="right")
    for name, r in [("qa (fused)", figures["retrieval"]), *figures["baselines"].items()]:
        table.add_row(name, *(f"{r[k]:.3f}" for k in ("recall@1", "recall@5", "recall@20", "mrr")))
    out.print(table)
    answers = Table(show_header=True)
    keys = ["sentence_acc", "span_em", "span_f1", "answered", "abstain_ok", "offsets_ok", "mean_answer_tokens"]
    for k in keys + ["ece", "brier"]:
        answers.add_column(k, justify="right")
    cal = figures["calibration"]
    answers.add_row(*("—" if figures[k] is None else str(figures[k]) for k in keys), f"{cal['ece']:.3f}", f"{cal['brier']:.3f}")
    out.print(answers)
    if plot:
        _err().print(f"plot written to {plot}", highlight=False)


def main() -> None:
    """Entry point: run the app, turning expected failures into one line and an exit code."""
    import signal

    from typer.exceptions import Abort, Exit, TyperException

    # `qa batch - | head`: die quietly on a closed pipe, as Unix filters do, instead of a
    # BrokenPipeError that click would turn into exit 1.
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    try:
        code = app(standalone_mode=False, prog_name="qa")  # returns typer.Exit's code in this mode
        sys.exit(code if isinstance(code, int) else ExitStatus.OK)
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
    except Exception as exc:  # a bug: one line, with the way to see more
        if os.environ.get("QA_DEBUG"):
            raise
        _err().print(f"qa: internal error: {type(exc).__name__}: {exc} (set QA_DEBUG=1 for the traceback)", highlight=False)
        sys.exit(ExitStatus.ERROR)
