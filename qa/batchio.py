"""Reading question files and writing answer files for `qa batch`: no terminal, no model.

Input is read as a stream and output is written record by record, so a 100k-line batch runs
in constant memory and an interrupted run keeps every answer it finished.
"""
from __future__ import annotations

import csv
import io
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Union

from .errors import BadInput
from .types import Result

from .answerer import MAX_QUESTION_CHARS  # one limit for `ask`, `chat` and `batch`
# Past this a line is not a question but a stray binary or minified file; reading stops here
# so one such line cannot take the whole file into memory.
MAX_LINE_CHARS = 1 << 20

INPUT_FORMATS = ("txt", "jsonl", "csv")
OUTPUT_FORMATS = ("jsonl", "csv", "md")
# `line` is there so rows without an id can still be keyed on --resume.
CSV_COLUMNS = ("line", "id", "question", "answer", "source", "score", "abstained", "error")

Source = Union[str, os.PathLike, IO[str]]


@dataclass(frozen=True)
class Item:
    """One input record: a question to ask, or why it cannot be asked."""

    line: int  # 1-based line in the input; for CSV, the line the record starts on
    id: str | None
    question: str | None
    error: str | None = None

    @property
    def key(self) -> str:
        """What --resume matches on: the id, or the line number where there is no id."""
        return self.id if self.id is not None else f"line:{self.line}"


# ---------------------------------------------------------------------------- reading


def read_items(source: Source, fmt: str | None = None) -> Iterator[Item]:
    """Stream the items of a question file, `-` (stdin) or an open text stream, in input order."""
    fmt = _input_format(source, fmt)
    if _is_path(source):
        path = Path(source)
        if not path.exists():
            raise BadInput(f"{path}: no such file")
        if path.is_dir():
            raise BadInput(f"{path} is a folder; give a .txt, .jsonl or .csv file of questions")
        if _looks_binary(path):
            raise BadInput(f"{path} looks binary, not a file of questions; give a .txt, .jsonl or .csv file")
    return {"txt": _read_txt, "jsonl": _read_jsonl, "csv": _read_csv}[fmt](source)


def _looks_binary(path: Path) -> bool:
    """Whether the file's first 8 KiB are mostly not text: control bytes and invalid UTF-8.

    A stray NUL or a bad byte in one line is that line's error; a file that is a tenth such bytes
    (an image, an archive, a UTF-16 file) is not questions at all and is refused whole.
    """
    try:
        with open(path, "rb") as handle:
            sample = handle.read(8192)
    except OSError:
        return False  # reported when the file is opened for reading
    if not sample:
        return False
    controls = sum(1 for byte in sample if byte < 9 or 13 < byte < 32 or byte == 127)
    invalid = sample.decode("utf-8", errors="replace").count("\ufffd")
    return (controls + invalid) / len(sample) > 0.1


def _input_format(source: Source, fmt: str | None) -> str:
    if fmt is not None:
        if fmt.lower() not in INPUT_FORMATS:
            raise BadInput(f"unknown input format {fmt!r}; use txt, jsonl or csv")
        return fmt.lower()
    if not _is_path(source):
        return "txt"
    suffix = Path(source).suffix.lower()
    if suffix.lstrip(".") in INPUT_FORMATS:
        return suffix.lstrip(".")
    raise BadInput(
        f"{source}: cannot read {suffix or 'files without an extension'}; questions come as .txt (one a line), "
        ".jsonl (objects with \"question\" and optional \"id\") or .csv (a question column, optional id)"
    )


def _is_path(source: Source) -> bool:
    return isinstance(source, (str, os.PathLike)) and source != "-"


@contextmanager
def _open_text(source: Source, newline: str | None) -> Iterator[IO[str]]:
    # surrogateescape: a bad byte spoils its own line (reported there), not the whole run.
    if source == "-":
        buffer = getattr(sys.stdin, "buffer", None)
        if buffer is None:  # stdin replaced by a text stream (tests, embedding): already decoded
            yield sys.stdin
            return
        stream = io.TextIOWrapper(buffer, encoding="utf-8-sig", errors="surrogateescape", newline=newline)
        try:
            yield stream
        finally:
            stream.detach()  # closing the wrapper would close the process's stdin
    elif _is_path(source):
        try:
            handle = open(source, encoding="utf-8-sig", errors="surrogateescape", newline=newline)
        except OSError as exc:
            raise BadInput(f"cannot read {source}: {exc.strerror}") from exc
        with handle:
            yield handle
    else:
        yield source  # type: ignore[misc]  # the caller's stream: the caller closes it


