"""Readers side by side on SQuAD v1.1 dev with the gold paragraph: the trained reader (int8 as
shipped, and fp32 when the training run's export is here) against the rule reader.

    python benchmarks/reader.py              # every question for int8; fp32 and rules on every 5th
    python benchmarks/reader.py --every 10   # a quicker run

Figures are SQuAD's own EM and F1 (best over the gold answers) of each reader's top span, and
milliseconds per question (one thread unless --threads). The test set is only measured here:
nothing is chosen on it.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from _machine import cpu_model

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from qa.evaluate import normalize, token_f1  # noqa: E402
from qa.reader.model import SpanReader  # noqa: E402
from qa.reader.rules import RuleReader  # noqa: E402

DEV = ROOT.parent / "shared" / "data" / "squad" / "dev-v1.1.json"
FP32 = ROOT / "training" / "runs" / "reader" / "reader-fp32.onnx"


def questions(every: int, source: Path = DEV) -> list[tuple[str, str, list[str]]]:
    data = json.loads(source.read_text(encoding="utf-8"))["data"]
    items = [(qa["question"], p["context"], [a["text"] for a in qa["answers"]])
             for article in data for p in article["paragraphs"] for qa in p["qas"]]
    return items[::every]


def measure(reader, items) -> dict:
    em = f1 = 0.0
    started = time.perf_counter()
    for question, context, golds in items:
        spans = reader.read_batch(question, [context], top=1)[0]
        text = context[spans[0].start : spans[0].end] if spans else ""
        em += max(float(normalize(text) == normalize(g)) for g in golds)
        f1 += max(token_f1(text, g) for g in golds)
    seconds = time.perf_counter() - started
    return {"questions": len(items), "em": em / len(items), "f1": f1 / len(items), "ms": 1000 * seconds / len(items)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--every", type=int, default=5, help="fp32 and rules on every Nth question (int8 on all with --all)")
    ap.add_argument("--all", action="store_true", help="also the shipped int8 reader on every question")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--data", type=Path, default=DEV, help="a SQuAD-format file (default: SQuAD v1.1 dev)")
    ap.add_argument("--fp32", type=Path, default=FP32, help="the training run's fp32 export, measured beside int8")
    ap.add_argument("--also", type=Path, action="append", default=[], help="another int8 graph of the same settings, beside")
    ap.add_argument("--no-rules", dest="rules", action="store_false", help="leave the rule reader out")
    ap.add_argument("--windows", default="", help="also the int8 reader at these window lengths in tokens, e.g. 256,384")
    args = ap.parse_args()
    print(f"machine: {len(os.sched_getaffinity(0))} cores ({cpu_model()}), load {os.getloadavg()[0]:.2f} at start; "
          f"{args.threads} thread(s)")
    subset = questions(args.every, args.data)
    readers = {"trained, int8 (shipped)": SpanReader(threads=args.threads)}
    if args.fp32.exists():
        readers["trained, fp32"] = SpanReader(threads=args.threads, file=str(args.fp32.resolve()))  # not the shipped file
    for graph in args.also:
        readers[f"trained, {graph.name}"] = SpanReader(threads=args.threads, file=str(graph.resolve()))
    for width in filter(None, args.windows.split(",")):
        readers[f"trained, int8, {width} tokens"] = reader = SpanReader(threads=args.threads)
        reader.max_len = int(width)
    if args.rules:
        readers["rules"] = RuleReader()
    rows = []
    if args.all:
        rows.append(("trained, int8 (shipped)", measure(readers["trained, int8 (shipped)"], questions(1, args.data))))
    for name, reader in readers.items():
        print(f"  {name} on {len(subset):,} questions ...", file=sys.stderr, flush=True)
        rows.append((name, measure(reader, subset)))
    print()
    print(f"{'reader (gold paragraph)':<28}{'questions':>10}{'EM':>8}{'F1':>8}{'ms/question':>13}")
    for name, r in rows:
        print(f"{name:<28}{r['questions']:>10,}{r['em']:>8.3f}{r['f1']:>8.3f}{r['ms']:>13.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
