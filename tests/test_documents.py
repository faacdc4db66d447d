"""Web pages, PDFs and Word files: what extraction keeps and drops, page maps, and hostile files.

The fixtures (tests/fixtures/formats/) are real files: web pages as a browser saves them, with
menus, cookie banners, related links, comments and footers; a LibreOffice PDF export and a
two-column pdflatex paper; Word files written by python-docx; and, in hostile/, a scan with no
text layer, an encrypted PDF, a truncated one, one that claims a million pages and a zip bomb.
make_fixtures.py there records how each binary file was made.
"""
import shutil
import time
from pathlib import Path

import pytest

from qa import corpus, documents

FIXTURES = Path(__file__).parent / "fixtures" / "formats"
HOSTILE = FIXTURES / "hostile"
GOOD = [
    "harbour-courier-marathon.html", "field-and-lab-deep-microbes.html", "the-ledger-bakery-closure.html",
    "report.pdf", "paper.pdf", "newsletter.docx", "harwick-recall.txt", "cold-greenhouse-tomatoes.md",
]

# Text that sits only in each page's furniture: none of it may reach the extracted text.
BOILERPLATE = {
    "harbour-courier-marathon.html": [
        "214 partners", "Privacy settings", "Puzzles", "£3 a month", "Rui Paixão", "ferry timetable",
        "skate park", "Mill Road", "Lighthouse café", "five hours and ten minutes", "600 volunteers",
        "mile 18", "04417781", "8 Quay Street", "sport newsletter", "Share this article", "Photograph: Lena Pryce",
    ],
    "field-and-lab-deep-microbes.html": [
        "37 cookies", "Log in", "Science for the curious", "Advertisement", "48,000 readers", "telescopes",
        "late coffee", "Octopuses", "Episode 112", "Iceland", "building sand", "Northlight Press", "Joanna Okeke",
        "eleven seasons",
    ],
    "the-ledger-bakery-closure.html": [
        "Skip to content", "Business news for Scotland", "Markets", "Gdańsk", "Speyside", "Sandra K", "1971",
        "jute mills", "45 pence", "Alasdair Gray", "Leave a Reply", "tax changes", "Aberdeen office rents",
        "cruise berth", "Corvid Bank", "0161 555 0192", "WordPress",
    ],
}


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    folder = tmp_path_factory.mktemp("formats")
    for name in GOOD:
        shutil.copy(FIXTURES / name, folder / name)
    docs, skipped = corpus.load(folder)
    assert skipped == []
    return {d.path: d for d in docs}


def test_every_format_is_read_into_one_document_model(loaded):
    assert sorted(loaded) == sorted(GOOD)
    for doc in loaded.values():
        assert doc.blocks and doc.title
        for start, end in doc.blocks:  # content spans index the document's own text
            assert doc.text[start:end].strip() == doc.text[start:end]
    assert loaded["harwick-recall.txt"].text == (FIXTURES / "harwick-recall.txt").read_text(encoding="utf-8")
    # Extracted formats hash their source file, so staleness compares like with like.
    assert loaded["report.pdf"].sha256 == corpus.file_digest(FIXTURES / "report.pdf")


@pytest.mark.parametrize("name", sorted(BOILERPLATE))
def test_web_pages_keep_the_article_and_drop_the_page_around_it(loaded, name):
    doc = loaded[name]
    for phrase in BOILERPLATE[name]:
        assert phrase not in doc.text, phrase
    assert doc.text.startswith(doc.title + "\n\n")  # the headline opens the text, as in a .txt article


def test_web_page_metadata_comes_from_the_page(loaded):
    marathon, microbes, bakery = (loaded[n] for n in BOILERPLATE)
    assert (marathon.title, marathon.author, marathon.date) == (
        "Okafor smashes Lakeside Marathon course record", "Dana Whitcombe", "2026-04-12")  # meta tags
    assert (microbes.author, microbes.date) == ("Priya Raman", "2026-03-03")  # JSON-LD
    assert (bakery.author, bakery.date) == ("Tom Achterberg", "2026-02-18")  # WordPress byline and <time>
    assert "Organisers said 9,300 runners started the race" in marathon.text
    assert "\nLiving on rock chemistry\n" in microbes.text  # a subheading is a line of its own
    assert "“This is a hard decision about a site with a proud history" in bakery.text  # blockquote kept


