"""BM25 over stemmed words, in NumPy, stored as plain arrays (no pickle).

Tuned as measured on SQuAD (shared/FINDINGS.md): Snowball stemming, stopwords removed from
documents and queries, k1 0.9, b 0.75 — 0.797 R@1 against 0.750 for bm25s defaults.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

K1, B = 0.9, 0.75

STOPWORDS = frozenset(
    """a about above after again against all am an and any are aren't as at be because been before being below
    between both but by can can't cannot could couldn't did didn't do does doesn't doing don't down during each few
    for from further had hadn't has hasn't have haven't having he he'd he'll he's her here here's hers herself him
    himself his how how's i i'd i'll i'm i've if in into is isn't it it's its itself let's me more most mustn't my
    myself no nor not of off on once only or other ought our ours ourselves out over own same shan't she she'd
    she'll she's should shouldn't so some such than that that's the their theirs them themselves then there
    there's these they they'd they'll they're they've this those through to too under until up very was wasn't we
    we'd we'll we're we've were weren't what what's when when's where where's which while who who's whom why why's
    with won't would wouldn't you you'd you'll you're you've your yours yourself yourselves s t also""".split()
)
_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*")
_stemmer = None


def _stem_words(words: list[str]) -> list[str]:
    global _stemmer
    if _stemmer is None:
        import Stemmer

        _stemmer = Stemmer.Stemmer("english")
    return _stemmer.stemWords(words)


def words(text: str) -> list[str]:
    """Lower-cased words, apostrophes normalised, stopwords kept."""
    return [w.replace("’", "'") for w in _WORD.findall(text.lower())]


def tokenize(text: str) -> list[str]:
    """Stemmed content words: what BM25 matches on."""
    return _stem_words([w for w in words(text) if w not in STOPWORDS])


class BM25:
    """An inverted index: for each term, the documents holding it and how often."""

    def __init__(self, vocab: dict[str, int], indptr, doc_ids, tfs, lengths):
        self.vocab = vocab
        self.indptr, self.doc_ids, self.tfs = indptr, doc_ids, tfs
        self.lengths = lengths.astype(np.float32)
        n = len(lengths)
        df = np.diff(indptr).astype(np.float64)
        # Lucene's idf: never negative, so very common terms still count a little.
        self.idf = np.log1p((n - df + 0.5) / (df + 0.5)).astype(np.float32)
        avg = float(self.lengths.mean()) if n else 1.0
        self.norm = (K1 * (1 - B + B * self.lengths / max(avg, 1e-9))).astype(np.float32)

    @property
    def size(self) -> int:
        return len(self.lengths)

    @classmethod
    def build(cls, documents: list[list[str]]) -> "BM25":
        postings: dict[str, dict[int, int]] = {}
        for doc_id, tokens in enumerate(documents):
            for token in tokens:
                row = postings.setdefault(token, {})
                row[doc_id] = row.get(doc_id, 0) + 1
        terms = sorted(postings)
        vocab = {t: i for i, t in enumerate(terms)}
        counts = [len(postings[t]) for t in terms]
        indptr = np.zeros(len(terms) + 1, dtype=np.int64)
        np.cumsum(counts, out=indptr[1:])
        doc_ids = np.empty(indptr[-1], dtype=np.int32)
        tfs = np.empty(indptr[-1], dtype=np.float32)
        for i, t in enumerate(terms):
            row = postings[t]
            doc_ids[indptr[i] : indptr[i + 1]] = list(row.keys())
            tfs[indptr[i] : indptr[i + 1]] = list(row.values())
        lengths = np.array([len(d) for d in documents], dtype=np.float32)
        return cls(vocab, indptr, doc_ids, tfs, lengths)

    def scores(self, query_tokens: list[str]) -> np.ndarray:
        """BM25 score of every document for the query."""
        out = np.zeros(self.size, dtype=np.float32)
        for token in set(query_tokens):
            i = self.vocab.get(token)
            if i is None:
                continue
            lo, hi = self.indptr[i], self.indptr[i + 1]
            ids, tf = self.doc_ids[lo:hi], self.tfs[lo:hi]
            out[ids] += self.idf[i] * tf * (K1 + 1) / (tf + self.norm[ids])
        return out

    def save(self, path: Path) -> None:
        np.savez(path.with_suffix(".npz"), indptr=self.indptr, doc_ids=self.doc_ids, tfs=self.tfs, lengths=self.lengths)
        terms = sorted(self.vocab, key=self.vocab.get)
        path.with_suffix(".vocab.json").write_text(json.dumps(terms, ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> "BM25":
        with np.load(path.with_suffix(".npz"), allow_pickle=False) as data:
            arrays = {k: data[k] for k in ("indptr", "doc_ids", "tfs", "lengths")}
        terms = json.loads(path.with_suffix(".vocab.json").read_text(encoding="utf-8"))
        if len(terms) + 1 != len(arrays["indptr"]):
            raise ValueError("BM25 vocabulary and postings disagree")
        return cls({t: i for i, t in enumerate(terms)}, **arrays)
