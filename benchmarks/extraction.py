"""What extracting text costs, per MB of each format, with qa's extractor beside the alternatives.

    python benchmarks/extraction.py [--runs 3] [--mb 1]

Inputs are made from the real fixtures in tests/fixtures/formats/ and grown to about --mb MB:
- html: the Harbour Courier page as saved, its article repeated (menus, banner, comments kept);
- pdf (word processor): report.pdf's pages imported again and again by PDFium (LibreOffice's output);
- pdf (LaTeX): paper.pdf's two-column pages, the same way;
- docx: newsletter.docx's paragraphs and table copied until it holds about --mb MB of text.
A file's size says little of its text (fonts fill PDFs, deflate shrinks .docx), so the cost is
given per MB of file and per MB of text extracted.
Each extractor runs in this process (no worker), median of --runs. Then the worker's own cost:
starting it and importing a format's library, and one small file through it warm.
Alternatives are measured when installed (pip install pypdf pdfminer.six docx2python justext).
"""
from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _machine import summary  # noqa: E402

from qa import documents  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures" / "formats"


def grow_html(out: Path, mb: float) -> None:
    page = (FIXTURES / "harbour-courier-marathon.html").read_text(encoding="utf-8")
    body = re.search(r'<div class="story-body">(.*?)</div>', page, re.S).group(1)
    copies, n = [], 0
    while sum(map(len, copies)) < mb * 2**20:
        copies.append(body.replace("9,300", f"{9300 + n:,}"))  # no two copies quite the same
        n += 1
    out.write_text(page.replace(body, "".join(copies)), encoding="utf-8")


def grow_pdf(source: Path, out: Path, mb: float) -> None:
    import pypdfium2 as pdfium

    src = pdfium.PdfDocument(str(source))
    doc = pdfium.PdfDocument.new()
    doc.import_pages(src)
    doc.save(str(out))
    first = out.stat().st_size
    doc.import_pages(src)
    doc.save(str(out))
    per_copy = max(1, out.stat().st_size - first)  # imported pages share fonts: the size one more copy adds
    for _ in range(max(0, int((mb * 2**20 - out.stat().st_size) / per_copy))):
        doc.import_pages(src)
    doc.save(str(out))


def grow_docx(out: Path, mb: float) -> None:
    """newsletter.docx's body (paragraphs, list, table) copied until it holds about mb MB of text.
    (Text deflates about 50 to 1 in a .docx: a 1 MB file of text alone is some 2,000 pages.)"""
    import copy

    import docx

    doc = docx.Document(str(FIXTURES / "newsletter.docx"))
    body = doc.element.body
    original = [el for el in body.iterchildren() if not el.tag.endswith("sectPr")]
    chars = sum(len("".join(el.itertext())) for el in original)
    sect = body[-1]
    for _ in range(int(mb * 2**20 / chars)):
        for el in original:
            sect.addprevious(copy.deepcopy(el))
    doc.save(str(out))


# --- alternatives ------------------------------------------------------------------------------

def pypdf_text(path: Path) -> str:
    import pypdf

    return "\n".join(page.extract_text() for page in pypdf.PdfReader(str(path)).pages)


def pdfminer_text(path: Path) -> str:
    from pdfminer.high_level import extract_text

    return extract_text(str(path))


def docx2python_text(path: Path) -> str:
    from docx2python import docx2python

    with docx2python(str(path)) as d:
        return d.text


def justext_text(path: Path) -> str:
    import justext

    paragraphs = justext.justext(path.read_bytes(), justext.get_stoplist("English"))
    return "\n".join(p.text for p in paragraphs if not p.is_boilerplate)


def lxml_text(path: Path) -> str:
    import lxml.html

    return lxml.html.fromstring(path.read_bytes()).text_content()


def qa_text(kind: str):
    limits = documents.Limits(pages=10**6)
    return lambda path: documents.extract_here(path, kind, limits).text


def timed(fn, path: Path, runs: int) -> tuple[float, int]:
    fn(path)  # warm: the library's import is the worker's start-up cost, reported apart
    times, chars = [], 0
    for _ in range(runs):
        start = time.perf_counter()
        chars = len(fn(path))
        times.append(time.perf_counter() - start)
    return statistics.median(times), chars


def worker_costs(folder: Path) -> list[tuple[str, float, float]]:
    """(format, start + import + first small file, the same file again warm), in seconds."""
    rows = []
    for kind, name in (("html", "the-ledger-bakery-closure.html"), ("pdf", "report.pdf"), ("docx", "newsletter.docx")):
        with documents.Extractor() as extractor:
            start = time.perf_counter()
            extractor.extract(FIXTURES / name, kind)
            cold = time.perf_counter() - start
            start = time.perf_counter()
            extractor.extract(FIXTURES / name, kind)
            rows.append((kind, cold, time.perf_counter() - start))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--mb", type=float, default=1.0, help="size to grow each input to")
    args = parser.parse_args()
    print(summary())
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        inputs = {
            "html": folder / "page.html", "pdf (word processor)": folder / "report.pdf",
            "pdf (LaTeX, 2 columns)": folder / "paper.pdf", "docx": folder / "newsletter.docx",
        }
        grow_html(inputs["html"], args.mb)
        grow_pdf(FIXTURES / "report.pdf", inputs["pdf (word processor)"], args.mb)
        grow_pdf(FIXTURES / "paper.pdf", inputs["pdf (LaTeX, 2 columns)"], args.mb)
        grow_docx(inputs["docx"], args.mb)
        candidates = {
            "html": [("trafilatura (qa)", qa_text("html")), ("justext", justext_text), ("lxml text_content, no cleaning", lxml_text)],
            "pdf": [("pypdfium2 (qa)", qa_text("pdf")), ("pypdf", pypdf_text), ("pdfminer.six", pdfminer_text)],
            "docx": [("python-docx (qa)", qa_text("docx")), ("docx2python", docx2python_text)],
        }
        print("\n| format | file MB | extractor | s per file | s per MB of file | text MB | s per MB of text |")
        print("| --- | --- | --- | --- | --- | --- | --- |")
        for label, path in inputs.items():
            mb = path.stat().st_size / 2**20
            for name, fn in candidates[label.split()[0]]:
                try:
                    seconds, chars = timed(fn, path, args.runs)
                except ImportError as exc:
                    print(f"| {label} | {mb:.2f} | {name} | not installed ({exc.name}) | | | |")
                    continue
                text_mb = chars / 2**20
                per_text = f"{seconds / text_mb:.3f}" if chars else "(nothing kept)"
                print(f"| {label} | {mb:.2f} | {name} | {seconds:.3f} | {seconds / mb:.3f} | {text_mb:.2f} | {per_text} |")
        print("\n| worker | start + import + one small file, s | the same file warm, s |")
        print("| --- | --- | --- |")
        for kind, cold, warm in worker_costs(folder):
            print(f"| {kind} | {cold:.2f} | {warm:.3f} |")


if __name__ == "__main__":
    main()