def test_a_word_processors_pdf_has_pages_paragraphs_and_no_running_header(loaded):
    doc = loaded["report.pdf"]
    assert len(doc.pages) == 3 and doc.pages[0] == 0
    assert doc.text[doc.pages[1]:].startswith("Investment\n")
    assert doc.text[doc.pages[2]:].startswith("Outlook\n")
    kestrel = doc.text.index("The Kestrel Hill treatment works")
    assert doc.page_at(kestrel) == 2 and doc.page_at(0) == 1 and doc.page_at(len(doc.text) - 1) == 3
    # Lines wrapped by the page are one paragraph again; the header and "Page N" footers are gone.
    assert ("Leakage fell to 96 million litres a day, the lowest figure since the board began publishing it, "
            "after crews repaired 7,480 leaks on mains and customer pipes.\n") in doc.text
    assert "· Annual Report 2025" not in doc.text and "Page 2" not in doc.text
    assert doc.title == "Northfield Water Board Annual Report 2025" and doc.author == "Northfield Water Board"


def test_a_two_column_latex_paper_reads_column_by_column_without_hyphens(loaded):
    doc = loaded["paper.pdf"]
    assert len(doc.pages) == 2
    # The Methods paragraph runs from the foot of the left column to the top of the right one.
    assert "body size, heading and ground speed. We classified a target" in doc.text
    assert "during September 2025." in doc.text and "classified as painted ladies" in doc.text
    assert "Septem" not in doc.text.replace("September", "")
    assert doc.title == "Radar tracks of painted lady butterflies crossing the English Channel"
    assert doc.page_at(doc.text.index("4 Discussion")) == 2


def test_word_files_keep_headings_lists_and_table_rows(loaded):
    doc = loaded["newsletter.docx"]
    lines = doc.text.split("\n")
    assert "Men's eight | Riverside A | 5:48.2" in lines
    assert "Results from the Easter regatta" in lines
    assert "The summer barbecue is on 27 June, after the club's own head race." in lines
    headings = {doc.text[s:e] for s, e in doc.headings}
    assert {"The new boathouse", "Dates for your diary"} <= headings
    assert doc.pages == () and doc.page_at(10) is None
    assert (doc.author, doc.date) == ("Riverside Rowing Club", "2026-03-20")


def test_assemble_puts_each_paragraph_on_a_line_and_maps_pages():
    got = documents.assemble([["First  para\ngraph.", "  "], [], ["Third\tone."]], paged=True, title="  A\ntitle ")
    assert got.text == "First para graph.\n\nThird one.\n"
    assert got.pages == (0, 19, 19)  # an empty page starts where the next text does
    assert got.title == "A title"
    assert documents.assemble([], paged=False).text == ""


HOSTILE_REASONS = {
    "scan.pdf": "has no text layer",
    "encrypted.pdf": "is encrypted with a password",
    "damaged.pdf": "is damaged or not a PDF",
    "million-pages.pdf": "has 1,000,000 pages, more than 5,000",
    "bomb.docx": "unzips to 1,024 MB, more than 256 MB",
}


def _corpus_with_hostile(folder: Path, *names: str) -> Path:
    folder.mkdir()
    for name in names:
        shutil.copy(HOSTILE / name, folder / name)
    shutil.copy(FIXTURES / "newsletter.docx", folder / "z-newsletter.docx")  # after them: a fresh extractor reads it
    return folder


def test_each_hostile_file_is_skipped_with_one_line_and_the_rest_is_read(tmp_path):
    folder = _corpus_with_hostile(tmp_path / "c", *HOSTILE_REASONS)
    start = time.monotonic()
    docs, skipped = corpus.load(folder)
    assert [d.path for d in docs] == ["z-newsletter.docx"]
    reasons = {s.path: s.reason for s in skipped}
    assert sorted(reasons) == sorted(HOSTILE_REASONS)
    for name, why in HOSTILE_REASONS.items():
        assert reasons[name].startswith(why) and "\n" not in reasons[name], reasons[name]
    assert "ocr" in reasons["scan.pdf"].lower()  # says why, and that qa did not OCR it
    assert time.monotonic() - start < 60  # the bomb was never inflated, the page tree never walked


