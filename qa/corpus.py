"""Finding corpus files, reading them safely, and telling article content from scrape junk.

Offsets never move: cleaning only marks which lines are content, it never rewrites text.
Web pages, PDFs and Word files are read through qa.documents, in a bounded child process;
their extracted text is then cleaned like any article.
"""
from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

from . import documents as formats
from .errors import CorpusError
from .types import Document

EXTENSIONS = formats.EXTENSIONS
MAX_FILE_BYTES = int(os.environ.get("QA_MAX_FILE_MB", "32")) * 1024 * 1024

# Lines that are site furniture, not article text.
_NAV = re.compile(
    r"^(all news|latest news|updated at:?.*|published:?.*|see also:?|read more:?|related( news| articles| stories)?:?"
    r"|share( this)?( article)?|advertisement|special project|print|comments?|tags?:.*|photo:.*|more on this topic:?"
    r"|subscribe.*|follow us.*)$",
    re.IGNORECASE,
)
# After these, lines without sentence punctuation are link headlines.
_LINK_MARKERS = re.compile(r"^(see also:?|special project|related( news| articles| stories)?:?|read more:?|more on this topic:?)$", re.I)
_CODE = re.compile(r'^\s*(string|array|object)\(\d+\)|\{"|":\s*"|\[\{')
_BULLET = re.compile(r"^\s*[-•*–]\s+")
_MONTH = r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?|Sep(?:t(?:ember)?)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)"
_WEEKDAY = r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)[a-z]*,?"
_TIMESTAMP = re.compile(
    rf"^(?:{_WEEKDAY}\s+)?(?P<date>{_MONTH}\.?\s+\d{{1,2}},?\s+\d{{4}})(?:,?\s+\d{{1,2}}:\d{{2}}(?::\d{{2}})?\s*(?:[AP]M|GMT|UTC)?)?$"
)
# "MOSCOW, October 6. /TASS/." or "TEHRAN, March 7." at the start of an article's first paragraph.
DATELINE = re.compile(
    rf"(?P<place>[A-Z][A-Z.'\- ]{{1,40}}),\s+(?P<date>{_MONTH}\.?\s+\d{{1,2}}(?:,\s*\d{{4}})?)\.?(?:\s*/[A-Za-z]+/\.?)?(?:\s*\([A-Za-z]+\)\s*[-–—])?"
)
_TERMINAL = re.compile(r"[.!?…:;][\"”’')\]]*\s*$|[\"”’]\s*$")


@dataclass(frozen=True)
class Skipped:
    path: str
    reason: str


def discover(root: Path) -> list[Path]:
    """All files of the formats qa reads below root, sorted, without following directory symlinks."""
    return [path for _, path in named_files(root)]


