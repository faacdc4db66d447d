"""Indexing speed: what `qa index` encodes against a bare sentence-transformers encode of the passages.

The issue's yardstick is a bare `SentenceTransformer.encode` of the passages alone (title line
and passage, batch 32). Beside it, in the same process with every model loaded, alternating runs
so that other work on the machine falls on all alike:

- qa before: sentence-transformers encoding every passage and then every sentence alone;
- onnxruntime fp32 and int8, one pass per passage, sentence vectors pooled from it (int8 is what
  `qa index` runs now), on all cores;
- `qa index` end to end into a new folder (chunking, encoding, BM25, FAISS, writing), its
  encoder already exported (the export, once per index folder, is printed apart).

    python benchmarks/indexing.py [--corpus seeds] [--runs 3] [--limit N]
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

from qa import api, corpus as corpus_mod  # noqa: E402
from qa import embedder, ingest, onnx_encoder, store  # noqa: E402
from qa.chunker import chunk  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=ROOT / "seeds")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--limit", type=int, default=0, help="only the first N documents of the corpus")
    args = parser.parse_args()

    documents, _ = corpus_mod.load(args.corpus)
    if args.limit:
        documents = documents[: args.limit]
    sentences, passages = chunk(documents)
    texts = [ingest.embedding_text(documents[p.doc], p.start, p.end) for p in passages]
    parts = [store._sentence_parts(p, sentences, len(t) - (p.end - p.start)) for p, t in zip(passages, texts)]
    alone = [documents[s.doc].text[s.start : s.end] for s in sentences]
    threads = min(4, len(os.sched_getaffinity(0)))

    st = embedder.get(embedder.DEFAULT_MODEL)
    st.model.encode(texts[:8])  # load and warm the model outside the timings
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        int8_dir = onnx_encoder.export(Path(tmp) / "int8")
        export_seconds = time.perf_counter() - started
        int8 = onnx_encoder.OnnxEncoder(int8_dir, threads=threads)
        fp32_dir = Path(tmp) / "fp32"
        fp32_dir.mkdir()
        _fp32_graph(fp32_dir)
        fp32 = onnx_encoder.OnnxEncoder(fp32_dir, threads=threads)
        methods = {
            "bare SentenceTransformer.encode, passages": lambda: st.model.encode(
                texts, batch_size=32, normalize_embeddings=True, convert_to_numpy=True),
            "qa before: ST passages + sentences alone": lambda: (st.embed_batch(texts), st.embed_batch(alone)),
            f"onnxruntime fp32, one pass ({threads} threads)": lambda: fp32.embed_with_parts(texts, parts),
            f"onnxruntime int8, one pass ({threads} threads)": lambda: int8.embed_with_parts(texts, parts),
            "qa index, new folder (all of it)": lambda: fresh_index(args.corpus, Path(tmp), int8_dir),
        }
        if args.limit:
            del methods["qa index, new folder (all of it)"]  # it indexes the whole folder
        times = {name: [] for name in methods}
        for _ in range(args.runs):
            for name, run in methods.items():
                started = time.perf_counter()
                run()
                times[name].append(time.perf_counter() - started)

    print(f"machine: {summary()}")
    print(f"corpus: {args.corpus} — {len(documents)} documents, {len(passages)} passages + {len(sentences)} sentences")
    print(f"{'method':<46}{'median s':>10}{'passages/s':>12}{'vs bare':>9}")
    bare = statistics.median(times["bare SentenceTransformer.encode, passages"])
    for name, runs in times.items():
        m = statistics.median(runs)
        print(f"{name:<46}{m:>10.2f}{len(passages) / m:>12.1f}{bare / m:>8.2f}x")
    print(f"exporting the encoder (once per index folder; `--rebuild` exports again): {export_seconds:.1f} s")


def fresh_index(corpus: Path, tmp: Path, export: Path) -> None:
    """`qa index` into a new folder whose encoder is already exported, as every later index is."""
    import shutil

    root = tmp / f"v{len(list(tmp.glob('v*')))}"
    shutil.copytree(export, root / api.ENCODER_DIR)
    api.build_index(corpus, root, "all-MiniLM-L6-v2")


def _fp32_graph(folder: Path) -> None:
    """The unquantised graph, for the comparison only: export() keeps the int8 one."""
    import shutil

    real = onnx_encoder._quantize
    try:
        onnx_encoder._quantize = lambda source, target: shutil.copyfile(source, target)
        shutil.rmtree(folder)
        onnx_encoder.export(folder)
    finally:
        onnx_encoder._quantize = real


if __name__ == "__main__":
    main()