def test_extraction_time_per_file_is_bounded(tmp_path, monkeypatch):
    """With the page cap lifted, walking a million pages runs into the time limit; the worker is
    killed and replaced, and the next file is read."""
    monkeypatch.setenv("QA_MAX_PDF_PAGES", "2000000")
    monkeypatch.setenv("QA_EXTRACT_TIMEOUT", "2")
    folder = _corpus_with_hostile(tmp_path / "c", "million-pages.pdf")
    start = time.monotonic()
    docs, skipped = corpus.load(folder)
    elapsed = time.monotonic() - start
    assert [(s.path, s.reason) for s in skipped] == [
        ("million-pages.pdf", "took longer than 2 s to extract (QA_EXTRACT_TIMEOUT raises the limit)")]
    assert [d.path for d in docs] == ["z-newsletter.docx"]
    assert elapsed < 40, elapsed  # 2 s for the page tree, then a new worker for the newsletter


def test_extraction_memory_is_bounded(tmp_path, monkeypatch):
    """With the unzipped-size check lifted, the bomb inflates until the extractor's memory
    limit stops it: a MemoryError in the child, one line here."""
    monkeypatch.setenv("QA_MAX_UNZIPPED_MB", "4096")
    monkeypatch.setenv("QA_EXTRACT_MEMORY_MB", "300")
    folder = _corpus_with_hostile(tmp_path / "c", "bomb.docx")
    docs, skipped = corpus.load(folder)
    assert [s.path for s in skipped] == ["bomb.docx"]
    assert skipped[0].reason.startswith(("needs more than 300 MB", "crashed the extractor")), skipped[0].reason
    assert [d.path for d in docs] == ["z-newsletter.docx"]


def test_deeply_nested_html_is_bounded_and_skipped(tmp_path):
    folder = tmp_path / "c"
    folder.mkdir()
    depth = 200_000
    (folder / "deep.html").write_text("<html><body>" + "<div>" * depth + "<p>Buried words.</p>" + "</div>" * depth
                                      + "</body></html>", encoding="utf-8")
    shutil.copy(FIXTURES / "the-ledger-bakery-closure.html", folder / "ledger.html")
    docs, skipped = corpus.load(folder)
    assert [d.path for d in docs] == ["ledger.html"]
    assert [s.path for s in skipped] == ["deep.html"] and "\n" not in skipped[0].reason


def test_document_text_is_what_the_index_reads(loaded):
    for name in ("report.pdf", "newsletter.docx", "the-ledger-bakery-closure.html", "harwick-recall.txt"):
        text, why = corpus.document_text(FIXTURES / name)
        assert why is None and text == loaded[name].text
    text, why = corpus.document_text(HOSTILE / "encrypted.pdf")
    assert text is None and why.startswith("is encrypted")


def test_the_question_path_imports_no_extraction_library():
    import subprocess
    import sys

    probe = ("import sys, qa.api, qa.cli, qa.answerer, qa.store, qa.corpus; "
             "print(sorted({m.split('.')[0] for m in sys.modules} & {'trafilatura', 'htmldate', 'pypdfium2', 'docx'}))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_the_worker_ends_itself_past_the_time_limit_when_no_one_is_waiting():
    """Should the indexer die mid-file, the child still stops: its alarm fires 5 s past the limit."""
    import json
    import signal
    import subprocess
    import sys

    limits = {**vars(documents.Limits()), "seconds": 1, "pages": 2_000_000}
    child = subprocess.Popen([sys.executable, "-m", "qa.documents.worker", json.dumps(limits)],
                             stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
    child.stdin.write((json.dumps({"path": str(HOSTILE / "million-pages.pdf"), "kind": "pdf"}) + "\n").encode())
    child.stdin.flush()  # and never read the reply, nor close stdin: as if the parent were gone
    try:
        assert child.wait(timeout=60) == -signal.SIGALRM
    finally:
        child.kill()
        child.wait()


def test_a_text_box_is_left_out_of_the_paragraph_that_anchors_it(tmp_path):
    import docx
    from lxml import etree

    w = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
    snippet = (f'<w:p xmlns:w="{w}" xmlns:v="urn:schemas-microsoft-com:vml"><w:r><w:t>The launch needs a driver.</w:t></w:r>'
               '<w:r><w:pict><v:shape><v:textbox><w:txbxContent><w:p><w:r><w:t>Boxed aside about parking.</w:t></w:r></w:p>'
               '</w:txbxContent></v:textbox></v:shape></w:pict></w:r></w:p>')
    document = docx.Document(str(FIXTURES / "newsletter.docx"))
    document.element.body[-1].addprevious(etree.fromstring(snippet))
    document.save(str(tmp_path / "boxed.docx"))
    text = documents.extract_here(tmp_path / "boxed.docx", "docx", documents.Limits()).text
    assert "\nThe launch needs a driver.\n" in text and "parking" not in text
