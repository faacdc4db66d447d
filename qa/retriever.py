"""Dense (FAISS) and lexical (BM25, qa.lexical) search, fused by z-scores.

Measured on SQuAD v1.1 dev (shared/FINDINGS.md and benchmarks/squad.py): reciprocal-rank fusion
scored below BM25 alone at R@1, while z-score fusion of passage and best-sentence signals beat
every single signal. Each signal is standardised over the union of the candidates, then weighted.
"""
from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .lexical import TANTIVY, Bm25, tokenize
from .store import Index
from .types import Hit

CANDIDATES = 100  # BM25's and the dense search's top-N passages form the candidate pool
FUSION = Path(__file__).with_name("fusion.json")  # the weights and BM25's k1 and b, written by training/fit_fusion.py


@dataclass(frozen=True)
class Weights:
    bm25: float
    dense: float
    bm25_sentence: float
    dense_sentence: float

    def as_dict(self) -> dict[str, float]:
        return {"bm25": self.bm25, "dense": self.dense, "bm25_sentence": self.bm25_sentence, "dense_sentence": self.dense_sentence}


@functools.cache
def _fitted() -> dict:
    return json.loads(FUSION.read_text(encoding="utf-8"))


def fitted_weights() -> Weights:
    """The weights training/fit_fusion.py chose (on held-out SQuAD train questions)."""
    return Weights(**_fitted()["weights"])


def fitted_bm25() -> Bm25:
    """The passages' BM25 settings training/fit_fusion.py chose, with the weights."""
    return Bm25(**_fitted()["bm25"])


def fitted_sentence_bm25() -> Bm25:
    """The sentences' BM25 settings training/fit_fusion.py chose; tantivy's until it chose any."""
    chosen = _fitted().get("bm25_sentence")
    return Bm25(**chosen) if chosen else TANTIVY


class Scores:
    """One signal's values for some rows (passages or sentences), looked up by row number."""

    def __init__(self, rows: np.ndarray, values: np.ndarray):
        self.rows, self.values = rows, values  # rows ascending

    def __getitem__(self, row: int) -> float:
        i = int(np.searchsorted(self.rows, row))
        if i == len(self.rows) or self.rows[i] != row:
            raise KeyError(f"row {row} was not scored")
        return float(self.values[i])

    def __len__(self) -> int:
        return len(self.rows)


@dataclass
class Signals:
    """Every raw score of one question, for its candidate passages and their sentences only.

    The candidates are the best passages by BM25 and by the dense cosine; sentence scores are
    computed for their sentences, never for every sentence of the corpus.
    """

    pool: np.ndarray  # candidate passages, ascending
    bm25: Scores  # per candidate passage
    dense: Scores
    bm25_sentence: Scores  # per sentence of a candidate passage
    dense_sentence: Scores


def _top(scores: np.ndarray, k: int) -> np.ndarray:
    k = min(k, len(scores))
    return np.argpartition(-scores, k - 1)[:k] if k < len(scores) else np.arange(len(scores))


