"""SQuAD-open benchmark: qa's retrieval, answers and calibration over the SQuAD v1.1 dev paragraphs.

Every paragraph is one document (title line, blank line, context); a question counts as retrieved
at k when its own paragraph is among the top k documents (shared/data/squad/README.md).

    python benchmarks/squad.py                  # all 10,570 questions
    python benchmarks/squad.py --limit 500      # a quick run
    python benchmarks/squad.py --articles 0:24  # only those articles' questions (same full index)
    python benchmarks/squad.py --seeds          # the seeds dev set instead of SQuAD
    python benchmarks/squad.py --v2             # SQuAD v2.0 dev, open over its 1,204 paragraphs
    python benchmarks/squad.py --reader rules   # the rule reader instead of the trained one (both: --reader both)
    python benchmarks/squad.py --every 5 --passages 3   # every fifth question; the reader reads 3 passages
    python benchmarks/squad.py --train-heldout --passages 1,3,5   # SQuAD *train* articles nobody trained on

The index lives in benchmarks/out/ (gitignored) and is reused while the corpus is unchanged.
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

from qa import evaluate as ev  # noqa: E402
from qa.answerer import Answerer  # noqa: E402
from qa.retriever import Retriever, Weights  # noqa: E402

SHARED = ROOT.parent / "shared"
SQUAD = SHARED / "data" / "squad" / "dev-v1.1.json"
SQUAD_V2 = SHARED / "data" / "squad" / "dev-v2.0.json"
SEEDS_GOLD = SHARED / "eval" / "seeds-dev.jsonl"
OUT = ROOT / "benchmarks" / "out"
MODEL = "all-MiniLM-L6-v2"
TARGETS = {1: 0.82, 5: 0.96}  # fused R@1 / R@5 the project aims for
RECALL_AT = (1, 5, 20)
BASELINES = {"BM25 alone": Weights(1, 0, 0, 0), "dense alone": Weights(0, 1, 0, 0)}


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def machine() -> dict:
    """What the figures were measured on: the machine is shared, so load matters too."""
    return {"nproc": len(os.sched_getaffinity(0)), "cpu": cpu_model(), "load": [round(x, 2) for x in os.getloadavg()]}


class Ticker:
    """Progress on stderr at most every few seconds, with a rate."""

    def __init__(self, every: float = 10.0):
        self.every, self.started, self.last = every, time.perf_counter(), 0.0

    def __call__(self, stage: str, done: int, total: int) -> None:
        now = time.perf_counter()
        if done >= total or now - self.last >= self.every:
            self.last = now
            elapsed = now - self.started
            say(f"  {stage}: {done:,}/{total:,} ({done / max(elapsed, 1e-9):.1f}/s, {elapsed:.0f}s)")


# ---------------------------------------------------------------------------------------------
# Index


def open_index(corpus: Path, root: Path):
    """Build or reuse the index; returns (index, query encoder, seconds, what happened)."""
    from qa import store
    from qa.api import build_index, query_encoder

    started = time.perf_counter()
    report = build_index(corpus, root, MODEL, progress=Ticker())
    indexing = time.perf_counter() - started
    what = ("reused" if report.unchanged else
            f"embedded {report.embedded_passages:,} passages + {report.embedded_sentences:,} sentences")
    index = store.load(root)
    encoder = query_encoder(root, MODEL)  # ONNX when qa.onnx_encoder exported it, else the torch model
    encoder.embed_batch(["warm up"])  # loads the model now, so its cost shows as loading, not as answering
    return index, encoder, indexing, f"{what}; {index.n_passages:,} passages, {index.n_sentences:,} sentences"


# ---------------------------------------------------------------------------------------------
# Output


def table(rows: list[dict]) -> str:
    """One table: retrieval for every row, answer figures where they were measured."""
    columns = [("R@1", "r1"), ("R@5", "r5"), ("R@20", "r20"), ("MRR", "mrr"), ("sentence_acc", "sentence_acc"),
               ("span_em", "span_em"), ("span_f1", "span_f1"), ("ECE", "ece")]
    width = max(len(r["method"]) for r in rows) + 2
    lines = [f"{'method':<{width}}" + "".join(f"{name:>13}" for name, _ in columns)]
    for r in rows:
        cells = "".join(f"{r[key]:>13.3f}" if r.get(key) is not None else f"{'—':>13}" for _, key in columns)
        lines.append(f"{r['method']:<{width}}" + cells)
    return "\n".join(lines)


def retrieval_row(method: str, r: ev.Retrieval, **more) -> dict:
    return {"method": method, "r1": r.recall[1], "r5": r.recall[5], "r20": r.recall[20], "mrr": r.mrr, **more}


def weights_label(w: Weights) -> str:
    return "/".join(f"{v:g}" for v in (w.bm25, w.dense, w.bm25_sentence, w.dense_sentence))


def print_header(info: dict) -> None:
    m = info["machine"]
    print(f"machine: {m['nproc']} cores ({m['cpu']}), load {m['load'][0]:.2f} at start")
    print(f"corpus: {info['corpus']} — {info['index']}; indexing {info['seconds']['indexing']:.1f}s, "
          f"loading {info['seconds']['loading']:.1f}s")


def print_targets(r: ev.Retrieval) -> None:
    gaps = ", ".join(f"R@{k} {r.recall[k]:.3f} vs {t:.2f} ({r.recall[k] - t:+.3f})" for k, t in TARGETS.items())
    print(f"targets (qa fused): {gaps}")


# ---------------------------------------------------------------------------------------------
# Runs


def v2_figures(report) -> dict:
    """SQuAD 2.0's own figures: F1 over all questions (an abstention scores 1 when right, else 0),
    HasAns F1 and NoAns accuracy."""
    has = [r for r in report.rows if r.type != "unanswerable"]
    no = [r for r in report.rows if r.type == "unanswerable"]
    has_f1 = sum(0.0 if r.abstained else r.f1 for r in has)
    no_ok = sum(r.abstained for r in no)
    return {"overall_f1": (has_f1 + no_ok) / max(len(report.rows), 1), "has_ans_f1": has_f1 / max(len(has), 1),
            "no_ans_acc": no_ok / max(len(no), 1), "has_ans": len(has), "no_ans": len(no)}


def run_evaluate(index, encoder, corpus: Path, golds: list[ev.Gold], info: dict, as_json: bool, plot: Path | None,
                 readers: list[str] = ("trained",), passages: int | None = None) -> None:
    from qa.api import open_reader

    baselines = {name: Retriever(index, encoder, w) for name, w in BASELINES.items()}
    rows, reports = [], {}
    for kind in readers:
        span_reader, calibration = open_reader(kind)
        answerer = Answerer(index, encoder, corpus, reader=span_reader, calibration=calibration, passages=passages)
        info.setdefault("passages", {})[kind] = answerer.passages
        say(f"evaluating {len(golds):,} questions with the {kind} reader")
        report = reports[kind] = ev.evaluate(answerer, golds, recall_at=RECALL_AT, progress=Ticker(), baselines=baselines)
        seconds = dict(report.seconds)
        info["seconds"].update(evaluation=seconds.pop("total"), **seconds)
        info["questions_per_second"] = len(golds) / info["seconds"]["evaluation"]
        m, cal = report.metrics, report.calibration
        if not rows:
            rows = [retrieval_row(name, report.baselines[name]) for name in BASELINES]
        rows.append(retrieval_row(f"qa, {kind} reader ({weights_label(answerer.retriever.weights)})", report.retrieval,
                                  sentence_acc=m.sentence_acc, span_em=m.span_em, span_f1=m.span_f1, ece=cal.ece))
        if any(g.type == "unanswerable" for g in golds):
            info.setdefault("v2", {})[kind] = v2_figures(report)
    if plot:
        ev.plot(report, plot)
    if as_json:
        print(json.dumps({**info, "table": rows, "report": report.to_json()}, indent=1))
        return
    print_header(info)
    print("passages read: " + ", ".join(f"{kind} reader {n}" for kind, n in info["passages"].items()))
    for kind, v2 in info.get("v2", {}).items():
        print(f"SQuAD 2.0 figures, {kind} reader: overall F1 {v2['overall_f1']:.3f} (abstentions scored), HasAns F1 "
              f"{v2['has_ans_f1']:.3f} ({v2['has_ans']:,}), NoAns accuracy {v2['no_ans_acc']:.3f} ({v2['no_ans']:,})")
    print(f"questions: {m.questions:,} ({m.answerable:,} answerable); evaluated in {info['seconds']['evaluation']:.1f}s = "
          f"{info['questions_per_second']:.1f} questions/s (signals {info['seconds']['signals']:.1f}s, "
          f"ranking {info['seconds']['ranking']:.1f}s, answering {info['seconds']['answering']:.1f}s)")
    print()
    print(table(rows))
    print()
    print_targets(report.retrieval)
    abstain = "—" if m.abstain_ok is None else f"{m.abstain_ok:.3f}"
    at = "—" if cal.accuracy_at_threshold is None else f"{cal.accuracy_at_threshold:.3f}"
    print(f"also: answered {m.answered:.3f}, abstain_ok {abstain}, offsets_ok {m.offsets_ok:.4f}, "
          f"mean_answer_tokens {m.mean_answer_tokens:.2f}, Brier {cal.brier:.3f}; threshold {cal.threshold:g} keeps "
          f"{cal.coverage_at_threshold:.1%} of questions at accuracy {at}")
    if plot:
        print(f"plot: {plot}")


def run_tradeoff(index, encoder, corpus: Path, golds: list[ev.Gold], info: dict, passages: list[int]) -> None:
    """How much text the trained reader reads per question, against span F1 and time."""
    from qa.api import open_reader

    span_reader, calibration = open_reader("trained")
    print_header(info)
    print(f"{len(golds):,} questions; one thread for the reader")
    print(f"{'passages read':>13}{'tokens/question':>17}{'span_em':>9}{'span_f1':>9}{'sentence_acc':>14}{'answering ms/q':>16}")
    for k in passages:
        answerer = Answerer(index, encoder, corpus, reader=span_reader, calibration=calibration, passages=k)
        before = span_reader.tokens_read
        report = ev.evaluate(answerer, golds, recall_at=RECALL_AT)
        m = report.metrics
        tokens = (span_reader.tokens_read - before) / len(golds)
        ms = 1000 * report.seconds["answering"] / len(golds)
        print(f"{k:>13}{tokens:>17.0f}{m.span_em:>9.3f}{m.span_f1:>9.3f}{m.sentence_acc:>14.3f}{ms:>16.1f}", flush=True)


def parse_articles(text: str) -> range:
    try:
        lo, hi = (int(x) if x else None for x in text.split(":"))
    except ValueError:
        raise argparse.ArgumentTypeError("--articles takes A:B, e.g. 0:24") from None
    return range(lo or 0, hi if hi is not None else 10**6)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=int, help="evaluate only the first N questions")
    parser.add_argument("--articles", type=parse_articles, help="only the questions of articles A:B (the index holds all)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    parser.add_argument("--seeds", action="store_true", help="the seeds dev set over seeds/ instead of SQuAD")
    parser.add_argument("--plot", type=Path, help="also write the calibration plot to this PNG")
    parser.add_argument("--v2", action="store_true", help="SQuAD v2.0 dev, open over its own paragraphs")
    parser.add_argument("--reader", choices=["trained", "rules", "both"], default="trained")
    parser.add_argument("--every", type=int, default=1, help="evaluate every Nth question")
    parser.add_argument("--passages", help="passages the reader reads per question (default: what its calibration was "
                        "fitted with); a list (1,3,5) prints the trade-off of tokens read against F1 and time")
    parser.add_argument("--train-heldout", action="store_true", help="open over the SQuAD v1.1 train articles the reader "
                        "was not trained on (training/fit_confidence.py's), to choose settings without touching dev")
    args = parser.parse_args()
    if args.seeds and args.articles:
        parser.error("--articles applies to SQuAD, not --seeds")
    if args.train_heldout and (args.seeds or args.v2 or args.articles):
        parser.error("--train-heldout goes with --every, --limit, --reader and --passages only")

    info = {"machine": machine(), "seconds": {}}
    if args.seeds:
        corpus, root = ROOT / "seeds", OUT / "seeds"
        golds = ev.load_gold(SEEDS_GOLD)
    elif args.train_heldout:
        sys.path.insert(0, str(ROOT / "training"))
        from fit_confidence import heldout_corpus

        corpus, root, golds = heldout_corpus()
    else:
        name = "squad-v2" if args.v2 else "squad-v1"
        corpus, root = OUT / name / "corpus", OUT / name / "index"
        golds = ev.write_squad_corpus(SQUAD_V2 if args.v2 else SQUAD, corpus)
        if args.articles:
            golds = [g for g in golds if int(g.sources[0][:2]) in args.articles]
    golds = golds[:: args.every]
    if args.limit:
        golds = golds[: args.limit]
    say(f"indexing {os.path.relpath(corpus)} into {os.path.relpath(root)}")
    started = time.perf_counter()
    index, encoder, info["seconds"]["indexing"], info["index"] = open_index(corpus, root)
    info["seconds"]["loading"] = time.perf_counter() - started - info["seconds"]["indexing"]
    info["corpus"] = f"{len(index.documents):,} documents from {os.path.relpath(corpus)}"
    readers = ["rules", "trained"] if args.reader == "both" else [args.reader]
    passages = [int(x) for x in args.passages.split(",")] if args.passages else [None]
    if len(passages) > 1:
        run_tradeoff(index, encoder, corpus, golds, info, passages)
    else:
        run_evaluate(index, encoder, corpus, golds, info, args.json, args.plot, readers, passages[0])


if __name__ == "__main__":
    main()
