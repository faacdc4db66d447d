"""PDFs through pypdfium2 (Google's PDFium): text page by page, rejoined into paragraphs.

PDFium gives lines in reading order (column by column for a two-column paper) and marks the
hyphens it found at line ends, so "Septem-/ber" becomes "September". Lines are joined into
paragraphs: a line much shorter than the page's usual line ends one. Lines that are only a page
number, and a running header or footer repeated on most pages, are left out. qa never OCRs: a
PDF with no text layer is skipped, saying so. The only module that imports pypdfium2.
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from . import Extracted, Limits, Unreadable, assemble

_PAGE_NUMBER = re.compile(r"^(?:page\s+)?[-–—]?\s*\d{1,5}\s*[-–—]?(?:\s*(?:of|/)\s*\d{1,5})?$", re.IGNORECASE)
# PDFium's marks for a hyphen it found at the end of a line: U+FFFE in a text range (which then
# runs on into the next line without a line break), \x02 in bounded text.
_SOFT_HYPHENS = "\ufffe\x02"
_PDF_DATE = re.compile(r"^D:(\d{4})(\d{2})?(\d{2})?")


@dataclass(frozen=True)
class Line:
    text: str
    x: float  # where its first character starts
    top: float  # its first character's baseline, up the page
    y: float  # its last character's baseline: lower than top when a hyphenated word ran on
    right: float  # where its last character ends
    size: float  # its first character's font size


def _page_lines(textpage) -> list[Line]:
    """The page's lines as PDFium orders them, each with its place on the page."""
    import ctypes

    import pypdfium2.raw as raw

    text = textpage.get_text_range()  # index i is character i: the charbox calls line up with it
    x, y = ctypes.c_double(), ctypes.c_double()
    lines, i = [], 0
    for piece in text.split("\r\n"):
        stripped = piece.rstrip()
        if stripped.strip():
            first, last = i + len(piece) - len(piece.lstrip()), i + len(stripped) - 1
            raw.FPDFText_GetCharOrigin(textpage.raw, first, x, y)
            left, top, size = x.value, y.value, raw.FPDFText_GetFontSize(textpage.raw, first)
            raw.FPDFText_GetCharOrigin(textpage.raw, last, x, y)  # a hyphenated word carries it on a line down
            right = textpage.get_charbox(last)[2]
            for mark in _SOFT_HYPHENS:
                stripped = stripped.replace(mark + " ", "").replace(mark, "")
            lines.append(Line(" ".join(stripped.split()), left, top, y.value, right, size))
        i += len(piece) + 2
    return lines


def paragraphs(lines: list[Line]) -> list[str]:
    """Join a page's lines into paragraphs. A line ends its paragraph when the next one is set
    apart (more than 1.6 of its font size below it), is in another font size, or starts indented;
    or when it stops well short of its column's right edge."""
    right_edge: dict[int, float] = {}
    for line in lines:  # lines that start at the same x share a column
        key = round(line.x / 6)
        right_edge[key] = max(right_edge.get(key, 0.0), line.right)
    out, current = [], ""
    for i, line in enumerate(lines):
        current += line.text
        nxt = lines[i + 1] if i + 1 < len(lines) else None
        edge = right_edge[round(line.x / 6)]
        ends = (
            nxt is None
            or line.right < line.x + 0.8 * (edge - line.x)
            or abs(nxt.size - line.size) > 0.15 * line.size
            or 0 < line.y - nxt.top > 1.6 * line.size
            or (0 < line.y - nxt.top and 0.8 * line.size < nxt.x - line.x < 4 * line.size)
        )
        if ends:
            out.append(current)
            current = ""
        else:
            current += " "
    return out


def _furniture(pages: list[list[str]]) -> set[str]:
    """Running headers and footers: a first or last line repeated on most pages (of two or more)."""
    if len(pages) < 2:
        return set()
    edges: Counter = Counter()
    for lines in pages:
        edges.update({*lines[:2], *lines[-2:]})
    return {line for line, n in edges.items() if n >= max(2, len(pages) * 0.5) and not _PAGE_NUMBER.match(line)}


def _date(raw: str | None) -> str | None:
    m = _PDF_DATE.match(raw or "")
    return "-".join(g for g in m.groups() if g) if m else None


def extract(path: Path, limits: Limits) -> Extracted:
    import pypdfium2 as pdfium

    try:
        document = pdfium.PdfDocument(str(path))
    except pdfium.PdfiumError as exc:
        message = str(exc).lower()
        if "password" in message:
            raise Unreadable("is encrypted with a password; qa cannot read it (decrypt it first, e.g. `qpdf --decrypt`)") from None
        detail = re.search(r"PDFium: ([^)]*)", str(exc))
        raise Unreadable(f"is damaged or not a PDF ({detail.group(1).lower() if detail else exc})") from None
    try:
        count = len(document)
        if count > limits.pages:
            raise Unreadable(f"has {count:,} pages, more than {limits.pages:,} (QA_MAX_PDF_PAGES raises the limit)")
        pages = []
        for i in range(count):
            page = document[i]
            textpage = page.get_textpage()
            pages.append(_page_lines(textpage))
            textpage.close()
            page.close()
        meta = document.get_metadata_dict(skip_empty=True)
    finally:
        document.close()
    if not any(pages):
        raise Unreadable(f"has no text layer ({count} page{'s' if count != 1 else ''} of images: a scan?); "
                         "qa does not OCR — run it through OCR first, e.g. `ocrmypdf`")
    furniture = _furniture([[line.text for line in lines] for lines in pages])
    kept = [paragraphs([line for line in lines if line.text not in furniture and not _PAGE_NUMBER.match(line.text)])
            for lines in pages]
    return assemble(kept, paged=True, title=meta.get("Title"), date=_date(meta.get("CreationDate")), author=meta.get("Author"))