def _lines(stream: IO[str]) -> Iterator[tuple[int, str | None]]:
    """Yield (line number, text without its newline), with None for a line over MAX_LINE_CHARS."""
    number = 0
    while True:
        line = stream.readline(MAX_LINE_CHARS)
        if not line:
            return
        number += 1
        if len(line) == MAX_LINE_CHARS and not line.endswith("\n"):
            while True:  # skip the rest of the over-long line without keeping it
                rest = stream.readline(MAX_LINE_CHARS)
                if not rest or rest.endswith("\n"):
                    break
            yield number, None
        else:
            if number == 1:
                line = line.removeprefix("\ufeff")  # a BOM survives when the caller opened the stream
            yield number, line.rstrip("\r\n")


def _text_lines(source: Source, comments: bool) -> Iterator[tuple[int, str | None, str | None]]:
    """(line number, text, error) for every line worth reading: blank lines (and, with comments,
    lines starting with #) are skipped; over-long and undecodable lines come with their error."""
    with _open_text(source, newline=None) as stream:
        for number, text in _lines(stream):
            if text is None:
                yield number, None, _line_too_long()
                continue
            stripped = text.strip()
            if not stripped or comments and stripped.startswith("#"):
                continue
            if _undecodable(text):
                yield number, None, "not valid UTF-8"
                continue
            yield number, text, None


def _read_txt(source: Source) -> Iterator[Item]:
    for number, text, error in _text_lines(source, comments=True):
        if error:
            yield Item(number, None, None, error)
            continue
        question, error = _question(text)
        yield Item(number, None, question, error)


def _read_jsonl(source: Source) -> Iterator[Item]:
    for number, text, error in _text_lines(source, comments=False):
        if error:
            yield Item(number, None, None, error)
            continue
        try:
            record = json.loads(text)
        except (ValueError, RecursionError) as exc:
            detail = f"{exc.msg} at column {exc.colno}" if isinstance(exc, json.JSONDecodeError) else str(exc)
            yield Item(number, None, None, f"not valid JSON: {detail}")
            continue
        if not isinstance(record, dict):
            yield Item(number, None, None, f"not a JSON object but {_kind(record)}")
            continue
        question, error = _question(record.get("question", _MISSING))
        raw_id = record.get("id")
        if raw_id is None or isinstance(raw_id, str):
            id_ = raw_id or None  # "" cannot be told from "no id" once written to CSV
        elif isinstance(raw_id, (int, float)) and not isinstance(raw_id, bool):
            id_ = json.dumps(raw_id)
        else:
            id_, error = None, f'"id" is {_kind(raw_id)}; it must be a string or a number'
        yield Item(number, id_, question, error)


def _read_csv(source: Source) -> Iterator[Item]:
    name = "stdin" if source == "-" else str(source) if _is_path(source) else str(getattr(source, "name", "the input"))
    with _open_text(source, newline="") as stream:
        reader = csv.reader(stream)
        header: list[str] | None = None
        while True:
            start = reader.line_num + 1  # the reader never reads ahead, so this is where the next row starts
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:  # the reader resumes on the next line after one of these
                yield Item(start, None, None, f"bad CSV: {exc}")
                continue
            if not any(cell.strip() for cell in row):
                continue  # blank lines, and the ",,," rows spreadsheets leave behind
            if header is None:
                header = [cell.removeprefix("\ufeff").strip().lower() for cell in row]
                if "question" not in header:
                    found = ", ".join(cell for cell in header if cell) or "nothing"
                    raise BadInput(f"{name}: the first row must name a 'question' column (and optionally 'id'); found {found}")
                question_at = header.index("question")
                id_at = header.index("id") if "id" in header else None
                continue
            if any(_undecodable(cell) for cell in row):
                yield Item(start, None, None, "not valid UTF-8")
                continue
            if len(row) > len(header):
                yield Item(start, None, None, f"{len(row)} fields but the header has {len(header)}; quote fields that hold commas")
                continue
            row += [""] * (len(header) - len(row))  # spreadsheets drop empty trailing cells
            id_ = (row[id_at].strip() or None) if id_at is not None else None
            question, error = _question(row[question_at])
            yield Item(start, id_, question, error)


