import json
import shutil

import numpy as np
import pytest

from qa import ingest, store
from qa.answerer import Answerer
from qa.embedder import Hashing
from qa.errors import IndexBusy, IndexDamaged, IndexMissing

from conftest import SEEDS, CountingEmbedder, own_questions


def answers(root, corpus):
    a = Answerer(store.load(root), Hashing(), corpus)
    questions = [q["question"] for q in own_questions()]
    return [r.to_json() for r in a.ask_batch(questions, k=3)]


def test_save_load_round_trip(tmp_path):
    report = ingest.build(SEEDS, tmp_path / "v", Hashing())
    index = store.load(tmp_path / "v")
    assert index.n_passages == report.passages and index.n_sentences == report.sentences
    assert [d.path for d in index.documents] == sorted(p.name for p in SEEDS.glob("*.txt"))
    texts = [index.passage_text(i) for i in range(index.n_passages)]
    fresh = Hashing().embed_batch([ingest.embedding_text(index.documents[index.passage(i).doc], index.passage(i).start, index.passage(i).end) for i in range(index.n_passages)])
    assert np.allclose(index.passage_vectors, fresh)
    assert all(texts)
    scores, ids = index.search_passages(fresh[:3], 1)
    assert ids[:, 0].tolist() == [0, 1, 2]
    assert not list((tmp_path / "v").rglob("*.pkl"))


def test_indexing_twice_gives_the_same_answers(tmp_path):
    ingest.build(SEEDS, tmp_path / "v", Hashing())
    first = answers(tmp_path / "v", SEEDS)
    again = ingest.build(SEEDS, tmp_path / "v", Hashing())
    assert again.unchanged
    rebuilt = ingest.build(SEEDS, tmp_path / "v", Hashing(), rebuild=True)
    assert not rebuilt.unchanged
    assert answers(tmp_path / "v", SEEDS) == first


def test_incremental_add_edit_delete_embed_only_what_changed(tmp_path):
    corpus = tmp_path / "c"
    shutil.copytree(SEEDS, corpus)
    extra = corpus / "extra.txt"
    root = tmp_path / "v"
    ingest.build(corpus, root, Hashing())

    extra.write_text("Title of the new piece\n\nOSLO, May 2. The mayor opened a new bridge. It is long.\n", encoding="utf-8")
    counting = CountingEmbedder()
    report = ingest.build(corpus, root, counting)
    assert report.added == ["extra.txt"] and len(report.kept) == 5
    new = [i for i, d in enumerate(store.load(root).documents) if d.path == "extra.txt"][0]
    index = store.load(root)
    own_p = int((index.spans["pass_doc"] == new).sum())
    own_s = int((index.spans["sent_doc"] == new).sum())
    assert counting.embedded == own_p + own_s == report.embedded_passages + report.embedded_sentences

    extra.write_text("Title of the new piece\n\nOSLO, May 2. The mayor closed the bridge.\n", encoding="utf-8")
    counting = CountingEmbedder()
    report = ingest.build(corpus, root, counting)
    assert report.updated == ["extra.txt"] and counting.embedded == 2 + 1  # 1 passage; title + 1 sentence

    extra.unlink()
    counting = CountingEmbedder()
    report = ingest.build(corpus, root, counting)
    assert report.removed == ["extra.txt"] and counting.embedded == 0
    assert answers(root, corpus) == answers_after_rebuild(tmp_path, corpus)


def answers_after_rebuild(tmp_path, corpus):
    ingest.build(corpus, tmp_path / "fresh", Hashing(), rebuild=True)
    return answers(tmp_path / "fresh", corpus)


def test_missing_and_damaged_indexes_are_reported(tmp_path):
    root = tmp_path / "v"
    with pytest.raises(IndexMissing):
        store.load(root)
    ingest.build(SEEDS, root, Hashing())
    gen = store.current_generation(root)
    vectors = gen / "seg-000001" / "passages.npy"
    vectors.write_bytes(vectors.read_bytes()[:-100])
    with pytest.raises(IndexDamaged, match="qa index --rebuild"):
        store.load(root)
    ingest.build(SEEDS, root, Hashing())  # a damaged index is rebuilt, not reused
    store.load(root)
    (root / "CURRENT").write_text("../../etc", encoding="utf-8")
    with pytest.raises(IndexDamaged):
        store.load(root)


def test_flipped_byte_fails_the_checksum(tmp_path):
    root = tmp_path / "v"
    ingest.build(SEEDS, root, Hashing())
    docs = store.current_generation(root) / "seg-000001" / "docs.jsonl"
    data = bytearray(docs.read_bytes())
    data[200] ^= 0x01
    docs.write_bytes(bytes(data))
    with pytest.raises(IndexDamaged, match="checksum"):
        store.load(root)


