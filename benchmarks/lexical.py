"""Lexical engines side by side: qa's NumPy BM25, bm25s and tantivy, on SQuAD-open and at scale.

    python benchmarks/lexical.py                   # SQuAD-open (the index benchmarks/squad.py built)
    python benchmarks/lexical.py --every 5         # every fifth question
    python benchmarks/lexical.py --scale 1000000   # build and query times at 1M recombined passages

tantivy and bm25s come with `pip install -e '.[bench]'`; qa itself uses neither yet.

Every engine gets the same stemmed, stopword-free tokens (qa.lexical.tokenize), so what differs
is the engine: its BM25 variant (tantivy fixes k1 1.2 and quantises lengths to a byte), build
time, size on disk, query time, and what an update costs. On SQuAD-open the passage scores of
each engine replace qa's own inside the same z-score fusion (dense and sentence signals as
shipped), so R@1 / R@5 show what the switch would cost; questions are only measured here.
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
from qa.lexical import BM25, K1, B, tokenize  # noqa: E402
from qa.retriever import _top  # noqa: E402

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
    name = "qa BM25 (NumPy)"

    def build(self, docs: list[list[str]], folder: Path) -> None:
        BM25.build(docs).save(folder / "bm25")
        self.bm25 = BM25.load(folder / "bm25")

    def scores(self, tokens: list[str], n: int) -> np.ndarray:
        return self.bm25.scores(tokens)

    def top(self, tokens: list[str], k: int) -> tuple[np.ndarray, np.ndarray]:
        return best_of(self.bm25.scores(tokens), k)


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
    name = "tantivy 0.27 (k1 1.2)"

    def build(self, docs: list[list[str]], folder: Path) -> None:
        import tantivy

        self.tantivy = tantivy
        builder = tantivy.SchemaBuilder()
        builder.add_text_field("body", tokenizer_name="whitespace", index_option="freq")
        builder.add_unsigned_field("row", stored=False, fast=True, indexed=True)
        self.schema = builder.build()
        (folder / "tantivy").mkdir(parents=True, exist_ok=True)
        self.index = tantivy.Index(self.schema, path=str(folder / "tantivy"))
        writer = self.index.writer(heap_size=512 << 20, num_threads=1)
        for row, tokens in enumerate(docs):
            writer.add_document(self.document(" ".join(tokens), row))
        writer.commit()
        writer.wait_merging_threads()
        self.index.reload()
        self.searcher = self.index.searcher()

    def document(self, body: str, row: int):
        doc = self.tantivy.Document()
        doc.add_text("body", body)
        doc.add_unsigned("row", row)
        return doc

    def top(self, tokens: list[str], k: int) -> tuple[np.ndarray, np.ndarray]:
        t = self.tantivy
        terms = [(t.Occur.Should, t.Query.term_query(self.schema, "body", w)) for w in sorted(set(tokens))]
        if not terms:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        hits = self.searcher.search(t.Query.boolean_query(terms), k, count=False).hits
        rows = self.searcher.fast_field_values("row", [a for _, a in hits])
        return np.asarray(rows, np.int64), np.asarray([s for s, _ in hits], np.float32)

    def scores(self, tokens: list[str], n: int) -> np.ndarray:
        """Top 1,000 scores, the rest 0: tantivy ranks, it does not score every document."""
        out = np.zeros(n, np.float32)
        rows, s = self.top(tokens, 1000)
        out[rows] = s
        return out


ENGINES = {"numpy": NumpyEngine, "bm25s": Bm25sEngine, "tantivy": TantivyEngine}


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def squad_open(args) -> None:
    from qa import store
    from qa.api import query_encoder
    from qa.retriever import Retriever
    from qa.store import embedding_text

    root = OUT / "squad-v1" / "index"
    index = store.load(root)
    golds = ev.write_squad_corpus(SQUAD / "dev-v1.1.json", OUT / "squad-v1" / "corpus")[:: args.every]
    encoder = query_encoder(root, "all-MiniLM-L6-v2")
    retriever = Retriever(index, encoder)
    docs = [tokenize(embedding_text(index.documents[p.doc], p.start, p.end))
            for p in map(index.passage, range(index.n_passages))]
    path_of = [Path(d.path).name for d in index.documents]
    pass_doc = index.spans["pass_doc"]
    say(f"{len(golds):,} questions, {len(docs):,} passages")
    signals = retriever.signals_batch([g.question for g in golds])
    tokens = [tokenize(g.question) for g in golds]
    print(f"machine: {len(os.sched_getaffinity(0))} cores ({cpu_model()}), load {os.getloadavg()[0]:.2f} at start")
    print(f"SQuAD-open: {len(golds):,} questions (every {args.every}th), {len(docs):,} passages; passage signal replaced, "
          "sentence and dense signals as shipped")
    print(f"{'engine':<28}{'build s':>9}{'MB':>7}{'ms/q':>7}{'BM25 R@1':>10}{'R@5':>7}{'fused R@1':>11}{'R@5':>7}")
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
        alone, fused = [], []
        for g, t, (rows, s), sig in zip(golds, tokens, tops, signals):
            order = rows[np.argsort(-s, kind="stable")]
            alone.append(rank_of(g, [path_of[pass_doc[r]] for r in order]))
            sig.bm25 = engine.scores(t, len(docs))
            hits = retriever.fuse(sig, 20)
            fused.append(rank_of(g, [path_of[pass_doc[h.passage]] for h in hits]))
        a, f = ev.retrieval_from_ranks(alone, (1, 5)), ev.retrieval_from_ranks(fused, (1, 5))
        print(f"{engine.name:<28}{build:>9.1f}{folder_bytes(folder) / 1e6:>7.1f}{ms:>7.2f}"
              f"{a.recall[1]:>10.3f}{a.recall[5]:>7.3f}{f.recall[1]:>11.3f}{f.recall[5]:>7.3f}", flush=True)


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
        writer = engine.index.writer(heap_size=64 << 20, num_threads=1)
        for i, tokens in enumerate(new):
            writer.add_document(engine.document(" ".join(tokens), len(docs) + i))
        writer.commit()
        engine.index.reload()
        engine.searcher = engine.index.searcher()
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