_MISSING = object()


def _question(value: object) -> tuple[str | None, str | None]:
    """The question as it will be asked, or None and why not."""
    if value is _MISSING:
        return None, 'no "question" field'
    if not isinstance(value, str):
        return None, f'"question" is {_kind(value)}, not a string'
    question = value.strip()
    if not question:
        return None, "empty question"
    if not any(char.isprintable() and not char.isspace() for char in question):
        return None, "the question is only control characters"
    if len(question) > MAX_QUESTION_CHARS:
        return question, f"the question is {len(question):,} characters; the limit is {MAX_QUESTION_CHARS:,}"
    return question, None


def _line_too_long() -> str:
    return f"the line is over {MAX_LINE_CHARS:,} characters; a question may have {MAX_QUESTION_CHARS:,}"


def _undecodable(text: str) -> bool:
    # Bytes that were not UTF-8 arrive as lone surrogates (surrogateescape).
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _kind(value: object) -> str:
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, (int, float)):
        return "a number"
    return {str: "a string", list: "a list", dict: "an object", type(None): "null"}.get(type(value), "another kind of value")


# ---------------------------------------------------------------------------- writing


class Writer:
    """Writes one record per item in the order given, flushed as it goes; a context manager."""

    def __init__(self, path: Path | None, resume: bool = False) -> None:
        self.path = path  # None: stdout
        # Replacing starts only with the first record, so a run that dies before it has
        # anything to say leaves the previous output alone.
        self._mode = "a" if resume else "w"
        self._stream: IO[str] | None = None
        self._closed = False
        self._last_line = 0

    def write_result(self, item: Item, result: Result) -> None:
        """Write the answer to an item."""
        if result.id != item.id:
            raise ValueError(f"result id {result.id!r} is not the item's id {item.id!r}")
        self._emit(item, self._result_text(item, result))

    def write_error(self, item: Item) -> None:
        """Write the record for an item that could not be asked (item.error says why)."""
        if not item.error:
            raise ValueError(f"item on line {item.line} has no error to write")
        self._emit(item, self._error_text(item))

    def close(self) -> None:
        """Finish the output; a run with no records still replaces the file with an empty one."""
        if self._closed:
            return
        stream = self._stream or self._open()
        if self.path is None:
            stream.flush()
        else:
            stream.close()
        self._closed = True

    def __enter__(self) -> Writer:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None and self._stream is None:
            self._closed = True  # failed before the first record: keep whatever output was there
            return
        self.close()

    def _emit(self, item: Item, text: str) -> None:
        if self._closed:
            raise ValueError("writer is closed")
        # Resume and every reader of the output rely on input order.
        if item.line <= self._last_line:
            raise ValueError(f"line {item.line} written after line {self._last_line}; records must stay in input order")
        self._last_line = item.line
        stream = self._stream or self._open()
        stream.write(text)  # one write per record: a kill tears at most the last one
        stream.flush()

    def _open(self) -> IO[str]:
        if self.path is None:
            self._stream = sys.stdout
            return self._stream
        try:
            self._stream = open(self.path, self._mode, encoding="utf-8", newline="")
        except OSError as exc:
            raise BadInput(f"cannot write {self.path}: {exc.strerror}") from exc
        if self._stream.tell() == 0:
            self._stream.write(self._header())
            self._stream.flush()
        return self._stream

    def _header(self) -> str:
        return ""

    def _result_text(self, item: Item, result: Result) -> str:
        raise NotImplementedError

    def _error_text(self, item: Item) -> str:
        raise NotImplementedError