def test_second_writer_is_refused(tmp_path):
    root = tmp_path / "v"
    with store.locked(root):
        with pytest.raises(IndexBusy, match="being updated"):
            ingest.build(SEEDS, root, Hashing())
    ingest.build(SEEDS, root, Hashing())  # released: works again


def test_documents_are_read_when_used_not_when_the_index_opens(tmp_path):
    ingest.build(SEEDS, tmp_path / "v", Hashing())
    index = store.load(tmp_path / "v")
    documents = index.documents
    assert len(documents) == len(list(SEEDS.glob("*.txt"))) and not documents._cache  # nothing parsed yet
    last = documents[len(documents) - 1]
    assert last.text == (SEEDS / last.path).read_text(encoding="utf-8") and list(documents._cache) == [len(documents) - 1]
    with pytest.raises(IndexError):
        documents[len(documents)]


def test_a_damaged_document_line_is_reported_when_read(tmp_path):
    ingest.build(SEEDS, tmp_path / "v", Hashing())
    gen = store.current_generation(tmp_path / "v")
    offsets = np.load(gen / "seg-000001" / "docs.offsets.npy")
    data = bytearray((gen / "seg-000001" / "docs.jsonl").read_bytes())
    data[offsets[1]] = ord("#")  # the second line no longer parses; the file keeps its size
    (gen / "seg-000001" / "docs.jsonl").write_bytes(bytes(data))
    with pytest.raises(IndexDamaged, match="fails its checksum"):
        store.load(tmp_path / "v")  # a small index is checked whole on open
    index = store.load(tmp_path / "v", verify=False)
    assert index.documents[0].path and index.documents[2].path
    with pytest.raises(IndexDamaged, match=r"docs.jsonl line 2 cannot be read.*qa index --rebuild"):
        index.documents[1]


