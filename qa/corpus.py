"""Finding corpus files, reading them safely, and telling article content from scrape junk.

Offsets never move: cleaning only marks which lines are content, it never rewrites text.
"""
from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

from .errors import CorpusError
from .types import Document

EXTENSIONS = (".txt", ".md")
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
    """All .txt and .md files below root, sorted, without following directory symlinks."""
    if not root.exists():
        raise CorpusError(f"no such corpus folder: {root}")
    if root.is_file():
        return [root] if root.suffix.lower() in EXTENSIONS else []
    if not root.is_dir():
        raise CorpusError(f"not a folder: {root}")
    found = []
    # followlinks=False: a symlinked directory cannot send the walk round a loop.
    for folder, dirs, files in os.walk(root, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in files:
            if not name.startswith(".") and name.lower().endswith(EXTENSIONS):
                found.append(Path(folder) / name)
    return sorted(found)


def relative_name(path: Path, root: Path) -> str:
    if root.is_file():
        return path.name
    return path.relative_to(root).as_posix()


def file_digest(path: Path) -> str:
    """sha256 of a file, read in blocks so a large file never sits in memory whole."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_text(path: Path) -> tuple[str | None, str | None]:
    """(text, None) for a usable file, else (None, why it is skipped)."""
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            return None, f"larger than {MAX_FILE_BYTES >> 20} MB (set QA_MAX_FILE_MB to raise the limit)"
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


def load(root: Path) -> tuple[list[Document], list[Skipped]]:
    """Read and clean every corpus file below root."""
    documents, skipped = [], []
    for path in discover(root):
        name = relative_name(path, root)
        text, why = read_text(path)
        if text is None:
            skipped.append(Skipped(name, why))
            continue
        digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
        document = clean(name, text, digest)
        if not document.blocks:
            skipped.append(Skipped(name, "has no article text"))
            continue
        documents.append(document)
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