class JsonlWriter(Writer):
    """The answer record of the eval README, one a line; error records for failed lines."""

    def __init__(self, path: Path | None, resume: bool = False) -> None:
        super().__init__(path, resume)
        encoding = (getattr(sys.stdout, "encoding", None) or "") if path is None else "utf-8"
        # A terminal or pipe that cannot take UTF-8 still gets valid JSON.
        self._ascii = encoding.lower().replace("-", "").replace("_", "") not in ("utf8", "utf8sig")

    def _result_text(self, item: Item, result: Result) -> str:
        record = result.to_json()
        if item.id is None:
            record["line"] = item.line  # the only key --resume has for a record without an id
        return json.dumps(record, ensure_ascii=self._ascii) + "\n"

    def _error_text(self, item: Item) -> str:
        record: dict = {"line": item.line}
        if item.id is not None:
            record["id"] = item.id
        if item.question is not None:
            record["question"] = item.question
        record["error"] = item.error
        return json.dumps(record, ensure_ascii=self._ascii) + "\n"


class CsvWriter(Writer):
    """One row a question with its top answer; columns CSV_COLUMNS."""

    def _header(self) -> str:
        return _csv_row(CSV_COLUMNS)

    def _result_text(self, item: Item, result: Result) -> str:
        answer = source = score = ""
        if result.answers and not result.abstained:  # an abstention's candidates are not answers
            top = result.answers[0]
            answer, source, score = top.answer, _cite(top.source), str(round(top.score, 4))
        abstained = "true" if result.abstained else "false"
        return _csv_row((item.line, item.id or "", result.question, answer, source, score, abstained, ""))

    def _error_text(self, item: Item) -> str:
        return _csv_row((item.line, item.id or "", item.question or "", "", "", "", "", item.error))


class MarkdownWriter(Writer):
    """A report to read: a heading per question, the answer, its sentence and where it is."""

    def _result_text(self, item: Item, result: Result) -> str:
        parts = [f"## {_md(result.question, 200)}", _md_where(item)]
        if result.abstained or not result.answers:
            parts.append("The articles don't say.")
        else:
            top = result.answers[0]
            cite = [f"`{_cite(top.source)}`"]
            page = f"page {top.source.page}" if top.source.page is not None else None
            cite += [_md(text) for text in (page, top.source.title, top.source.date) if text]
            parts += [f"**{_md(top.answer)}**", f"> {_md(top.sentence)}", "— " + " · ".join(cite)]
        return "\n\n".join(parts) + "\n\n"

    def _error_text(self, item: Item) -> str:
        heading = _md(item.question, 200) if item.question else f"Line {item.line}"
        return "\n\n".join([f"## {heading}", _md_where(item), f"**Error:** {_md(item.error or '')}"]) + "\n\n"


_WRITERS: dict[str, type[Writer]] = {"jsonl": JsonlWriter, "csv": CsvWriter, "md": MarkdownWriter}


def open_writer(path: str | os.PathLike[str] | None, resume: bool = False) -> Writer:
    """The writer for an output file chosen by its extension; None or `-` writes JSON lines to stdout.

    With resume, a torn last record is cut off now and new records are appended; without it,
    an existing file is replaced when the first record is written.
    """
    if path is None or path == "-":
        if resume:
            raise BadInput("resuming needs an output file to continue (-o answers.jsonl or .csv)")
        return JsonlWriter(None)
    path = Path(path)
    fmt = _output_format(path)
    if path.is_dir():
        raise BadInput(f"{path} is a folder; give a file name ending .jsonl, .csv or .md")
    if not path.parent.is_dir():
        raise BadInput(f"cannot write {path}: folder {path.parent} does not exist")
    if resume:
        if fmt == "md":
            raise BadInput(_NO_MD_RESUME.format(path=path))
        if path.exists():
            _repair(path, fmt)
    return _WRITERS[fmt](path, resume)


def answered_keys(path: str | os.PathLike[str]) -> set[str]:
    """Keys (Item.key) of the records an earlier run wrote to path; a torn last record does not count."""
    path = Path(path)
    fmt = _output_format(path)
    if fmt == "md":
        raise BadInput(_NO_MD_RESUME.format(path=path))
    if not path.exists():
        return set()
    return _scan(path, fmt)[0]