def test_opening_checks_the_smallest_files_by_checksum_within_a_budget(tmp_path, monkeypatch):
    ingest.build(SEEDS, tmp_path / "v", Hashing())
    gen = store.current_generation(tmp_path / "v")
    sizes = {p.relative_to(gen).as_posix(): p.stat().st_size for p in gen.rglob("*") if p.is_file()}
    biggest = max(sizes, key=sizes.get)
    data = bytearray((gen / biggest).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (gen / biggest).write_bytes(bytes(data))
    with pytest.raises(IndexDamaged, match="fails its checksum"):
        store.load(tmp_path / "v")
    total = sum(e["bytes"] for e in json.loads((gen / "manifest.json").read_text())["data"].values())
    monkeypatch.setattr(store, "VERIFY_BYTES", total - sizes[biggest])  # all but the biggest file fit the budget
    assert store.load(tmp_path / "v").n_passages  # sizes still match: the biggest is not hashed


class PartsEmbedder:
    """Hashing vectors through embed_with_parts, the pooled path qa.onnx_encoder takes: a part's
    vector is its own text's, so any slicing of the work must give the same vectors."""

    def __init__(self):
        self.inner = Hashing()
        self.name, self.dim, self.precision = "hashing-512", self.inner.dim, "fp32"
        self.calls = 0

    def embed_batch(self, texts, progress=None):
        return self.inner.embed_batch(texts, progress)

    def embed_with_parts(self, texts, parts, progress=None):
        self.calls += 1
        pieces = [t[a:b] for t, spans in zip(texts, parts) for a, b in spans]
        out = self.inner.embed_batch(list(texts)), self.inner.embed_batch(pieces)
        if progress:
            progress(len(texts))
        return out


@pytest.mark.parametrize("make", [Hashing, PartsEmbedder], ids=["separate", "pooled"])
def test_vectors_embedded_in_slices_are_the_vectors_embedded_at_once(tmp_path, monkeypatch, make):
    ingest.build(SEEDS, tmp_path / "whole", make())
    monkeypatch.setattr(ingest, "EMBED_SLICE", 4)
    sliced = make()
    ingest.build(SEEDS, tmp_path / "sliced", sliced)
    whole, parts = store.load(tmp_path / "whole"), store.load(tmp_path / "sliced")
    if isinstance(sliced, PartsEmbedder):
        assert sliced.calls == -(-whole.n_passages // 4) > 1
    assert np.array_equal(whole.passage_vectors, parts.passage_vectors)
    assert np.array_equal(whole.sentence_vectors, parts.sentence_vectors)
    assert np.array_equal(parts.sentence_vectors[0], Hashing().embed_batch([whole.documents[0].text[
        whole.sentence(0).start : whole.sentence(0).end]])[0])


def test_a_large_corpus_is_checked_by_its_folders_on_each_question(tmp_path, monkeypatch):
    from qa import api

    corpus = tmp_path / "corpus"
    shutil.copytree(SEEDS, corpus / "wire")
    api.build_index(corpus, tmp_path / "v", "hashing-512")
    notes = []
    monkeypatch.setattr(api, "QUICK_CHECK_FILES", 2)  # five files count as large here
    first = sorted((corpus / "wire").glob("*.txt"))[0]
    first.write_text(first.read_text(encoding="utf-8") + "\nA sentence added in place.\n", encoding="utf-8")
    api.ensure_index(corpus, tmp_path / "v", "hashing-512", notify=notes.append)
    assert notes == []  # rewritten in place: the folder's stamp did not move, nothing is checked
    (corpus / "wire" / "new.txt").write_text("Added later\n\nThe striker scored twice in the final.\n", encoding="utf-8")
    index = api.ensure_index(corpus, tmp_path / "v", "hashing-512", notify=notes.append)
    assert len(notes) == 1 and "the corpus changed" in notes[0]
    live = {d.path: d for _, d in index.live_documents()}
    assert live.keys() >= {"wire/new.txt", f"wire/{first.name}"}
    assert "A sentence added in place." in live[f"wire/{first.name}"].text
    notes.clear()
    monkeypatch.setattr(api, "QUICK_CHECK_FILES", 10_000)  # a small corpus: every file's stamp, as before
    first.write_text(first.read_text(encoding="utf-8") + "\nAnother one.\n", encoding="utf-8")
    api.ensure_index(corpus, tmp_path / "v", "hashing-512", notify=notes.append)
    assert len(notes) == 1 and first.name in notes[0]


def _rows_of(index, path):
    """The passage rows of the live document from path."""
    (doc,) = [i for i, d in index.live_documents() if d.path == path]
    return set(np.flatnonzero(np.asarray(index.spans["pass_doc"]) == doc).tolist())


@pytest.mark.parametrize("kind", ["flat", "ivf"], ids=["exact", "ivf"])
def test_an_update_appends_a_segment_keeps_the_old_files_and_never_finds_dead_rows(tmp_path, monkeypatch, kind):
    from qa.retriever import Retriever

    if kind == "ivf":
        monkeypatch.setattr(store, "ANN_THRESHOLD", 0)  # the seeds searched as a large index is
    corpus, root = tmp_path / "c", tmp_path / "v"
    shutil.copytree(SEEDS, corpus)
    ingest.build(corpus, root, Hashing())
    first = store.current_generation(root) / "seg-000001"
    inodes = {p.name: p.stat().st_ino for p in first.iterdir()}
    victim = sorted(corpus.glob("*.txt"))[0]
    before = store.load(root)
    old_rows = _rows_of(before, victim.name)
    old_text = before.passage_text(min(old_rows))

    victim.write_text("Harbour news\n\nBERGEN, May 3. The ferry to the islands was cancelled by the storm.\n", encoding="utf-8")
    (corpus / "new.txt").write_text("Mountain news\n\nTROMSO, May 4. A climber reached the summit in record time.\n",
                                    encoding="utf-8")
    report = ingest.build(corpus, root, Hashing())
    assert not report.compacted and report.added == ["new.txt"] and report.updated == [victim.name]
    index = store.load(root)
    assert [s["name"] for s in index.manifest["segments"]] == ["seg-000001", "seg-000002"]
    assert index.manifest["faiss"] == kind and len(index.shards) == (kind == "ivf")
    gen = store.current_generation(root)
    assert {p.name: p.stat().st_ino for p in (gen / "seg-000001").iterdir()} == inodes  # linked, not written again
    assert index.n_passages == before.n_passages + len(_rows_of(index, victim.name)) + len(_rows_of(index, "new.txt"))
    assert index.live_passages == index.n_passages - len(old_rows) == index.lexical_passages.size
    assert index.manifest["files"][victim.name]["doc"] == len(before.documents)  # numbered after the old ones

    # The old version's rows are gone from both searches, even for its own words and vector.
    retriever = Retriever(index, Hashing())
    hits = retriever.search(old_text, k=50)
    assert hits and not {h.passage for h in hits} & old_rows
    _, rows = index.search_passages(Hashing().embed_batch([old_text]), 50)
    assert not set(rows[0].tolist()) & old_rows
    assert retriever.search("Which ferry was cancelled by the storm?", k=1)[0].passage in _rows_of(index, victim.name)
    assert retriever.search("Who reached the summit in record time?", k=1)[0].passage in _rows_of(index, "new.txt")


def test_too_many_segments_are_compacted_into_one(tmp_path, monkeypatch):
    corpus, root = tmp_path / "c", tmp_path / "v"
    shutil.copytree(SEEDS, corpus)
    ingest.build(corpus, root, Hashing())
    monkeypatch.setattr(store, "MAX_SEGMENTS", 3)
    reports = []
    for n in range(3):
        (corpus / f"new{n}.txt").write_text(f"Note {n}\n\nThe council met on day {n} and voted on the budget.\n", encoding="utf-8")
        counting = CountingEmbedder()
        reports.append((ingest.build(corpus, root, counting), counting.embedded))
    assert [r.compacted for r, _ in reports] == [False, False, True]
    assert reports[2][1] == 2 + 1  # the compaction embeds only the new file, the rest is reused
    index = store.load(root)
    assert [s["name"] for s in index.manifest["segments"]] == ["seg-000004"] and index.dead_passages is None
    assert answers(root, corpus) == answers_after_rebuild(tmp_path, corpus)


TOPICS = {
    "sport": "striker goal league match referee penalty coach stadium season trophy keeper final".split(),
    "science": "enzyme protein cell membrane reaction molecule laboratory genome particle orbit".split(),
    "business": "shares profit revenue investors merger bank quarter dividend market exchange".split(),
}


def _topical_corpus(folder, n: int, seed: int = 0) -> None:
    """n short articles, each on one of three topics, a file each."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        words = TOPICS[list(TOPICS)[i % 3]]
        paragraphs = [" ".join(" ".join(rng.choice(words, 9)).capitalize() + "." for _ in range(4)) for _ in range(3)]
        (folder / f"a{i:03d}.txt").write_text(f"Report {i}\n\n" + "\n\n".join(paragraphs) + "\n", encoding="utf-8")


def _found(index, queries, k=15):
    """What search_passages finds, by where the passages are rather than by row number."""
    scores, rows = index.search_passages(queries, k)
    places = [[(index.documents[index.passage(r).doc].path, index.passage(r).start) for r in row if r >= 0] for row in rows]
    return places, scores


def test_an_updated_large_index_searches_exactly_as_a_fresh_build(tmp_path, monkeypatch):
    monkeypatch.setattr(store, "ANN_THRESHOLD", 0)  # approximate search in shards, on a corpus small enough for a test
    monkeypatch.setattr(store, "SHARD_PASSAGES", 8)
    corpus, root = tmp_path / "c", tmp_path / "v"
    _topical_corpus(corpus, 60)
    ingest.build(corpus, root, Hashing())
    before = store.load(root)
    shards = before.manifest["dense"]["shards"]
    assert shards >= 4 and len(before.shards) == len(before.manifest["dense"]["files"]) > 1
    dense = store.current_generation(root) / "dense"
    inodes = {p.name: p.stat().st_ino for p in dense.iterdir()}

    _topical_corpus(tmp_path / "more", 63, seed=1)  # three more articles, one of them on a new path
    shutil.copy(tmp_path / "more" / "a062.txt", corpus / "a062.txt")
    shutil.copy(tmp_path / "more" / "a007.txt", corpus / "a007.txt")  # changed
    (corpus / "a020.txt").unlink()
    report = ingest.build(corpus, root, Hashing())
    assert not report.compacted and report.added == ["a062.txt"] and report.updated == ["a007.txt"]
    after = store.load(root)
    assert after.dead_passages is not None  # a020's and a007's old rows are still there, dead
    touched = {store.shard_of(p, shards) for p in ("a062.txt", "a007.txt", "a020.txt")}
    now = store.current_generation(root) / "dense"
    kept = {name for name, ino in inodes.items() if (now / name).exists() and (now / name).stat().st_ino == ino}
    assert kept == {f"shard-{s:04d}.faiss" for s in range(shards) if s not in touched} & set(inodes)

    fresh = ingest.build(corpus, tmp_path / "fresh", Hashing())
    assert fresh.compacted
    rebuilt = store.load(tmp_path / "fresh")
    queries = Hashing().embed_batch([" ".join(words[:4]) for words in TOPICS.values()] + ["goal profit enzyme"])
    (got, got_scores), (want, want_scores) = _found(after, queries), _found(rebuilt, queries)
    assert got == want and np.array_equal(got_scores, want_scores)
    dead = set(np.flatnonzero(after.dead_passages).tolist())
    assert not dead & set(after.search_passages(queries, 50)[1].ravel().tolist())


def test_a_damaged_dense_shard_is_reported(tmp_path, monkeypatch):
    monkeypatch.setattr(store, "ANN_THRESHOLD", 0)
    root = tmp_path / "v"
    ingest.build(SEEDS, root, Hashing())
    (shard,) = (store.current_generation(root) / "dense").iterdir()
    shard.write_bytes(shard.read_bytes()[:100])
    with pytest.raises(IndexDamaged, match=r"dense/shard-0000\.faiss .*qa index --rebuild"):
        store.load(root)
