"""Answer latency: cold `qa ask`, `qa --help`, and warm per-question time, beside baselines.

    python benchmarks/latency.py [--runs 5] [--squad]

Cold: fresh processes of `qa --help` and `qa ask` on an index already built (medians of
--runs). Warm: per-question time inside one process with everything loaded (median over the
seeds-dev questions, and with --squad over 1,000 SQuAD questions on the 2,067-paragraph index
from benchmarks/squad.py), for qa's full answer (retrieval + the trained reader), the same with
the rule reader, next to a bare
sentence-transformers encode + FAISS flat search and BM25 alone.
"""
from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as qa/cli.py sets it: one question at a time

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _machine import summary  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SHARED = ROOT.parent / "shared"
OUT = ROOT / "benchmarks" / "out"


def time_command(argv: list[str], runs: int, cwd: Path) -> list[float]:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run(argv, cwd=cwd, capture_output=True, check=True)
        times.append(time.perf_counter() - t)
    return times


def warm(index_dir: Path, corpus: Path, questions: list[str]) -> dict[str, float]:
    """Median milliseconds per question for qa and the two baselines, everything loaded."""
    import faiss

    from qa import embedder
    from qa.api import open_answerer
    from qa.lexical import tokenize

    per_reader = {}
    for kind in ("trained", "rules"):
        answerer = open_answerer(corpus, index_dir, reader=kind)
        for q in questions[:3]:
            answerer.ask(q)  # warm caches and lazy imports
        per_reader[kind] = []
        for q in questions:
            t = time.perf_counter()
            answerer.ask(q)
            per_reader[kind].append(time.perf_counter() - t)
    qa_times = per_reader["trained"]
    model = embedder.get(embedder.DEFAULT_MODEL)
    flat = faiss.IndexFlatIP(answerer.index.passage_vectors.shape[1])
    flat.add(answerer.index.passage_vectors)
    model.embed_batch(questions[:3])
    bare = []
    for q in questions:
        t = time.perf_counter()
        flat.search(model.embed_batch([q]), 5)
        bare.append(time.perf_counter() - t)
    bm25 = answerer.index.lexical_passages
    lexical = []
    for q in questions:
        t = time.perf_counter()
        bm25.top(tokenize(q), 5)
        lexical.append(time.perf_counter() - t)
    ms = lambda xs: 1000 * statistics.median(xs)
    return {"qa ask (retrieval + extraction)": ms(qa_times), "rules": ms(per_reader["rules"]), "bare sentence-transformers + FAISS flat": ms(bare),
            "BM25 alone": ms(lexical), "encoder": type(answerer.retriever.encoder).__name__}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--squad", action="store_true", help="also measure the SQuAD index (built by benchmarks/squad.py)")
    args = parser.parse_args()
    qa = [str(Path(sys.executable).with_name("qa"))]
    seeds_dir = OUT / "latency"
    seeds_dir.mkdir(parents=True, exist_ok=True)
    if not (seeds_dir / "seeds").exists():
        (seeds_dir / "seeds").symlink_to(ROOT / "seeds")
    subprocess.run(qa + ["index"], cwd=seeds_dir, check=True, capture_output=True)
    question = "Who is the UN's special envoy for Syria?"
    print(f"machine: {summary()}")
    print(f"{'cold, fresh process':<48}{'median s':>10}{'min s':>8}")
    for name, argv in (("qa --help", qa + ["--help"]), ("qa ask (index built)", qa + ["ask", question]),
                       ("qa ask --json (index built)", qa + ["ask", question, "--json"])):
        runs = time_command(argv, args.runs, seeds_dir)
        print(f"{name:<48}{statistics.median(runs):>10.3f}{min(runs):>8.3f}")
    dev = [json.loads(line)["question"] for line in open(SHARED / "eval" / "seeds-dev.jsonl")]
    sets = [("seeds", seeds_dir / "vectors", seeds_dir / "seeds", dev)]
    if args.squad:
        from qa import evaluate

        golds = evaluate.write_squad_corpus(SHARED / "data" / "squad" / "dev-v1.1.json", OUT / "squad-v1" / "corpus")
        sets.append(("squad (2,067 paragraphs)", OUT / "squad-v1" / "index", OUT / "squad-v1" / "corpus", [g.question for g in golds[::10][:1000]]))
    print(f"{'warm, per question (median ms)':<48}{'qa':>8}{'rules':>8}{'ST+flat':>9}{'BM25':>8}  encoder")
    for name, index_dir, corpus, questions in sets:
        r = warm(index_dir, corpus, questions)
        print(f"{name:<48}{r['qa ask (retrieval + extraction)']:>8.1f}{r['rules']:>8.1f}{r['bare sentence-transformers + FAISS flat']:>9.1f}{r['BM25 alone']:>8.2f}  {r['encoder']}")


if __name__ == "__main__":
    main()
