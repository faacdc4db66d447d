import numpy as np
import pytest

from qa import retriever as retriever_mod
from qa import ingest, store
from qa.answerer import Answerer
from qa.embedder import Hashing
from qa.lexical import TANTIVY, Bm25, tokenize
from qa.retriever import Retriever, Weights

from conftest import SEEDS, own_questions


@pytest.fixture(scope="module")
def indexes(tmp_path_factory):
    root = tmp_path_factory.mktemp("r")
    ingest.build(SEEDS, root / "flat", Hashing())
    ingest.build(SEEDS, root / "ivf", Hashing(), faiss_kind="ivf")
    return store.load(root / "flat"), store.load(root / "ivf")


def test_approximate_path_ranks_like_exact_search_on_a_small_index(indexes):
    flat, ivf = indexes
    assert ivf.manifest["faiss"] == "ivf" and ivf.shards[0].nprobe == store.nprobe(ivf.shards[0].nlist)  # survives write/read
    exact, approx = Retriever(flat, Hashing()), Retriever(ivf, Hashing())
    assert approx.approximate and not exact.approximate
    questions = [q["question"] for q in own_questions()]
    for a, b in zip(exact.search_batch(questions, 5), approx.search_batch(questions, 5)):
        assert [h.passage for h in a] == [h.passage for h in b]
        assert np.allclose([h.score for h in a], [h.score for h in b], atol=1e-5)


def test_answers_match_between_the_two_paths(indexes):
    flat, ivf = indexes
    questions = [q["question"] for q in own_questions()]
    a = [r.to_json() for r in Answerer(flat, Hashing(), SEEDS).ask_batch(questions, k=2)]
    b = [r.to_json() for r in Answerer(ivf, Hashing(), SEEDS).ask_batch(questions, k=2)]
    assert a == b


def test_single_signal_weights_rank_by_that_signal(indexes):
    flat, _ = indexes
    bm25_only = Retriever(flat, Hashing(), Weights(1, 0, 0, 0))
    signals = bm25_only.signals_batch(["Who is the UN special envoy for Syria?"])[0]
    hits = bm25_only.fuse(signals, 5)
    assert [h.passage for h in hits] == list(signals.pool[np.argsort(-signals.bm25.values, kind="stable")[:5]])


def test_sentences_are_scored_only_for_candidate_passages(indexes, monkeypatch):
    flat, _ = indexes
    monkeypatch.setattr(retriever_mod, "CANDIDATES", 3)
    question = "Who is the UN special envoy for Syria?"
    # At tantivy's own k1 and b, so that tantivy's scores over every sentence are the reference.
    signals = Retriever(flat, Hashing(), sentence_bm25=TANTIVY).signals_batch([question])[0]
    assert 3 <= len(signals.pool) <= 6 < flat.n_passages  # BM25's top 3 and the dense top 3
    own = {s for p in signals.pool for s in range(flat.passage(p).first_sentence, flat.passage(p).last_sentence)}
    before = {flat.passage(p).first_sentence - 1 for p in signals.pool} - {-1}  # the rule reader looks back one
    assert set(signals.bm25_sentence.rows.tolist()) == own | before == set(signals.dense_sentence.rows.tolist())
    # Each sentence's BM25 is its score among all sentences, not among the candidates' alone.
    rows, scores = flat.lexical_sentences.top(tokenize(question), flat.n_sentences)
    everywhere = dict(zip(rows.tolist(), scores.tolist()))
    for s in own | before:
        assert signals.bm25_sentence[s] == pytest.approx(everywhere.get(s, 0.0))
    with pytest.raises(KeyError):
        signals.bm25_sentence[max(set(range(flat.n_sentences)) - own - before)]


def test_term_frequencies_count_each_rows_words_for_passages_and_sentences(indexes):
    flat, _ = indexes
    question = "Who is the UN special envoy for Syria, and what did the envoy say?"
    tokens, retriever = tokenize(question), Retriever(flat, Hashing(), sentence_bm25=Bm25(0.5, 0.2))
    words = sorted(set(tokens))
    signals = retriever.signals_batch([question])[0]
    for sentences, rows in ((False, signals.pool), (True, signals.bm25_sentence.rows)):
        tf, idf, lengths, average = retriever.term_frequencies(tokens, rows, sentences=sentences)
        # A sentence is indexed alone; a passage with its document's title line, as it is embedded.
        spans = [flat.sentence(r) if sentences else flat.passage(r) for r in rows]
        texts = [flat.documents[x.doc].text[x.start : x.end] if sentences
                 else ingest.embedding_text(flat.documents[x.doc], x.start, x.end) for x in spans]
        counted = [tokenize(t) for t in texts]
        assert tf.tolist() == [[float(c.count(w)) for w in words] for c in counted]
        assert lengths.tolist() == [len(c) for c in counted] and tf.sum() > 0
    # The sentences are scored at the retriever's own setting.
    tf, idf, lengths, average = retriever.term_frequencies(tokens, signals.bm25_sentence.rows, sentences=True)
    assert signals.bm25_sentence.values == pytest.approx(Bm25(0.5, 0.2).score(tf, idf, lengths, average))
