"""Word (.docx) files through python-docx: paragraphs, headings, lists and tables, in order.

Tables become one line a row, cells joined by " | ". Headers, footers, footnotes, comments,
text boxes and images are left out. The package's declared unzipped size is checked before
python-docx opens it (it reads every part), so a zip bomb is refused without being inflated.
The only module that imports python-docx.
"""
from __future__ import annotations

import zipfile
from pathlib import Path

from . import Extracted, Limits, Unreadable, assemble

_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"


def _check_zip(path: Path, limits: Limits) -> None:
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
    except zipfile.BadZipFile:
        raise Unreadable("is damaged or not a Word file (not a zip archive)") from None
    unzipped = sum(i.file_size for i in infos)
    if unzipped > limits.unzipped_mb << 20:
        raise Unreadable(f"unzips to {unzipped / 2**20:,.0f} MB, more than {limits.unzipped_mb} MB "
                         "(a zip bomb? QA_MAX_UNZIPPED_MB raises the limit)")
    if "word/document.xml" not in {i.filename for i in infos}:
        raise Unreadable("is not a Word document (no word/document.xml)")


def _paragraph_text(p) -> str:
    """A paragraph's text from its runs: text, tabs and breaks (python-docx's own .text, without
    its per-paragraph object overhead: 0.3 ms a paragraph here)."""
    parts = []
    for el in p.iter(f"{_W}t", f"{_W}tab", f"{_W}br", f"{_W}cr"):
        # A text box anchored in the paragraph is left out (Word writes it twice: drawing and fallback).
        if next(el.iterancestors(f"{_W}txbxContent"), None) is not None:
            continue
        parts.append(el.text or "" if el.tag == f"{_W}t" else " ")
    return "".join(parts)


def _walk(container, paragraphs: list[str]) -> None:
    """Body paragraphs and table rows in document order; content controls (w:sdt) opened."""
    for block in container.iterchildren():
        if block.tag == f"{_W}p":
            paragraphs.append(_paragraph_text(block))
        elif block.tag == f"{_W}tbl":
            for row in block.iterchildren(f"{_W}tr"):
                cells = [" ".join(" ".join(_paragraph_text(p) for p in tc.iter(f"{_W}p")).split())
                         for tc in row.iterchildren(f"{_W}tc")]
                if any(cells):
                    paragraphs.append(" | ".join(cells))
        elif block.tag == f"{_W}sdt":
            for content in block.iterchildren(f"{_W}sdtContent"):
                _walk(content, paragraphs)


def extract(path: Path, limits: Limits) -> Extracted:
    _check_zip(path, limits)
    import docx
    from docx.opc.exceptions import PackageNotFoundError

    try:
        document = docx.Document(str(path))
    except (PackageNotFoundError, KeyError, ValueError) as exc:
        raise Unreadable(f"is damaged or not a Word file ({exc})") from None
    paragraphs: list[str] = []
    _walk(document.element.body, paragraphs)
    props = document.core_properties
    date = props.created.date().isoformat() if props.created else None
    return assemble([paragraphs], paged=False, title=props.title or None, date=date, author=props.author or None)
