"""The reader alone on the gold paragraph, asked questions it can and cannot answer there.

Questions of the SQuAD train articles the reader was never trained on (training/fit_confidence.py's
held-out ones), and the same questions made unanswerable as training makes them
(train_reader.swapped: a name or number the paragraph holds, swapped for one of the article
that it lacks). A reader abstains when its "no answer" score beats its best span. Printed:
F1 on the answerable (abstaining counts 0), accuracy on the unanswerable, and the two together
as SQuAD 2.0 scores them. Held-out train only, so it may choose between models.

    python benchmarks/unanswerable.py [--also OTHER.onnx] [--every 2]
"""
from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "training"))

from qa.evaluate import token_f1  # noqa: E402
from qa.reader.model import SpanReader  # noqa: E402
from train_reader import entity_pool, swapped  # noqa: E402

HELDOUT = ROOT / "benchmarks" / "out" / "train-heldout.json"


def items(every: int, seed: int = 7) -> list[tuple[str, str, list[str]]]:
    rng = random.Random(seed)
    out = []
    for article in json.loads(HELDOUT.read_text(encoding="utf-8"))["data"]:
        pool = entity_pool([p["context"] for p in article["paragraphs"]])
        for p in article["paragraphs"]:
            for qa in p["qas"]:
                out.append((qa["question"], p["context"], [a["text"] for a in qa["answers"]]))
                changed = swapped(qa["question"], p["context"], pool, rng)
                if changed:
                    out.append((changed, p["context"], []))
    return out[::every]


def measure(reader: SpanReader, data) -> dict:
    has = no = f1 = right = 0.0
    for question, context, golds in data:
        spans = reader.read_batch(question, [context], top=1)[0]
        answered = bool(spans) and spans[0].score > spans[0].null
        if golds:
            has += 1
            f1 += max(token_f1(context[spans[0].start : spans[0].end], g) for g in golds) if answered else 0.0
        else:
            no += 1
            right += not answered
    return {"has": int(has), "no": int(no), "has_f1": f1 / has, "no_acc": right / no, "overall": (f1 + right) / (has + no)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--also", type=Path, action="append", default=[], help="another int8 graph of the same settings")
    ap.add_argument("--every", type=int, default=1)
    args = ap.parse_args()
    data = items(args.every)
    readers = {"shipped": SpanReader()}
    for graph in args.also:
        readers[graph.name] = SpanReader(file=str(graph.resolve()))
    print(f"{'reader (gold paragraph)':<28}{'answerable':>11}{'F1':>7}{'unanswerable':>14}{'acc':>7}{'overall':>9}")
    for name, reader in readers.items():
        r = measure(reader, data)
        print(f"{name:<28}{r['has']:>11,}{r['has_f1']:>7.3f}{r['no']:>14,}{r['no_acc']:>7.3f}{r['overall']:>9.3f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
