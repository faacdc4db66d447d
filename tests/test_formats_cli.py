"""A mixed-format corpus through the real `qa` command (hashing embedder, packaged reader):
skips said in one line each, pages in the record, `qa show --text`, staleness and safety."""
import json
import shutil
import subprocess
import sys

import pytest

from conftest import CountingEmbedder, run_qa
from qa import corpus, ingest, store
from test_documents import FIXTURES, GOOD, HOSTILE, HOSTILE_REASONS


def _mixed(folder, hostile=()):
    (folder / "docs").mkdir(parents=True)
    for name in GOOD:
        shutil.copy(FIXTURES / name, folder / "docs" / name)
    for name in hostile:
        shutil.copy(HOSTILE / name, folder / "docs" / name)
    return folder


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    folder = _mixed(tmp_path_factory.mktemp("mixed"), hostile=HOSTILE_REASONS)
    done = run_qa("index", "docs", cwd=folder)
    assert done.returncode == 0, done.stderr
    return folder, done.stderr


def _ask(folder, question, *extra):
    done = run_qa("ask", question, "--json", "-c", "docs", *extra, cwd=folder)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _shown_text(folder, path):
    done = run_qa("show", "--text", path, cwd=folder)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_one_index_reads_every_format_and_skips_each_bad_file_in_one_line(mixed):
    folder, stderr = mixed
    skipped = [line for line in stderr.splitlines() if line.startswith("skipped ")]
    assert len(skipped) == len(HOSTILE_REASONS)
    for name, why in HOSTILE_REASONS.items():
        assert any(line.startswith(f"skipped {name}: {why}") for line in skipped), (name, skipped)
    assert f"{len(GOOD)} added" in stderr
    status = json.loads(run_qa("status", "--json", "-c", "docs", cwd=folder).stdout)
    assert status["files"] == len(GOOD)


def test_a_pdf_answer_carries_its_page_and_offsets_exact_against_show_text(mixed):
    folder, _ = mixed
    record = _ask(folder, "What did it cost to rebuild the Kestrel Hill treatment works?")
    top = record["answers"][0]
    assert not record["abstained"] and "42 million pounds" in top["answer"]
    source = top["source"]
    assert source["path"] == "docs/report.pdf" and source["page"] == 2
    text = _shown_text(folder, source["path"])
    assert text[source["start"]:source["end"]] == top["answer"]
    assert text[source["sentence_start"]:source["sentence_end"]] == top["sentence"]
    assert text.count("\n", 0, source["start"]) + 1 == source["line"]


def test_sources_without_pages_have_no_page_field(mixed):
    folder, _ = mixed
    top = _ask(folder, "How many jobs will go when Brightwell closes the Dundee bakery?")["answers"][0]
    assert top["source"]["path"] == "docs/the-ledger-bakery-closure.html"
    assert "page" not in top["source"]
    text = _shown_text(folder, top["source"]["path"])
    assert text[top["source"]["start"]:top["source"]["end"]] == top["answer"]


def test_show_prints_an_extracted_citation_in_context_and_the_page_in_the_rendered_answer(mixed):
    folder, _ = mixed
    done = run_qa("ask", "What did it cost to rebuild the Kestrel Hill treatment works?", "-c", "docs", cwd=folder)
    citation = next(line.strip() for line in done.stdout.splitlines() if line.strip().startswith("docs/report.pdf:"))
    assert "  page 2 · " in citation  # before the date and title
    shown = run_qa("show", citation, cwd=folder)
    assert shown.returncode == 0, shown.stderr
    assert "[[" in shown.stdout and "Kestrel Hill" in shown.stdout
    assert shown.stdout.splitlines()[0] == citation.split("  ")[0]


def test_show_text_of_a_text_file_is_the_file_and_of_a_bad_file_one_line(mixed):
    folder, _ = mixed
    assert _shown_text(folder, "docs/harwick-recall.txt") == (FIXTURES / "harwick-recall.txt").read_text(encoding="utf-8")
    done = run_qa("show", "--text", "docs/encrypted.pdf", cwd=folder)
    assert done.returncode == 3
    assert done.stderr.strip().splitlines() == [
        "qa: error: cannot show docs/encrypted.pdf: it is encrypted with a password; qa cannot read it "
        "(decrypt it first, e.g. `qpdf --decrypt`)"]


