"""Lexical engines side by side: qa's earlier NumPy BM25, bm25s and tantivy (what qa uses now).

    python benchmarks/lexical.py                   # SQuAD-open (the index benchmarks/squad.py built)
    python benchmarks/lexical.py --every 5         # every fifth question
    python benchmarks/lexical.py --scale 1000000   # build and query times at 1M recombined passages

bm25s comes with `pip install -e '.[bench]'`; tantivy is one of qa's own dependencies.

Every engine gets the same stemmed, stopword-free tokens (qa.lexical.tokenize), so what differs
is the engine: its BM25 variant (tantivy fixes k1 1.2 and quantises lengths to a byte), build
time, size on disk, query time, and what an update costs. On SQuAD-open each engine ranks the
passages alone (BM25 R@1 / R@5); what the fused retrieval gives is benchmarks/squad.py's.
The NumPy engine is the inverted index qa had before tantivy, kept here as the baseline.
"""
from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import time
from pathlib import Path

import numpy as np
from _machine import cpu_model

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from qa import evaluate as ev  # noqa: E402
from qa.lexical import tokenize  # noqa: E402
from qa.retriever import _top  # noqa: E402

K1, B = 0.9, 0.75  # what qa's NumPy BM25 used (shared/FINDINGS.md)

OUT = ROOT / "benchmarks" / "out"
SQUAD = ROOT.parent / "shared" / "data" / "squad"
POOL = 100  # passages each engine hands to the fusion, as the retriever's CANDIDATES


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def best_of(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(rows, scores) of the k best, in no order: the retriever's own top-k."""
    rows = _top(scores, k)
    return rows, scores[rows]


class NumpyEngine:
    """qa's BM25 before tantivy: postings as CSR arrays, every document scored per question."""

    name = "qa's earlier BM25 (NumPy)"

    def build(self, docs: list[list[str]], folder: Path) -> None:
        postings: dict[str, dict[int, int]] = {}
        for row, tokens in enumerate(docs):
            for token in tokens:
                postings.setdefault(token, {})
                postings[token][row] = postings[token].get(row, 0) + 1
        terms = sorted(postings)
        self.vocab = {t: i for i, t in enumerate(terms)}
        self.indptr = np.zeros(len(terms) + 1, dtype=np.int64)
        np.cumsum([len(postings[t]) for t in terms], out=self.indptr[1:])
        self.rows = np.concatenate([np.fromiter(postings[t].keys(), np.int32) for t in terms])
        self.tfs = np.concatenate([np.fromiter(postings[t].values(), np.float32) for t in terms])
        lengths = np.array([len(d) for d in docs], dtype=np.float32)
        df = np.diff(self.indptr).astype(np.float64)
        self.idf = np.log1p((len(docs) - df + 0.5) / (df + 0.5)).astype(np.float32)
        self.norm = (K1 * (1 - B + B * lengths / max(float(lengths.mean()), 1e-9))).astype(np.float32)
        np.savez(folder / "bm25.npz", indptr=self.indptr, rows=self.rows, tfs=self.tfs, lengths=lengths)

    def scores(self, tokens: list[str], n: int) -> np.ndarray:
        out = np.zeros(n, dtype=np.float32)
        for i in (self.vocab[t] for t in set(tokens) if t in self.vocab):
            lo, hi = self.indptr[i], self.indptr[i + 1]
            rows, tf = self.rows[lo:hi], self.tfs[lo:hi]
            out[rows] += self.idf[i] * tf * (K1 + 1) / (tf + self.norm[rows])
        return out

    def top(self, tokens: list[str], k: int) -> tuple[np.ndarray, np.ndarray]:
        return best_of(self.scores(tokens, len(self.norm)), k)


class Bm25sEngine:
    name = "bm25s 0.3 (lucene, k1 0.9)"

    def build(self, docs: list[list[str]], folder: Path) -> None:
        import bm25s

        self.size = len(docs)
        retriever = bm25s.BM25(k1=K1, b=B, method="lucene")
        retriever.index(docs, show_progress=False)
        retriever.save(str(folder / "bm25s"))
        self.retriever = bm25s.BM25.load(str(folder / "bm25s"), mmap=True, show_progress=False)

    def scores(self, tokens: list[str], n: int) -> np.ndarray:
        known = [t for t in set(tokens) if t in self.retriever.vocab_dict]
        return self.retriever.get_scores(known) if known else np.zeros(n, np.float32)

    def top(self, tokens: list[str], k: int) -> tuple[np.ndarray, np.ndarray]:
        return best_of(self.scores(tokens, self.size), k)


class TantivyEngine:
    """qa.lexical itself."""

    name = "tantivy 0.27 (k1 1.2), qa's"

    def build(self, docs: list[list[str]], folder: Path) -> None:
        from qa import lexical

        lexical.build(folder / "tantivy", docs, range(len(docs)))
        self.lexical = lexical.Lexical(folder / "tantivy")

    def top(self, tokens: list[str], k: int) -> tuple[np.ndarray, np.ndarray]:
        return self.lexical.top(tokens, k)


ENGINES = {"numpy": NumpyEngine, "bm25s": Bm25sEngine, "tantivy": TantivyEngine}


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def squad_open(args) -> None:
    from qa import store
    from qa.ingest import embedding_text

    root = OUT / "squad-v1" / "index"
    index = store.load(root)
    golds = ev.write_squad_corpus(SQUAD / "dev-v1.1.json", OUT / "squad-v1" / "corpus")[:: args.every]
    docs = [tokenize(embedding_text(index.documents[p.doc], p.start, p.end))
            for p in map(index.passage, range(index.n_passages))]
    path_of = [Path(d.path).name for d in index.documents]
    pass_doc = index.spans["pass_doc"]
    say(f"{len(golds):,} questions, {len(docs):,} passages")
    tokens = [tokenize(g.question) for g in golds]
    print(f"machine: {len(os.sched_getaffinity(0))} cores ({cpu_model()}), load {os.getloadavg()[0]:.2f} at start")
    print(f"SQuAD-open: {len(golds):,} questions (every {args.every}th), {len(docs):,} passages, ranked by BM25 alone")
    print(f"{'engine':<28}{'build s':>9}{'MB':>7}{'ms/q':>7}{'BM25 R@1':>10}{'R@5':>7}")
    for key in args.engines.split(","):
        engine = ENGINES[key]()
        folder = OUT / "lexical" / key
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        started = time.perf_counter()
        engine.build(docs, folder)
        build = time.perf_counter() - started
        started = time.perf_counter()
        tops = [engine.top(t, POOL) for t in tokens]
        ms = 1000 * (time.perf_counter() - started) / len(golds)
        alone = []
        for g, (rows, s) in zip(golds, tops):
            order = rows[np.argsort(-s, kind="stable")]
            alone.append(rank_of(g, [path_of[pass_doc[r]] for r in order]))
        a = ev.retrieval_from_ranks(alone, (1, 5))
        print(f"{engine.name:<28}{build:>9.1f}{folder_bytes(folder) / 1e6:>7.1f}{ms:>7.2f}"
              f"{a.recall[1]:>10.3f}{a.recall[5]:>7.3f}", flush=True)


def rank_of(gold: ev.Gold, paths: list[str]) -> int | None:
    """1-based rank of the gold document among distinct documents, None when absent."""
    seen: list[str] = []
    for p in paths:
        if p not in seen:
            seen.append(p)
            if p in gold.sources:
                return len(seen)
    return None


def recombined(n: int, seed: int = 0) -> list[list[str]]:
    """n passages of tokens, each five real SQuAD train sentences drawn at random."""
    import json
    import re

    sentences = []
    for article in json.loads((SQUAD / "train-v1.1.json").read_text())["data"]:
        for p in article["paragraphs"]:
            sentences += [s for s in re.split(r"(?<=[.!?])\s+", p["context"]) if len(s) > 20]
    say(f"tokenizing {len(sentences):,} SQuAD train sentences")
    toks = [tokenize(s) for s in sentences]
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(toks), size=(n, 5))
    return [[w for i in row for w in toks[i]] for row in picks], [tokenize(q["question"]) for a in json.loads(
        (SQUAD / "dev-v1.1.json").read_text())["data"] for p in a["paragraphs"] for q in p["qas"]][:500]