_NO_MD_RESUME = "cannot resume {path}: a Markdown report cannot be continued; resume with .jsonl or .csv output"


def _output_format(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix.lstrip(".") in OUTPUT_FORMATS:
        return suffix.lstrip(".")
    raise BadInput(f"{path}: cannot write {suffix or 'files without an extension'}; answers go to .jsonl, .csv or .md")


def _repair(path: Path, fmt: str) -> None:
    """Cut a torn last record off an output file, so appending never leaves a broken line."""
    _, end, needs_newline = _scan(path, fmt)
    with open(path, "r+b") as handle:
        handle.truncate(end)
        if needs_newline:
            handle.seek(end)
            handle.write(b"\n")


def _scan(path: Path, fmt: str) -> tuple[set[str], int, bool]:
    """(keys of complete records, byte offset where they end, whether the last one lacks its newline)."""
    return _scan_jsonl(path) if fmt == "jsonl" else _scan_csv(path)


_NOT_OURS = "cannot resume {path}: line {line} is not a record qa batch writes; move the file aside or run without resume"


def _scan_jsonl(path: Path) -> tuple[set[str], int, bool]:
    keys: set[str] = set()
    end = 0
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, 1):
            key = _jsonl_key(raw)
            if not raw.endswith(b"\n"):
                # The last line, unfinished: a kill mid-write, unless it is whole and only lacks its newline.
                if key is not None:
                    keys.add(key)
                    return keys, end + len(raw), True
                return keys, end, False
            if raw.strip():
                if key is None:
                    raise BadInput(_NOT_OURS.format(path=path, line=number))
                keys.add(key)
            end += len(raw)
    return keys, end, False


def _jsonl_key(raw: bytes) -> str | None:
    try:
        record = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    if not isinstance(record, dict) or not ("answers" in record or "error" in record):
        return None
    if record.get("id") is not None:
        return str(record["id"])
    line = record.get("line")
    return f"line:{line}" if isinstance(line, int) and not isinstance(line, bool) else None


def _scan_csv(path: Path) -> tuple[set[str], int, bool]:
    keys: set[str] = set()
    consumed = 0
    whole_line = True
    at_end = False

    def lines() -> Iterator[str]:
        nonlocal consumed, whole_line, at_end
        with open(path, "rb") as handle:
            for raw in handle:
                consumed += len(raw)
                whole_line = raw.endswith(b"\n")
                yield raw.decode("utf-8", errors="replace")
        at_end = True

    # strict: a record cut inside a quoted field is an error, not a short value.
    reader = csv.reader(lines(), strict=True)
    end = 0
    header_seen = False
    try:
        for row in reader:
            if not whole_line:
                break  # the last record, torn: every record qa writes ends with a newline
            if not header_seen:
                if tuple(row) != CSV_COLUMNS:
                    raise BadInput(_NOT_OURS.format(path=path, line=1))
                header_seen = True
            elif len(row) != len(CSV_COLUMNS):
                raise BadInput(_NOT_OURS.format(path=path, line=reader.line_num))
            else:
                keys.add(row[1] or f"line:{row[0]}")
            end = consumed
    except csv.Error:
        if not at_end:  # a broken record before the end is not a torn write
            raise BadInput(_NOT_OURS.format(path=path, line=reader.line_num)) from None
    return keys, end, False


def _csv_row(values) -> str:
    buffer = io.StringIO()
    csv.writer(buffer).writerow(values)
    return buffer.getvalue()


def _cite(citation) -> str:
    return citation.ref  # the one citation form, as `qa ask` prints it and `qa show` reads it


def _md(text: str | None, limit: int | None = None) -> str:
    """Text on one line with Markdown's active characters escaped."""
    text = " ".join((text or "").split())
    if limit is not None and len(text) > limit:
        text = text[: limit - 1] + "…"
    for char in "\\`*_[]<>":
        text = text.replace(char, "\\" + char)
    return text


def _md_where(item: Item) -> str:
    return f"*line {item.line}" + (f", id {_md(item.id)}*" if item.id is not None else "*")
