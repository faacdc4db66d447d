"""Dense (FAISS) and lexical (BM25) search, fused by z-scores.

Measured on SQuAD v1.1 dev (shared/FINDINGS.md and benchmarks/squad.py): reciprocal-rank fusion
scored below BM25 alone at R@1, while z-score fusion of passage and best-sentence signals beat
every single signal. Each signal is standardised over the union of the candidates, then weighted.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .lexical import tokenize
from .store import Index
from .types import Hit

CANDIDATES = 100  # each signal's top-N joins the candidate pool


@dataclass(frozen=True)
class Weights:
    bm25: float = 0.3
    dense: float = 0.3
    bm25_sentence: float = 0.1
    dense_sentence: float = 0.3

    def as_dict(self) -> dict[str, float]:
        return {"bm25": self.bm25, "dense": self.dense, "bm25_sentence": self.bm25_sentence, "dense_sentence": self.dense_sentence}


class _Dots:
    """Cosines of one question with rows of a (memory-mapped) matrix, computed when asked for."""

    def __init__(self, vectors: np.ndarray, query: np.ndarray):
        self.vectors, self.query = vectors, query

    def __getitem__(self, i):
        return np.asarray(self.vectors[i], dtype=np.float32) @ self.query


@dataclass
class Signals:
    """Every raw score of one question: per passage and per sentence.

    On a large index the dense scores are not computed for every row: `dense_top` holds the
    approximate search's best passages, and `dense`/`dense_sentence` compute rows on demand.
    """

    bm25: np.ndarray
    dense: np.ndarray | _Dots
    bm25_sentence: np.ndarray  # per sentence
    dense_sentence: np.ndarray | _Dots  # per sentence
    dense_top: np.ndarray | None = None


def _top(scores: np.ndarray, k: int) -> np.ndarray:
    k = min(k, len(scores))
    return np.argpartition(-scores, k - 1)[:k] if k < len(scores) else np.arange(len(scores))


class Retriever:
    def __init__(self, index: Index, encoder, weights: Weights = Weights()):
        self.index = index
        self.encoder = encoder
        self.weights = weights
        self._first = index.spans["pass_first"]
        self._last = index.spans["pass_last"]
        # Small indexes: every row scored exactly, vectors in memory (cache-friendly, ~1 ms).
        # Large ones (measured in benchmarks/scale.py): approximate FAISS search, rows on demand.
        self.approximate = index.manifest["faiss"] != "flat"
        if not self.approximate:
            self._passage_vectors = np.ascontiguousarray(index.passage_vectors)
            self._sentence_vectors = np.ascontiguousarray(index.sentence_vectors)

    def signals_batch(self, questions: list[str]) -> list[Signals]:
        vectors = self.encoder.embed_batch(questions)
        index = self.index
        if self.approximate:
            _, top = index.search_passages(vectors, CANDIDATES)
            dense = [_Dots(index.passage_vectors, v) for v in vectors]
            dense_sentence = [_Dots(index.sentence_vectors, v) for v in vectors]
        else:
            top = [None] * len(questions)
            dense = vectors @ self._passage_vectors.T
            dense_sentence = vectors @ self._sentence_vectors.T
        out = []
        for row, question in enumerate(questions):
            tokens = tokenize(question)
            out.append(Signals(
                bm25=index.bm25_passages.scores(tokens), dense=dense[row],
                bm25_sentence=index.bm25_sentences.scores(tokens), dense_sentence=dense_sentence[row],
                dense_top=top[row] if top[row] is None else top[row][top[row] >= 0],
            ))
        return out

    def _pool_values(self, signals: Signals) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """The candidate passages and each signal's value for them."""
        # The best sentence of each passage: sentences of a passage are contiguous.
        bm25_sentence = np.maximum.reduceat(signals.bm25_sentence, self._first)
        if signals.dense_top is None:
            dense_sentence = np.maximum.reduceat(signals.dense_sentence, self._first)
            full = {"bm25": signals.bm25, "dense": signals.dense, "bm25_sentence": bm25_sentence,
                    "dense_sentence": dense_sentence}
            pool = np.unique(np.concatenate([_top(v, CANDIDATES) for v in full.values()]))
            return pool, {name: v[pool] for name, v in full.items()}
        pool = np.unique(np.concatenate([_top(signals.bm25, CANDIDATES), _top(bm25_sentence, CANDIDATES), signals.dense_top]))
        return pool, {
            "bm25": signals.bm25[pool],
            "dense": signals.dense[pool],
            "bm25_sentence": bm25_sentence[pool],
            "dense_sentence": np.array([signals.dense_sentence[self._first[p] : self._last[p]].max() for p in pool]),
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
