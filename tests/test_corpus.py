from pathlib import Path

import pytest

from qa import corpus
from qa.chunker import chunk
from qa.errors import CorpusError

from conftest import SEEDS

JUNK = ["All news", "Updated at", "See also", "string(", '"id":', "SPECIAL project", "- Diplomat:"]


def test_scrape_junk_never_reaches_a_sentence():
    documents, _ = corpus.load(SEEDS)
    sentences, _ = chunk(documents)
    for s in sentences:
        text = documents[s.doc].text[s.start : s.end]
        for junk in JUNK:
            assert junk not in text


def test_junk_kinds_on_a_synthetic_scrape():
    text = (
        "All news\nUpdated at: 12:00\n\nBig headline here\n\nBig headline here\nSat Oct 1, 2016 14:27:12\n\n"
        "PARIS, May 3. /TASS/. The minister spoke on Tuesday.\n- Link one: something happened\n"
        "See also\n\nAnother linked headline\n\nThe second paragraph ends here.\n"
        'string(50) "[{"id":"1","title":"Linked"}]"\n'
    )
    doc = corpus.clean("a.txt", text, "0")
    kept = [text[s:e] for s, e in doc.blocks]
    assert kept == ["Big headline here", "PARIS, May 3. /TASS/. The minister spoke on Tuesday.", "The second paragraph ends here."]
    assert doc.title == "Big headline here"
    assert (doc.place, doc.date) == ("PARIS", "Oct 1, 2016")


def test_dateline_gives_place_and_date():
    doc = corpus.clean("b.txt", "GENEVA, July 29. /TASS/. Talks began.\n", "0")
    assert (doc.place, doc.date) == ("GENEVA", "July 29")


def test_bad_files_are_skipped_with_a_reason(tmp_path):
    (tmp_path / "good.txt").write_text("A real sentence is here.\n", encoding="utf-8")
    (tmp_path / "latin1.txt").write_bytes("Caf\xe9 cr\xe8me.\n".encode("latin-1"))
    (tmp_path / "binary.md").write_bytes(b"\x00\x01\x02binary")
    (tmp_path / "empty.txt").write_text("  \n", encoding="utf-8")
    (tmp_path / "ignored.pdf").write_bytes(b"%PDF")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "loop").symlink_to(tmp_path, target_is_directory=True)
    documents, skipped = corpus.load(tmp_path)
    assert [d.path for d in documents] == ["good.txt"]
    reasons = {s.path: s.reason for s in skipped}
    assert "UTF-8" in reasons["latin1.txt"] and "binary" in reasons["binary.md"] and "empty" in reasons["empty.txt"]


def test_missing_corpus_is_an_error(tmp_path):
    with pytest.raises(CorpusError, match="no such corpus folder"):
        corpus.load(tmp_path / "nope")


def test_files_are_named_below_the_root_and_ordered_folder_by_folder(tmp_path):
    names = ["a/b.txt", "a-b/x.txt", "a.txt", "A/z.md", "a/b/c.txt", "a b/c.txt", ".hidden/x.txt", "a/.x.txt",
             "a/notes.csv"]
    for name in names:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("The minister spoke on Tuesday.\n", encoding="utf-8")
    found = corpus.named_files(tmp_path)
    # As Path sorts: by folder, then name, so "a/b/c.txt" comes before "a-b/x.txt" (where "-" < "/" as text).
    assert [n for n, _ in found] == ["A/z.md", "a/b/c.txt", "a/b.txt", "a b/c.txt", "a-b/x.txt", "a.txt"]
    assert [p for _, p in found] == sorted(tmp_path / n for n, _ in found) == corpus.discover(tmp_path)
    assert corpus.named_files(tmp_path / "a.txt") == [("a.txt", tmp_path / "a.txt")]
    # Named files are read directly, in the same order.
    documents, skipped = corpus.load(tmp_path, names={"a.txt", "a/b/c.txt"})
    assert [d.path for d in documents] == ["a/b/c.txt", "a.txt"] and not skipped
