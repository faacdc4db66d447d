import numpy as np
import pytest

from qa import retriever as retriever_mod
from qa import ingest, store
from qa.answerer import Answerer
from qa.embedder import Hashing
from qa.lexical import tokenize
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
    signals = Retriever(flat, Hashing()).signals_batch([question])[0]
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
