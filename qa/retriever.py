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


@dataclass
class Signals:
    """Every raw score of one question: per passage and per sentence."""

    bm25: np.ndarray
    dense: np.ndarray
    bm25_sentence: np.ndarray  # per sentence
    dense_sentence: np.ndarray  # per sentence
    tokens: list[str]


def _top(scores: np.ndarray, k: int) -> np.ndarray:
    k = min(k, len(scores))
    return np.argpartition(-scores, k - 1)[:k] if k < len(scores) else np.arange(len(scores))


class Retriever:
    def __init__(self, index: Index, encoder, weights: Weights = Weights()):
        self.index = index
        self.encoder = encoder
        self.weights = weights
        self._first = index.spans["pass_first"]
        # In memory and contiguous: a matmul on the memory-mapped arrays cost ~14 ms a question.
        self._passage_vectors = np.ascontiguousarray(index.passage_vectors)
        self._sentence_vectors = np.ascontiguousarray(index.sentence_vectors)

    def signals_batch(self, questions: list[str]) -> list[Signals]:
        vectors = self.encoder.embed_batch(questions)
        index = self.index
        dense = vectors @ self._passage_vectors.T
        dense_sentence = vectors @ self._sentence_vectors.T
        out = []
        for row, question in enumerate(questions):
            tokens = tokenize(question)
            out.append(Signals(
                bm25=index.bm25_passages.scores(tokens), dense=dense[row],
                bm25_sentence=index.bm25_sentences.scores(tokens), dense_sentence=dense_sentence[row], tokens=tokens,
            ))
        return out

    def fuse(self, signals: Signals, k: int) -> list[Hit]:
        """The k best passages by weighted z-scores over the pooled candidates."""
        per_passage = {
            "bm25": signals.bm25,
            "dense": signals.dense,
            # The best sentence of each passage: sentences of a passage are contiguous.
            "bm25_sentence": np.maximum.reduceat(signals.bm25_sentence, self._first),
            "dense_sentence": np.maximum.reduceat(signals.dense_sentence, self._first),
        }
        pool = np.unique(np.concatenate([_top(v, CANDIDATES) for v in per_passage.values()]))
        fused = np.zeros(len(pool), dtype=np.float64)
        for name, weight in self.weights.as_dict().items():
            values = per_passage[name][pool].astype(np.float64)
            std = values.std()
            if std > 0:
                fused += weight * (values - values.mean()) / std
        order = np.argsort(-fused, kind="stable")[:k]
        return [
            Hit(int(pool[i]), float(fused[i]), {n: float(v[pool[i]]) for n, v in per_passage.items()})
            for i in order
        ]

    def search_batch(self, questions: list[str], k: int = 20) -> list[list[Hit]]:
        return [self.fuse(s, k) for s in self.signals_batch(questions)]

    def search(self, question: str, k: int = 20) -> list[Hit]:
        return self.search_batch([question], k)[0]
