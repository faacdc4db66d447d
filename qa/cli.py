"""The `qa` command: parses arguments, calls the library, renders. Nothing else lives here."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from .errors import ExitStatus, QAError, UsageProblem

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

CorpusOpt = Annotated[Path, typer.Option("--corpus", "-c", envvar="QA_CORPUS", help="Folder of articles: .txt, .md, .html, .pdf, .docx.")]
IndexOpt = Annotated[Path, typer.Option("--index", "-i", envvar="QA_INDEX", help="Folder holding the index.")]
ModelOpt = Annotated[str, typer.Option("--model", envvar="QA_MODEL", help="Embedding model (qa packages all-MiniLM-L6-v2).")]
TopKOpt = Annotated[int, typer.Option("--top-k", "-k", min=1, max=50, help="How many distinct answers to show.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the JSON answer record only.")]

DEFAULT_CORPUS = Path("seeds")
DEFAULT_INDEX = Path("vectors")


def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            number = version("qa")
        except PackageNotFoundError:  # run from a source tree that was never installed
            number = "unknown"
        sys.stdout.write(f"qa {number}\n")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[bool, typer.Option("--version", "-V", callback=_print_version, is_eager=True,
                                          help="Print qa's version and exit.")] = False,
) -> None:
    pass


def _err():
    from .render import console

    return console(stderr=True)


def _notify(message: str) -> None:
    from rich.text import Text

    from .render import message as say

    say(_err(), Text.assemble(("qa:", "dim"), f" {message}"))


class _Progress:
    """A rich progress bar on stderr while something is being embedded; nothing off a terminal.

    Until the first texts are done the bar says the model is loading: that takes seconds, and a
    bar standing at 0 without a word looks hung.
    """

    LOADING = "loading the model"

    def __init__(self, console=None) -> None:
        self.console = console or _err()
        self.bar = None
        self.task = None

    def __call__(self, stage: str, done: int, total: int) -> None:
        if total == 0 or not self.console.is_terminal:
            return
        if self.bar is None:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                TimeRemainingColumn(), console=self.console, transient=True)
            self.bar.start()
            self.task = self.bar.add_task(self.LOADING, total=total)
        self.bar.update(self.task, completed=done, description=stage if done else self.LOADING)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


class Interrupted(Exception):
    """Ctrl-C, with what the user should know about what was kept."""


def _kept(index: Path) -> str:
    """What an interrupted `qa index` left: the previous generation, whole, or nothing."""
    from . import store

    try:
        manifest = store.read_manifest(index)
    except Exception:  # noqa: BLE001 - whatever is there, nothing new was written over it
        return f"interrupted; nothing was written to {index}/ — run `qa index` again to build it"
    counts = manifest["counts"]
    return (f"interrupted; {index}/ still holds the previous index, whole ({counts['documents']} files, "
            f"{counts['passages']} passages, built {manifest['built_at']}) — run `qa index` again to finish")


def _check_corpus(corpus: Path, named_by: str = "--corpus PATH") -> None:
    """A missing corpus fails before any loading, with the way to name another one."""
    from .errors import CorpusError

    if not corpus.exists():
        hint = (f"run qa in the folder that holds seeds/, or name your articles' folder: {named_by} (or set QA_CORPUS)"
                if corpus == DEFAULT_CORPUS else f"name the folder of your articles: {named_by}")
        raise CorpusError(f"no such corpus folder: {corpus} — {hint}")


def _check_index(index: Path, create: bool = True) -> None:
    """--index must name a folder qa can use; say what is wrong with it in plain words.

    With create, the folder is made now (ask and index would make it anyway), so a place that
    cannot hold one fails here, before any work, with the reason and not a traceback.
    """
    from .errors import BadInput

    for folder in (index, *index.parents):
        if folder.exists() or folder.is_symlink():
            if not folder.is_dir():
                what = "--index" if folder == index else f"--index {index}: {folder}"
                raise BadInput(f"{what} is a file, not a folder; pass --index with a folder for the index")
            break
    if create:
        try:
            index.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise BadInput(f"cannot create the index folder {index}: {exc.strerror or 'not allowed'}; "
                           "pass --index with a folder you can write to") from None


READERS = ("trained", "rules")


def _reader_kind() -> str:
    """QA_READER picks the reader: the trained model shipped with qa (default), the earlier rules
    (for comparison), or the folder of another model written by training/train_reader.py."""
    kind = os.environ.get("QA_READER", "").strip() or "trained"
    if kind.lower() in READERS:
        return kind.lower()
    if not Path(kind).is_dir():
        raise UsageProblem(f"QA_READER is {kind!r}: give trained, rules, or the folder of a reader model")
    return kind


def _open(corpus: Path, index: Path, model: str):
    from .api import open_answerer

    _check_corpus(corpus)
    _check_index(index)
    progress = _Progress()
    try:
        return open_answerer(corpus, index, model, notify=_notify, progress=progress, reader=_reader_kind())
    except KeyboardInterrupt:
        progress.close()
        raise Interrupted(_kept(index)) from None
    finally:
        progress.close()


@app.command(short_help="Index the articles, embedding only what changed.")
def index(
    corpus: Annotated[Optional[Path], typer.Argument(help="Folder of articles (default: $QA_CORPUS or seeds/).", show_default=False)] = None,
    index: IndexOpt = DEFAULT_INDEX,
    model: ModelOpt = "all-MiniLM-L6-v2",
    rebuild: Annotated[bool, typer.Option("--rebuild", help="Start from scratch instead of updating.")] = False,
) -> None:
    """Index the articles: split them into passages, embed them, and write the index.

    Only new or changed files are embedded again; deleted files leave the index. Reads .txt,
    .md, web pages (.html, .htm), PDFs and Word files (.docx); a file that cannot be read, or
    that runs past the extraction limits (QA_EXTRACT_TIMEOUT, QA_EXTRACT_MEMORY_MB), is skipped
    with one line.

    \b
    Examples:
      qa index
      qa index ~/news --index ~/news-index
      qa index --rebuild
    """
    from .api import build_index

    corpus = corpus or Path(os.environ.get("QA_CORPUS", DEFAULT_CORPUS))
    _check_corpus(corpus, "qa index PATH")
    _check_index(index)
    progress = _Progress()
    try:
        report = build_index(corpus, index, model, rebuild=rebuild, progress=progress)
    except KeyboardInterrupt:
        progress.close()
        raise Interrupted(_kept(index)) from None
    finally:
        progress.close()
    err = _err()
    for s in report.skipped:
        err.print(f"[yellow]skipped[/yellow] {s.path}: {s.reason}", highlight=False)
    if report.encoder:
        err.print(f"exported the query encoder to {index / 'encoder'}/ again ({report.encoder})", highlight=False)
    if report.unchanged:
        err.print(f"{index}/ is up to date: {len(report.kept)} files, {report.passages} passages", highlight=False)
        return
    err.print(
        f"indexed {corpus}/ into {index}/: {len(report.added)} added, {len(report.updated)} updated, "
        f"{len(report.removed)} removed, {len(report.kept)} kept; {report.passages} passages "
        f"({report.embedded_passages} passages and {report.embedded_sentences} sentences embedded)",
        highlight=False,
    )


@app.command(short_help="Answer one question, cited to the character.")
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
      qa ask "How many humanitarian corridors?" --json | jq -r '.answers[0].answer'
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


@app.command(short_help="Ask question after question, loading everything once.")
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


@app.command(short_help="Show what is indexed and whether it fits the corpus.")
def status(
    json_: Annotated[bool, typer.Option("--json", help="Print JSON only.")] = False,
    corpus: CorpusOpt = DEFAULT_CORPUS,
    index: IndexOpt = DEFAULT_INDEX,
) -> None:
    """Show what is indexed, whether it fits the corpus, and whether any of it is damaged.

    Every file of the index is checked, the query encoder export included. Exits 4, with the
    fix on stderr, when the index is damaged or was built from another corpus.

    \b
    Examples:
      qa status
      qa status --json | jq '.stale'
    """
    from . import api, ingest, store
    from .errors import IndexDamaged, IndexForeign

    _check_index(index, create=False)
    manifest = store.read_manifest(index)
    problems: list[QAError] = []
    try:
        store.load(index)
    except IndexDamaged as exc:
        problems.append(exc)
    encoder = None
    if manifest["model"] == api.embedder_mod.MiniLM.name:
        encoder, why = api.encoder_state(index, full=True)
        if encoder == "damaged":
            problems.append(IndexDamaged(api.encoder_damage(index, why)))
    mismatch = api.corpus_mismatch(manifest, index, corpus) if corpus.exists() else None
    if mismatch:
        problems.append(IndexForeign(mismatch))
    changed = ingest.stale_files(index, corpus, manifest) if corpus.exists() and not mismatch else None
    info = {
        "index": str(index),
        "corpus": str(corpus.resolve()) if corpus.exists() else str(corpus),
        "indexed_from": manifest["corpus"],
        "generation": manifest["generation"],
        "model": manifest["model"],
        "built_at": manifest["built_at"],
        "files": manifest["counts"]["documents"],
        "passages": manifest["counts"]["passages"],
        "sentences": manifest["counts"]["sentences"],
        "faiss": manifest["faiss"],
        "shards": manifest["dense"]["shards"],
        "encoder": encoder,
        "chunking": manifest["chunking"],
        "skipped": manifest.get("skipped", []),
        "fits": None if not corpus.exists() else not mismatch,
        "stale": bool(changed) if changed is not None else None,
        "changed_files": changed or [],
        "problems": [str(p) for p in problems],
    }
    if json_:
        sys.stdout.write(json.dumps(info, ensure_ascii=False) + "\n")
    else:
        rows = [(key, str(info[key])) for key in ("index", "corpus")]
        if info["indexed_from"] != info["corpus"]:
            rows.append(("indexed_from", info["indexed_from"]))
        rows += [(key, str(info[key])) for key in ("generation", "model", "built_at", "files", "passages", "sentences")]
        rows.append(("search", f"approximate (FAISS IVF, {info['shards']} shards)" if info["shards"] else "exact"))
        if encoder is not None:
            rows.append(("encoder", {"ok": "ok", "missing": "not exported yet (the next `qa ask` exports it)",
                                     "stale": "out of date (the next `qa ask` exports it again)",
                                     "damaged": "damaged", "absent": "none (onnxruntime missing)"}[encoder]))
        if not corpus.exists():
            rows.append(("fits", f"unknown: {corpus}/ not found"))
        else:
            rows.append(("fits", "no: built from another corpus" if mismatch else "yes"))
        if changed is not None:
            rows.append(("stale", ("yes: " + ", ".join(changed[:5]) + (" …" if len(changed) > 5 else "")) if changed else "no"))
        rows += [("skipped", f"{s['path']}: {s['reason']}") for s in info["skipped"]]
        rows.append(("health", "damaged" if any(isinstance(p, IndexDamaged) for p in problems) else "ok"))
        from .render import console, emit

        out = console()
        width = max(len(key) for key, _ in rows) + 2
        for key, value in rows:
            emit(out, key.ljust(width), _text(value))
    if problems:
        raise problems[0]


@app.command(short_help="Print the lines a citation points to, span marked.")
def show(
    citation: Annotated[str, typer.Argument(help="A citation as qa prints it: PATH:LINE:START-END, or PATH:LINE, PATH:START-END, PATH.")],
    context: Annotated[int, typer.Option("--context", "-C", min=0, max=50, help="Lines shown around the span.")] = 2,
    whole_text: Annotated[bool, typer.Option("--text", help="Print the file's whole text as qa reads it (for HTML, PDF and Word: as extracted), unmarked: the text citations' offsets index.")] = False,
) -> None:
    """Print the lines a citation points to, with line numbers and the cited span marked.

    Paste any citation qa prints, as printed. The span is shown in reverse video on a
    terminal and between [[ and ]] in a pipe or with NO_COLOR. Web pages, PDFs and Word
    files are shown as qa extracted them; --text prints that text whole, exactly, so that
    text[start:end] is the cited answer.

    \b
    Examples:
      qa show seeds/000_6e27ee18d903cc94.txt:2:408-426
      qa show seeds/000_6e27ee18d903cc94.txt:2
      qa show seeds/000_6e27ee18d903cc94.txt
      qa show --text reports/annual.pdf > annual.txt
    """
    from rich.text import Text

    from .render import console, passage

    ref = parse_citation(citation)
    text = _read_cited(ref.path, exact=whole_text)
    if whole_text:
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    start, end = ref.span(text)
    out = console()
    header = Text(ref.label(text, start, end), style="cyan")
    passage(out, header, text, start, end, None if ref.whole_file else context)


def _read_cited(path: str, exact: bool = False) -> str:
    """The text a citation of path indexes. exact keeps "\r\n" as indexed (qa reads files
    undecorated); the marked display reads them as lines."""
    from . import documents
    from .errors import BadInput

    try:
        if documents.kind_of(path) is not None and Path(path).is_file():
            from .corpus import document_text

            text, why = document_text(Path(path))
            if text is None:
                raise BadInput(f"cannot show {path}: it {why}")
            return text
        return Path(path).read_bytes().decode("utf-8") if exact else Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BadInput(f"no such file: {path}") from None
    except IsADirectoryError:
        raise BadInput(f"{path} is a folder; give a file, as in a citation") from None
    except UnicodeDecodeError:
        raise BadInput(f"cannot read {path}: it is not UTF-8 text") from None
    except OSError as exc:
        raise BadInput(f"cannot read {path}: {exc.strerror or 'unreadable'}") from None


class Ref:
    """A parsed citation: a file, and a line, a character span, both, or neither."""

    def __init__(self, path: str, line: int | None = None, start: int | None = None, end: int | None = None) -> None:
        self.path, self.line, self.start, self.end = path, line, start, end

    @property
    def whole_file(self) -> bool:
        return self.line is None and self.start is None

    def span(self, text: str) -> tuple[int, int]:
        """The cited characters of text, checked against it; BadInput when they do not fit."""
        from .errors import BadInput

        lines = text.split("\n")
        if self.start is not None:
            if self.start > self.end:
                raise BadInput(f"{self.start}-{self.end} ends before it starts; a citation reads START-END, as in "
                               f"{self.path}:{self.end}-{self.start}")
            if self.end > len(text):
                raise BadInput(f"characters {self.start}-{self.end} are past the end of {self.path} ({len(text):,} characters); "
                               "it has changed since the citation was made")
            if self.line is not None:
                actual = text.count("\n", 0, self.start) + 1
                if actual != self.line:
                    raise BadInput(f"{self.path} has changed since the citation was made: characters "
                                   f"{self.start}-{self.end} are on line {actual}, not line {self.line}")
            return self.start, self.end
        if self.line is not None:
            if not 1 <= self.line <= len(lines):
                raise BadInput(f"{self.path} has {len(lines):,} lines; there is no line {self.line}")
            lo = sum(len(s) + 1 for s in lines[: self.line - 1])
            return lo, lo + len(lines[self.line - 1])
        return 0, 0

    def label(self, text: str, start: int, end: int) -> str:
        if self.whole_file:
            return self.path
        line = text.count("\n", 0, start) + 1
        return f"{self.path}:{line}:{start}-{end}"


_CITATION = None


def parse_citation(citation: str) -> Ref:
    """Every form qa prints or printed: PATH:LINE:START-END, PATH:LINE [START-END], PATH:START-END,
    PATH:LINE and PATH, each with the trailing words (date, title) a rendered line carries."""
    import re

    from .errors import BadInput

    global _CITATION
    if _CITATION is None:
        _CITATION = re.compile(
            r"(?P<path>.+?)(?::(?P<line>\d+))?(?::(?P<s1>\d+)-(?P<e1>\d+)| \[(?P<s2>\d+)-(?P<e2>\d+)\])?"
            r",?(?:\s{2,}.*)?"  # a comma from an `also:` list; "  July 29 · title" after a citation in `qa ask` output
        )
    text = citation.strip()
    if not text:
        raise BadInput("give a citation as qa prints it, e.g. seeds/a.txt:7:446-463")
    if Path(text).exists():
        return Ref(text)
    m = _CITATION.fullmatch(text)
    if m is None or not (m["line"] or m["s1"] or m["s2"]):
        return Ref(text)  # a plain path; a missing file is reported when it is read
    start, end = (m["s1"], m["e1"]) if m["s1"] else (m["s2"], m["e2"])
    ref = Ref(m["path"], int(m["line"]) if m["line"] else None,
              int(start) if start else None, int(end) if end else None)
    if not Path(ref.path).exists() and not Path(text).exists():
        raise BadInput(f"no such file: {ref.path}")
    return ref


@app.command(short_help="Answer a file of questions, in input order.")
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
    err = _err()
    # Off a terminal no bar at all: rich would still leave an empty line on stderr when it stops.
    with Progress(*columns, console=err, transient=True, disable=not err.is_terminal) as bar, \
            batchio.open_writer(output, resume) as writer:
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


@app.command("eval", short_help="Measure qa on questions with known answers.")
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
    from .render import console

    out = console()
    for line in eval_lines(report.to_json(), report.metrics.answerable):
        out.print(line, soft_wrap=True, markup=False)
    if plot:
        _err().print(f"plot written to {plot}", highlight=False)


RETRIEVAL_KEYS = ("recall@1", "recall@5", "recall@20", "mrr")
ANSWER_KEYS = (  # (key, what it is a share of)
    ("sentence_acc", "answerable: top answer's sentence holds a gold answer"),
    ("span_em", "answerable: the answer is a gold answer, exactly"),
    ("span_f1", "answerable: word overlap with the best gold answer"),
    ("answered", "answerable: answered rather than abstained"),
    ("abstain_ok", "unanswerable: abstained"),
    ("offsets_ok", "answers given: the offsets cut out answer and sentence"),
)


def eval_lines(figures: dict, answerable: int) -> list[str]:
    """`qa eval`'s report as plain lines under 80 columns: every figure to three places."""
    questions = figures["questions"]
    retrieved = figures["retrieval"]["questions"]
    rows = [("qa (fused)", figures["retrieval"]), *figures["baselines"].items()]
    name_width = max(len("retrieval"), *(len(name) for name, _ in rows))
    lines = [f"retrieval: {retrieved} of {questions} questions (the answerable ones with a gold source)",
             "  ".join(["retrieval".ljust(name_width), *(k.rjust(9) for k in RETRIEVAL_KEYS)])]
    for name, r in rows:
        lines.append("  ".join([name.ljust(name_width), *(f"{r[k]:.3f}".rjust(9) for k in RETRIEVAL_KEYS)]))
    cal = figures["calibration"]
    lines += ["", f"answers: {questions} questions, {answerable} answerable and {questions - answerable} not"]
    key_width = max(len(k) for k, _ in ANSWER_KEYS)
    for key, share in ANSWER_KEYS:
        value = "—" if figures[key] is None else f"{figures[key]:.3f}"
        lines.append(f"{key.ljust(key_width)}  {value.rjust(5)}  of {share}")
    lines.append(f"{'ece'.ljust(key_width)}  {cal['ece']:.3f}  calibration error of the confidence (0 is perfect)")
    lines.append(f"{'brier'.ljust(key_width)}  {cal['brier']:.3f}  mean squared error of the confidence")
    lines.append(f"answers average {figures['mean_answer_tokens']:.1f} words")
    return [line.rstrip() for line in lines]


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
        _say("qa: error:", str(exc))
        sys.exit(int(exc.exit_code))
    except Interrupted as exc:
        _say("qa:", str(exc))
        sys.exit(ExitStatus.INTERRUPTED)
    except Exit as exc:
        sys.exit(exc.exit_code)
    except Abort:
        sys.exit(ExitStatus.INTERRUPTED)
    except TyperException as exc:  # usage errors: typer prints them with the usage line
        exc.show()
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        _say("qa:", "interrupted")
        sys.exit(ExitStatus.INTERRUPTED)
    except Exception as exc:  # a bug: one line, with the way to see more
        if os.environ.get("QA_DEBUG"):
            raise
        # The exception's words, not its class name: that is for QA_DEBUG's traceback.
        _say("qa: internal error:", f"{str(exc) or 'something went wrong'} (set QA_DEBUG=1 for the traceback)")
        sys.exit(ExitStatus.ERROR)


def _text(value: str):
    from rich.text import Text

    return Text(value)


def _say(label: str, text: str) -> None:
    from rich.text import Text

    from .render import message

    message(_err(), Text.assemble((label, "red"), f" {text}"))