def scale(args) -> None:
    docs, questions = recombined(args.scale)
    print(f"machine: {len(os.sched_getaffinity(0))} cores ({cpu_model()}), load {os.getloadavg()[0]:.2f} at start")
    print(f"{args.scale:,} passages of 5 recombined SQuAD train sentences; 500 SQuAD dev questions")
    print(f"{'engine':<28}{'build s':>9}{'MB':>8}{'peak RSS MB':>13}{'p50 ms':>8}{'p95 ms':>8}{'add 1 s':>9}")
    for key in args.engines.split(","):
        engine = ENGINES[key]()
        folder = OUT / "lexical" / f"{key}-scale"
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        started = time.perf_counter()
        engine.build(docs, folder)
        build = time.perf_counter() - started
        times = []
        for t in questions:
            began = time.perf_counter()
            engine.top(t, POOL)
            times.append(1000 * (time.perf_counter() - began))
        add = add_one(engine, key, docs, folder)
        print(f"{engine.name:<28}{build:>9.1f}{folder_bytes(folder) / 1e6:>8.0f}{rss_mb():>13.0f}"
              f"{np.percentile(times, 50):>8.2f}{np.percentile(times, 95):>8.2f}{add:>9.2f}", flush=True)


def add_one(engine, key: str, docs: list[list[str]], folder: Path) -> float:
    """Seconds to add one article (ten passages) and have it searchable."""
    new = docs[:10]
    started = time.perf_counter()
    if key == "tantivy":
        from qa import lexical

        lexical.update(folder / "tantivy", new, range(len(docs), len(docs) + len(new)), len(docs))
        engine.lexical = lexical.Lexical(folder / "tantivy")
    else:  # neither bm25s nor qa's arrays take additions: the whole index is built again
        shutil.rmtree(folder)
        folder.mkdir()
        engine.build(docs + new, folder)
    return time.perf_counter() - started


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--every", type=int, default=1)
    ap.add_argument("--engines", default="numpy,bm25s,tantivy")
    ap.add_argument("--scale", type=int, help="build and query at this many recombined passages instead")
    args = ap.parse_args()
    scale(args) if args.scale else squad_open(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