class Retriever:
    def __init__(self, index: Index, encoder, weights: Weights | None = None, bm25: Bm25 | None = None,
                 sentence_bm25: Bm25 | None = None):
        self.index = index
        self.encoder = encoder
        self.weights = weights or fitted_weights()
        self.bm25 = bm25 or fitted_bm25()
        self.sentence_bm25 = sentence_bm25 or fitted_sentence_bm25()
        # Per kind of row: its word counts, its lexical index (for idf), its lengths, their mean.
        self._counts = {
            False: (index.passage_words, index.lexical_passages, index.spans["pass_words"], index.manifest["passage_words"]),
            True: (index.sentence_words, index.lexical_sentences, index.spans["sent_words"], index.manifest["sentence_words"]),
        }
        self._first = index.spans["pass_first"]
        self._last = index.spans["pass_last"]
        # Small indexes: every passage scored exactly, vectors in memory (cache-friendly, ~1 ms).
        # Large ones (measured in benchmarks/scale.py): approximate FAISS search, rows on demand.
        self.approximate = index.manifest["faiss"] != "flat"
        self._passage_vectors = index.passage_vectors if self.approximate else np.ascontiguousarray(index.passage_vectors)
        self._sentence_vectors = index.sentence_vectors if self.approximate else np.ascontiguousarray(index.sentence_vectors)

    def signals_batch(self, questions: list[str]) -> list[Signals]:
        vectors = self.encoder.embed_batch(questions)
        if self.approximate:
            _, top = self.index.search_passages(vectors, CANDIDATES)
            dense_top = [t[t >= 0] for t in top]
        else:
            cosines = vectors @ self._passage_vectors.T
            if self.index.dead_passages is not None:  # rows of files that changed or went
                cosines[:, self.index.dead_passages] = -np.inf
            dense_top = [t[np.isfinite(row[t])] for row, t in ((row, _top(row, CANDIDATES)) for row in cosines)]
        return [self._signals(q, v, t) for q, v, t in zip(questions, vectors, dense_top)]

    def _signals(self, question: str, vector: np.ndarray, dense_top: np.ndarray) -> Signals:
        index, tokens = self.index, tokenize(question)
        lexical_rows, _ = index.lexical_passages.top(tokens, CANDIDATES)
        pool = np.unique(np.concatenate([lexical_rows, dense_top])).astype(np.int64)
        # Every candidate's BM25 at the fitted k1 and b, dense candidates outside BM25's top too.
        bm25 = self.bm25.score(*self.term_frequencies(tokens, pool))
        # Their sentences, and the one before each (the rule reader looks back one sentence).
        first, last = self._first[pool], self._last[pool]
        sentences = np.unique(np.concatenate([np.arange(max(a - 1, 0), b) for a, b in zip(first, last)])).astype(np.int64)
        bm25_sentence = self.sentence_bm25.score(*self.term_frequencies(tokens, sentences, sentences=True))
        return Signals(
            pool=pool,
            bm25=Scores(pool, bm25),
            dense=Scores(pool, np.asarray(self._passage_vectors[pool], dtype=np.float32) @ vector),
            bm25_sentence=Scores(sentences, bm25_sentence),
            dense_sentence=Scores(sentences, np.asarray(self._sentence_vectors[sentences], dtype=np.float32) @ vector),
        )

    def term_frequencies(self, tokens: list[str], rows: np.ndarray, sentences: bool = False
                         ) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
        """(tf, idf, lengths, average) of ascending passage rows, or sentence rows, for the
        question's words: what Bm25.score takes, at any k1 and b."""
        counts, lexical, lengths, average = self._counts[sentences]
        terms = sorted(set(tokens))
        return counts.tf(terms, rows), lexical.idfs(terms), np.asarray(lengths[rows], dtype=np.float32), average

    def _pool_values(self, signals: Signals) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """The candidate passages and each signal's value for them."""
        # The best sentence of each passage: a passage's sentences are contiguous rows, and so are
        # their positions among the scored sentences; reduceat over (start, end) pairs, odd ones dropped.
        rows = signals.bm25_sentence.rows
        bounds = np.ravel(np.column_stack([np.searchsorted(rows, self._first[signals.pool]),
                                           np.searchsorted(rows, self._last[signals.pool])]))

        def best(values: np.ndarray) -> np.ndarray:
            return np.maximum.reduceat(np.r_[values, 0], bounds)[::2]

        return signals.pool, {
            "bm25": signals.bm25.values,
            "dense": signals.dense.values,
            "bm25_sentence": best(signals.bm25_sentence.values),
            "dense_sentence": best(signals.dense_sentence.values),
        }

    def fuse(self, signals: Signals, k: int) -> list[Hit]:
        """The k best passages by weighted z-scores over the pooled candidates."""
        pool, per_pool = self._pool_values(signals)
        fused = np.zeros(len(pool), dtype=np.float64)
        for name, weight in self.weights.as_dict().items():
            values = per_pool[name].astype(np.float64)
            std = values.std()
            if std > 0:
                fused += weight * (values - values.mean()) / std
        order = np.argsort(-fused, kind="stable")[:k]
        return [Hit(int(pool[i]), float(fused[i])) for i in order]

    def search_batch(self, questions: list[str], k: int = 20) -> list[list[Hit]]:
        return [self.fuse(s, k) for s in self.signals_batch(questions)]

    def search(self, question: str, k: int = 20) -> list[Hit]:
        return self.search_batch([question], k)[0]