def named_files(root: Path) -> list[tuple[str, Path]]:
    """(name, path) of every file discover() finds, in its order; a name is the path below root,
    with "/" (the file's own name when root is a file). Names are cut from strings, not by
    pathlib: on 140,000 files Path.relative_to and Path sorting cost seconds an update."""
    if not root.exists():
        raise CorpusError(f"no such corpus folder: {root}")
    if root.is_file():
        return [(root.name, root)] if root.suffix.lower() in EXTENSIONS else []
    if not root.is_dir():
        raise CorpusError(f"not a folder: {root}")
    base, found = os.fspath(root), []
    # followlinks=False: a symlinked directory cannot send the walk round a loop.
    for folder, dirs, files in os.walk(base, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        below = os.path.relpath(folder, base)
        prefix = "" if below == "." else below.replace(os.sep, "/") + "/"
        found += [prefix + name for name in files if not name.startswith(".") and name.lower().endswith(EXTENSIONS)]
    return [(name, root / name) for name in sort_names(found)]


def sort_names(names) -> list[str]:
    """Names below a root in the order of their paths (folder by folder, as Path sorts)."""
    return sorted(names, key=lambda name: name.split("/"))


def folder_stamps(root: Path) -> dict[str, int]:
    """mtime of every folder discover() walks, by its name below root: a file added, removed or
    renamed in a folder moves that folder's stamp; a file rewritten in place does not."""
    if not root.is_dir():
        return {}
    out = {}
    for folder, dirs, _ in os.walk(root, followlinks=False):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        try:
            out[Path(folder).relative_to(root).as_posix()] = os.stat(folder).st_mtime_ns
        except OSError:
            continue
    return out


def file_digest(path: Path) -> str:
    """sha256 of a file, read in blocks so a large file never sits in memory whole."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_text(path: Path) -> tuple[str | None, str | None]:
    """(text, None) for a usable file, else (None, why it is skipped)."""
    why = _too_large(path)
    if why is not None:
        return None, why
    try:
        with open(path, "rb") as handle:
            raw = handle.read()
    except OSError as exc:
        return None, f"cannot be read ({exc.strerror or exc})"
    if b"\x00" in raw[:8192]:
        return None, "looks binary"
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, f"is not UTF-8 (byte {exc.start}); convert it with iconv"
    if not text.strip():
        return None, "is empty"
    return text, None


def _too_large(path: Path) -> str | None:
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            return f"larger than {MAX_FILE_BYTES >> 20} MB (set QA_MAX_FILE_MB to raise the limit)"
    except OSError as exc:
        return f"cannot be read ({exc.strerror or exc})"
    return None


def _article(name: str, text: str, digest: str) -> Document | Skipped:
    """The cleaned Document of a file's text, or Skipped when no article text is left."""
    document = clean(name, text, digest)
    return document if document.blocks else Skipped(name, "has no article text")


def extract(name: str, path: Path, kind: str, extractor: formats.Extractor) -> Document | Skipped:
    """A web page, PDF or Word file as a Document of its extracted text, or why it is skipped."""
    why = _too_large(path)
    if why is None:
        try:
            digest = file_digest(path)
        except OSError as exc:
            why = f"cannot be read ({exc.strerror or exc})"
    if why is not None:
        return Skipped(name, why)
    extracted, why = extractor.extract(path, kind)
    if extracted is None:
        return Skipped(name, why)
    document = _article(name, extracted.text, digest)
    if isinstance(document, Skipped):
        return document
    # What the file says of itself beats what the text's first lines suggest.
    return replace(document, title=extracted.title or document.title, date=extracted.date or document.date,
                   author=extracted.author, pages=extracted.pages)


def document_text(path: Path) -> tuple[str | None, str | None]:
    """(text, None) of path as qa indexes it, any format, or (None, why not): offsets index this text."""
    kind = formats.kind_of(path)
    if kind is None:
        return read_text(path)
    why = _too_large(path)
    if why is not None:
        return None, why
    with formats.Extractor() as extractor:
        extracted, why = extractor.extract(path, kind)
    return (extracted.text, None) if extracted is not None else (None, why)


Reuse = Callable[[str, Path], "Document | Skipped | None"]


def load(root: Path, reuse: Reuse | None = None, names: set[str] | None = None) -> tuple[list[Document], list[Skipped]]:
    """Read and clean every corpus file below root (those named, when names is given).

    reuse(name, path) may hand back what an earlier index made of an unchanged web page, PDF or
    Word file (its Document, or its Skipped), so only new and changed ones are extracted again.
    """
    documents, skipped = [], []
    extractor = None
    try:
        # The names asked for are read directly: an update of a large corpus walks it once (plan).
        for name, path in (named_files(root) if names is None or not root.is_dir()
                           else [(n, root / n) for n in sort_names(names)]):
            if names is not None and name not in names:
                continue
            kind = formats.kind_of(path)
            if kind is not None:
                got = reuse(name, path) if reuse is not None else None
                if got is None:
                    extractor = extractor or formats.Extractor()
                    got = extract(name, path, kind, extractor)
                (skipped if isinstance(got, Skipped) else documents).append(got)
                continue
            text, why = read_text(path)
            if text is None:
                skipped.append(Skipped(name, why))
                continue
            got = _article(name, text, hashlib.sha256(text.encode("utf-8")).hexdigest())
            (skipped if isinstance(got, Skipped) else documents).append(got)
    finally:
        if extractor is not None:
            extractor.close()
    return documents, skipped


def _lines(text: str):
    start = 0
    for raw in text.split("\n"):
        end = start + len(raw)
        stripped = raw.rstrip("\r")
        left = len(stripped) - len(stripped.lstrip())
        right = len(stripped.rstrip())
        yield start + left, start + right
        start = end + 1


def is_heading(line: str) -> bool:
    """A short line with no sentence punctuation at its end: a title or a section head."""
    return not _TERMINAL.search(line) and len(line.split()) <= 25


def _is_code(line: str) -> bool:
    if _CODE.search(line):
        return True
    symbols = sum(1 for ch in line if not (ch.isalnum() or ch.isspace()))
    return len(line) > 40 and symbols / len(line) > 0.3


def clean(path: str, text: str, digest: str) -> Document:
    """Mark content lines, drop junk, and take title, date and place as metadata."""
    blocks, headings = [], []
    seen: set[str] = set()
    title = date = place = None
    in_links = False
    for start, end in _lines(text):
        line = text[start:end]
        if not line:
            continue
        key = " ".join(line.split()).lower()
        duplicate = key in seen
        seen.add(key)
        heading = is_heading(line)
        if _LINK_MARKERS.match(line):
            in_links = True
            continue
        if in_links and heading:
            continue  # a linked headline under "See also"
        in_links = False
        stamp = _TIMESTAMP.match(line)
        if stamp:
            date = date or stamp.group("date")
            continue
        if duplicate or _NAV.match(line) or _is_code(line) or (_BULLET.match(line) and heading):
            continue
        if heading:
            if title is None and not blocks:
                title = line
            headings.append((start, end))
        elif date is None or place is None:
            dateline = DATELINE.match(line)
            if dateline:
                place = place or dateline.group("place").strip()
                date = date or dateline.group("date")
        blocks.append((start, end))
    return Document(
        path=path, text=text, sha256=digest, title=title, date=date, place=place,
        blocks=tuple(blocks), headings=tuple(headings),
    )
