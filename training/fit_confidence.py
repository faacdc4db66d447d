"""Fit the trained reader's confidence and abstention threshold; write qa/reader/weights/calibration.json.

    .venv/bin/python training/fit_confidence.py            # needs the `bench` extra (scikit-learn)

The confidence is one logistic regression over a candidate answer's features (Answerer.read: the
reader's span and no-answer scores, the fused retrieval score, cosines, word coverage). Answers
are ranked by it and qa abstains below the threshold. Fitted only on data the test sets never
touch:

- SQuAD v1.1 *train* articles the reader was not trained on (every 20th; train_reader.py
  --hold-out 20), asked open over all their paragraphs. For one question in three the gold
  paragraph is taken out of what the reader sees: a question the corpus does not answer, with
  its own article's other paragraphs as distractors.
- News questions of our own over seeds/: benchmarks/data/seeds-{heldout,test,final}.jsonl,
  unanswerable ones included (weighted --news-weight).
- Chatter and nonsense (training/data/chitchat.txt) over both corpora, and off-topic questions
  (training/data/offtopic-news.txt) over seeds/: all should abstain (weighted like news).

A candidate is right when its sentence holds a gold answer from a gold source and its phrase has
token F1 >= 0.5 with a gold answer (qa.evaluate.RIGHT_F1, the test `qa eval` calibrates against).

Threshold rule, printed with its table: the most right decisions (right top answers plus
abstentions on questions the corpus does not answer), weighted as the fit is; ties go to the
lowest threshold.
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from qa import evaluate as ev  # noqa: E402
from qa.answerer import PASSAGES, Answerer, clean_question  # noqa: E402
from qa.reader import model as reader_model  # noqa: E402

SHARED = ROOT.parent / "shared"
OUT = ROOT / "benchmarks" / "out"
MODEL = "all-MiniLM-L6-v2"
NEWS = [ROOT / "benchmarks" / "data" / f"seeds-{name}.jsonl" for name in ("heldout", "test", "final")]
HOLD_OUT = 20  # train_reader.py's --hold-out: these train articles were never trained on


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def lines(path: Path) -> list[str]:
    return [x.strip() for x in path.read_text(encoding="utf-8").splitlines() if x.strip() and not x.startswith("#")]


def heldout_corpus() -> tuple[Path, Path, list[ev.Gold]]:
    """The held-out train articles as a SQuAD-open corpus (benchmarks/out/squad-train-heldout)."""
    out = OUT / "squad-train-heldout"
    source = OUT / "train-heldout.json"
    if not source.exists():
        from train_reader import held_out

        _, held = held_out(json.loads((SHARED / "data" / "squad" / "train-v1.1.json").read_text()), HOLD_OUT)
        source.parent.mkdir(parents=True, exist_ok=True)
        source.write_text(json.dumps({"version": "train-heldout", "data": held}))
    return out / "corpus", out / "index", ev.write_squad_corpus(source, out / "corpus")


def open_answerer(corpus: Path, root: Path, reader) -> Answerer:
    from qa import store
    from qa.api import build_index, query_encoder

    build_index(corpus, root, MODEL)
    return Answerer(store.load(root), query_encoder(root, MODEL), corpus, reader=reader, calibration=None)


def rows_for(answerer: Answerer, golds: list[ev.Gold], weight: float, drop_every: int, rng: random.Random):
    """Per question: (weight, answerable in what the reader saw, [(features, right), ...])."""
    index = answerer.index
    names = [Path(d.path).name for d in index.documents]
    out = []
    for lo in range(0, len(golds), 64):
        chunk = golds[lo : lo + 64]
        questions = [clean_question(g.question) for g in chunk]
        for gold, text, signals in zip(chunk, questions, answerer.retriever.signals_batch(questions)):
            hits = answerer.retriever.fuse(signals, PASSAGES + 20)
            drop = gold.answerable and drop_every and rng.randrange(drop_every) == 0
            if drop:  # the corpus without the gold paragraph: nothing right is on offer
                hits = [h for h in hits if names[index.passage(h.passage).doc] not in gold.sources]
            hits = hits[:PASSAGES]
            answerable = gold.answerable and not drop
            found = []
            for c in answerer.read(text, signals, hits):
                sent = index.sentence(c.sentence)
                doc = index.documents[sent.doc]
                right = answerable and ev.holds_answer(gold, doc.text[sent.start : sent.end], names[sent.doc]) and \
                    max(ev.token_f1(doc.text[c.start : c.end], g) for g in gold.answers) >= ev.RIGHT_F1
                found.append((c.features, bool(right)))
            out.append((weight, answerable, found))
        say(f"  {min(lo + 64, len(golds)):,}/{len(golds):,}")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--squad-questions", type=int, default=3000, help="held-out train questions used (a fixed sample)")
    ap.add_argument("--drop-every", type=int, default=3, help="one question in N loses its gold paragraph")
    ap.add_argument("--news-weight", type=float, default=5.0)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    from sklearn.linear_model import LogisticRegression

    started = time.perf_counter()
    rng = random.Random(args.seed)
    reader = reader_model.SpanReader(threads=2)
    chatter = lines(ROOT / "training" / "data" / "chitchat.txt")
    offtopic = lines(ROOT / "training" / "data" / "offtopic-news.txt")

    def made_up(texts, tag):
        return [ev.Gold(f"{tag}{i}", q, (), (), "unanswerable") for i, q in enumerate(texts)]

    corpus, root, squad = heldout_corpus()
    squad = rng.sample(squad, min(args.squad_questions, len(squad)))
    say(f"SQuAD train, held-out articles: {len(squad):,} questions over {corpus}")
    squad_answerer = open_answerer(corpus, root, reader)
    data = rows_for(squad_answerer, squad, 1.0, args.drop_every, rng)
    data += rows_for(squad_answerer, made_up(chatter, "chat"), args.news_weight, 0, rng)
    news = [g for path in NEWS for g in ev.load_gold(path)]
    say(f"news: {len(news)} questions over seeds/, {len(chatter) + len(offtopic)} off-topic")
    seeds_answerer = open_answerer(ROOT / "seeds", OUT / "seeds-fit", reader)
    data += rows_for(seeds_answerer, news + made_up(chatter, "chat") + made_up(offtopic, "off"), args.news_weight, 0, rng)

    features = sorted(next(f for _, _, found in data for f, _ in found))
    X = np.array([[f[name] for name in features] for _, _, found in data for f, _ in found])
    y = np.array([right for _, _, found in data for _, right in found])
    w = np.array([weight for weight, _, found in data for _ in found])
    fit = LogisticRegression(C=1.0, max_iter=2000).fit(X, y, sample_weight=w)
    weights = dict(zip(features, (round(float(v), 4) for v in fit.coef_[0])))
    bias = round(float(fit.intercept_[0]), 4)

    # Each question's top answer under the fitted score.
    tops = []
    for weight, answerable, found in data:
        if not found:
            tops.append((weight, answerable, 0.0, False))
            continue
        scores = fit.predict_proba(np.array([[f[n] for n in features] for f, _ in found]))[:, 1]
        best = int(np.argmax(scores))
        tops.append((weight, answerable, float(scores[best]), found[best][1]))
    table = []
    for t in np.round(np.arange(0.05, 0.96, 0.05), 2):
        right = sum(wt * ((s >= t and ok) or (s < t and not ans)) for wt, ans, s, ok in tops)
        answered = sum(wt for wt, ans, s, _ in tops if ans and s >= t) / max(sum(wt for wt, ans, _, _ in tops if ans), 1e-9)
        abstained = sum(wt for wt, ans, s, _ in tops if not ans and s < t) / max(sum(wt for wt, ans, _, _ in tops if not ans), 1e-9)
        table.append((float(t), right / sum(wt for wt, *_ in tops), answered, abstained))
    best = max(table, key=lambda row: (round(row[1], 6), -row[0]))
    cal = ev.calibrate([s for _, _, s, _ in tops], [ok for *_, ok in tops], best[0])

    print("features and weights (logistic regression over the raw features):")
    for name in features:
        print(f"  {name:<15} {weights[name]:+.4f}")
    print(f"  {'bias':<15} {bias:+.4f}")
    print()
    print("threshold  right decisions  answered (answerable)  abstained (unanswerable)")
    for t, right, answered, abstained in table:
        mark = "  <- chosen: most right decisions, ties to the lowest" if t == best[0] else ""
        print(f"{t:>9.2f}  {right:>15.3f}  {answered:>21.3f}  {abstained:>24.3f}{mark}")
    print()
    n_q = len(tops)
    print(f"fitted on {n_q:,} questions ({sum(1 for _, a, _, _ in tops if not a):,} with nothing right on offer), "
          f"{len(y):,} candidates; in-sample ECE {cal.ece:.3f}, Brier {cal.brier:.3f}; {time.perf_counter() - started:.0f} s")

    info = reader.info
    record = {
        "what": "confidence of a candidate answer = sigmoid(bias + sum(weights[f] * features[f])); abstain below threshold",
        "weights": weights,
        "bias": bias,
        "threshold": best[0],
        "rule": "most right decisions (right top answers + abstentions where nothing right is on offer) on the fitted "
                "questions, weighted as the fit; ties to the lowest threshold",
        "reader_sha256": info["files"]["reader.onnx"]["sha256"],
        "fitted_on": {
            "squad_train_heldout_questions": len(squad), "gold_paragraph_dropped_every": args.drop_every,
            "news_sets": [p.name for p in NEWS], "news_questions": len(news),
            "chatter": len(chatter), "offtopic": len(offtopic), "news_weight": args.news_weight, "seed": args.seed,
        },
        "in_sample": {"ece": round(cal.ece, 4), "brier": round(cal.brier, 4), "right_decisions": round(best[1], 4),
                      "answered": round(best[2], 4), "abstained": round(best[3], 4)},
    }
    target = reader_model.WEIGHTS / "calibration.json"
    target.write_text(json.dumps(record, indent=1) + "\n")
    print(f"wrote {target.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