def test_a_changed_web_page_is_extracted_again_and_only_it(tmp_path, monkeypatch):
    folder = _mixed(tmp_path, hostile=["million-pages.pdf"])
    docs, index = folder / "docs", folder / "vectors"
    calls = []
    real = corpus.extract
    monkeypatch.setattr(corpus, "extract", lambda name, *a: calls.append(name) or real(name, *a))
    embedder = CountingEmbedder()
    ingest.build(docs, index, embedder)
    assert sorted(calls) == sorted(n for n in GOOD + ["million-pages.pdf"] if not n.endswith((".txt", ".md")))

    page = docs / "the-ledger-bakery-closure.html"
    page.write_text(page.read_text(encoding="utf-8").replace("140 jobs would go", "175 jobs would go"), encoding="utf-8")
    (docs / "report.pdf").touch()  # a new mtime, same bytes: reused, not extracted
    calls.clear()
    embedder.embedded = 0
    assert ingest.stale_files(index, docs) == ["the-ledger-bakery-closure.html"]
    report = ingest.build(docs, index, embedder)
    assert calls == ["the-ledger-bakery-closure.html"]
    assert report.updated == ["the-ledger-bakery-closure.html"] and len(report.kept) == len(GOOD) - 1
    assert [s.path for s in report.skipped] == ["million-pages.pdf"]  # its verdict was reused too
    loaded = store.load(index)
    live = {d.path: (i, d) for i, d in loaded.live_documents()}
    number, bakery = live["the-ledger-bakery-closure.html"]
    assert "175 jobs would go" in bakery.text
    assert embedder.embedded == sum(1 for s in range(loaded.n_sentences) if loaded.sentence(s).doc == number) \
        + sum(1 for p in range(loaded.n_passages) if loaded.passage(p).doc == number)
    assert live["report.pdf"][1].pages  # page map kept on reuse

    calls.clear()
    ingest.build(docs, index, embedder, rebuild=True)  # --rebuild extracts everything again
    assert len(calls) == len(GOOD) - 2 + 1


def test_a_corpus_left_with_only_bad_files_keeps_the_previous_index(tmp_path):
    folder = _mixed(tmp_path)
    assert run_qa("index", "docs", cwd=folder).returncode == 0
    before = (folder / "vectors" / "CURRENT").read_text()
    for name in GOOD:
        (folder / "docs" / name).unlink()
    shutil.copy(HOSTILE / "scan.pdf", folder / "docs" / "scan.pdf")
    done = run_qa("index", "docs", cwd=folder)
    assert done.returncode == 3
    assert done.stderr.strip().splitlines() == [
        "qa: error: no article text in docs (scan.pdf has no text layer (1 page of images: a scan?); qa does not OCR — "
        "run it through OCR first, e.g. `ocrmypdf`)"]
    assert (folder / "vectors" / "CURRENT").read_text() == before
    assert store.load(folder / "vectors").n_passages > 0


def test_the_markdown_report_names_the_page(mixed):
    folder, _ = mixed
    (folder / "q.txt").write_text("What did it cost to rebuild the Kestrel Hill treatment works?\n", encoding="utf-8")
    done = run_qa("batch", "q.txt", "-o", "out.md", "-c", "docs", cwd=folder)
    assert done.returncode == 0, done.stderr
    assert "`docs/report.pdf:" in (folder / "out.md").read_text(encoding="utf-8")
    assert " · page 2 · Northfield Water Board Annual Report 2025" in (folder / "out.md").read_text(encoding="utf-8")


def test_show_text_keeps_a_text_files_line_endings_as_indexed(tmp_path):
    (tmp_path / "docs").mkdir()
    raw = "Windows notes\r\n\r\nThe ferry leaves at nine o'clock from the north pier.\r\n"
    (tmp_path / "docs" / "crlf.txt").write_bytes(raw.encode("utf-8"))
    done = subprocess.run([sys.executable, "-m", "qa", "show", "--text", "docs/crlf.txt"], cwd=tmp_path,
                          capture_output=True)  # bytes: text mode would turn \r\n into \n
    assert done.returncode == 0, done.stderr
    assert done.stdout == raw.encode("utf-8") == corpus.document_text(tmp_path / "docs" / "crlf.txt")[0].encode("utf-8")
