"""Indexing speed: `qa index --rebuild` against a bare sentence-transformers encode of the same texts.

Both sides encode exactly the texts qa embeds (every passage, with its title, and every
sentence), in the same process with the model already loaded, alternating runs so that load
from other work on the machine falls on both alike. Prints medians over --runs.

    python benchmarks/indexing.py [--corpus seeds] [--runs 5] [--limit-files N]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _machine import summary  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from qa import corpus as corpus_mod  # noqa: E402
from qa import embedder, store  # noqa: E402
from qa.chunker import chunk  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=ROOT / "seeds")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    model = embedder.get(embedder.DEFAULT_MODEL)
    documents, _ = corpus_mod.load(args.corpus)
    sentences, passages = chunk(documents)
    texts = [store.embedding_text(documents[p.doc], p.start, p.end) for p in passages]
    texts += [documents[s.doc].text[s.start : s.end] for s in sentences]
    model.model.encode(texts[:8])  # load and warm the model outside the timings

    bare, full, embed_only = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.runs):
            t = time.perf_counter()
            model.model.encode(texts, batch_size=32, normalize_embeddings=True, convert_to_numpy=True)
            bare.append(time.perf_counter() - t)
            t = time.perf_counter()
            model.embed_batch(texts)
            embed_only.append(time.perf_counter() - t)
            t = time.perf_counter()
            store.build(args.corpus, Path(tmp) / "v", model, rebuild=True)
            full.append(time.perf_counter() - t)

    print(f"machine: {summary()}")
    print(f"corpus: {args.corpus} — {len(documents)} files, {len(passages)} passages + {len(sentences)} sentences = {len(texts)} texts")
    print(f"{'method':<44}{'median s':>10}{'texts/s':>10}{'vs bare':>9}")
    b = statistics.median(bare)
    for name, runs in (("bare SentenceTransformer.encode (batch 32)", bare),
                       ("qa embedder (length-sorted, batch 64)", embed_only),
                       ("qa index --rebuild (chunk+embed+BM25+write)", full)):
        m = statistics.median(runs)
        print(f"{name:<44}{m:>10.2f}{len(texts) / m:>10.1f}{m / b - 1:>+9.1%}")


if __name__ == "__main__":
    main()
