"""Fit qa's two logistic models and measure them on questions they were not fitted on.

Stage 1 picks the sentence. Every candidate sentence of the retrieved passages becomes a row of
features (qa/answerer.py `Answerer.candidates`). Its label says whether the sentence holds a gold
answer in a gold source. The fit uses SQuAD v1.1 articles 0-23 plus news questions over seeds/
(--news: our blind-written sets in benchmarks/data/, weighted by --news-weight). It is
measured on SQuAD articles 24-47.

Stage 2 is the confidence. A logistic over the best candidate's stage-1 logit and its `unfit`
flag, fitted on the news questions, unanswerable ones included. SQuAD v1.1 has none, so it
cannot teach abstention. Measured on --test (seeds-dev by default, never fitted) and on 500
held-out SQuAD questions.

    python benchmarks/calibrate.py        # the weights in qa/answerer.py

The script prints:
- both weight sets as literals for qa/answerer.py;
- sentence accuracy and expected calibration error (ECE);
- answered, sentence_acc and abstain_ok at each threshold.

Needs the `bench` extra (scikit-learn).
"""
from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from qa import answerer as answerer_mod  # noqa: E402
from qa import evaluate  # noqa: E402
from qa.reader import rules as reader  # noqa: E402
from qa.api import open_answerer  # noqa: E402

SHARED = ROOT.parent / "shared"
OUT = ROOT / "benchmarks" / "out"
FEATURES = sorted(answerer_mod.CALIBRATION.keys() - {"bias"})


def ranked(answerer, golds, batch=64):
    """(question number, gold, candidates best first) for each gold question, as the answerer ranks them."""
    for lo in range(0, len(golds), batch):
        chunk = golds[lo : lo + batch]
        for n, (gold, signals) in enumerate(zip(chunk, answerer.retriever.signals_batch([g.question for g in chunk]))):
            question = reader.analyse(gold.question, answerer._idf, answerer.aliases)
            yield lo + n, gold, answerer.candidates(question, signals, answerer.retriever.fuse(signals, answerer_mod.PASSAGES))


def right(answerer, candidate, gold) -> bool:
    """Does the candidate's sentence hold a gold answer, in a gold source (score.py's test)?"""
    sent = answerer.index.sentence(candidate.sentence)
    doc = answerer.index.documents[sent.doc]
    return evaluate.holds_answer(gold, doc.text[sent.start : sent.end], Path(doc.path).name)


def rows_for(answerer, golds):
    """(features, label, question number) for every candidate of every question."""
    X, y, qid = [], [], []
    for n, gold, candidates in ranked(answerer, golds):
        for c in candidates:
            X.append([c.features[f] for f in FEATURES])
            y.append(right(answerer, c, gold))
            qid.append(n)
    return np.array(X, dtype=np.float64), np.array(y, dtype=bool), np.array(qid)


def top_metrics(logits, y, qid):
    """Sentence accuracy of the top candidate per question, and the ECE of its probability."""
    best = {}
    for i, q in enumerate(qid):
        if q not in best or logits[i] > logits[best[q]]:
            best[q] = i
    idx = np.array(list(best.values()))
    p = 1 / (1 + np.exp(-logits[idx]))
    correct = y[idx]
    return correct.mean(), evaluate.calibrate(p.tolist(), correct.tolist(), 0.5).ece


def current_logits(X):
    w = np.array([answerer_mod.CALIBRATION[f] for f in FEATURES])
    return X @ w + answerer_mod.CALIBRATION["bias"]


def open_squad():
    corpus, root = OUT / "squad-v1" / "corpus", OUT / "squad-v1" / "index"
    golds = evaluate.write_squad_corpus(SHARED / "data" / "squad" / "dev-v1.1.json", corpus)
    return open_answerer(corpus, root, notify=lambda m: print(m, file=sys.stderr), reader="rules"), golds


def split(golds, cut, n, rng):
    train = [g for g in golds if int(g.sources[0][:2]) < cut]
    test = [g for g in golds if int(g.sources[0][:2]) >= cut]
    return rng.sample(train, min(n, len(train))), rng.sample(test, min(n, len(test)))


def top_rows(answerer, golds):
    """Per question, the best candidate: (stage-1 logit, its features, right?, answerable?)."""
    out = []
    for _, gold, candidates in ranked(answerer, golds):
        if not candidates:
            out.append((-30.0, {}, False, gold.answerable))
            continue
        c = candidates[0]
        out.append((c.logit, c.features, right(answerer, c, gold), gold.answerable))
    return out


UNFIT = True  # --no-unfit: stage 2 rescales the logit alone


def confidence_matrix(rows):
    return np.array([[logit, (answerer_mod.unfit(f) if f else 1.0) if UNFIT else 0.0] for logit, f, _, _ in rows])


def decision_table(name, p, rows, thresholds):
    """Print answered, sentence_acc and abstain_ok at each threshold; return the threshold making the
    most right decisions (right answers plus right abstentions) that still answers 95% of the
    answerable questions, the highest of any tie (abstain where it costs no right answer), the
    rule qa/answerer.py's THRESHOLD follows."""
    correct = np.array([r[2] for r in rows])
    answerable = np.array([r[3] for r in rows])
    print(f"{name}: {answerable.sum()} answerable, {(~answerable).sum()} unanswerable")
    print(f"{'threshold':>9}{'answered':>10}{'sentence_acc':>14}{'abstain_ok':>12}")
    best, most = None, -1
    for t in thresholds:
        keep = p >= t
        print(f"{t:>9.2f}{keep[answerable].mean():>10.3f}{(keep & correct)[answerable].mean():>14.3f}"
              f"{(~keep[~answerable]).mean() if (~answerable).any() else float('nan'):>12.3f}")
        decisions = int((keep & correct & answerable).sum() + (~keep & ~answerable).sum())
        if keep[answerable].mean() >= 0.95 and decisions >= most:
            best, most = float(t), decisions
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--per-split", type=int, default=2000, help="questions sampled from each split")
    parser.add_argument("--news", type=Path, nargs="*",
                        default=[ROOT / "benchmarks" / "data" / f"seeds-{name}.jsonl" for name in ("heldout", "test", "final")],
                        help="news questions over seeds/ fitted beside SQuAD (default: our heldout, test and final sets)")
    parser.add_argument("--test", type=Path, nargs="*", default=[SHARED / "eval" / "seeds-dev.jsonl"],
                        help="news questions over seeds/ only measured, never fitted (default: seeds-dev)")
    parser.add_argument("--news-weight", type=float, default=0.5,
                        help="the news rows' total weight relative to the SQuAD rows' (default 0.5)")
    parser.add_argument("--no-unfit", action="store_true", help="stage 2 without the unfit flag: rank by the logit alone")
    args = parser.parse_args()
    global UNFIT
    UNFIT = not args.no_unfit
    rng = random.Random(0)
    answerer, golds = open_squad()
    train, test = split(golds, 24, args.per_split, rng)
    Xtr, ytr, qtr = rows_for(answerer, train)
    Xte, yte, qte = rows_for(answerer, test)
    seeds = open_answerer(ROOT / "seeds", ROOT / "vectors", notify=lambda m: print(m, file=sys.stderr), reader="rules")
    news = [g for path in args.news for g in evaluate.load_gold(path)]
    held = [g for path in args.test for g in evaluate.load_gold(path)]
    Xn, yn, _ = rows_for(seeds, news) if news else (np.zeros((0, len(FEATURES))), np.zeros(0, bool), None)

    from sklearn.linear_model import LogisticRegression

    weight = np.concatenate([np.ones(len(ytr)), np.full(len(yn), args.news_weight * len(ytr) / max(1, len(yn)))])
    model = LogisticRegression(C=1.0, max_iter=5000).fit(np.vstack([Xtr, Xn]), np.concatenate([ytr, yn]), sample_weight=weight)
    fitted = {"bias": round(float(model.intercept_[0]), 3), **{f: round(float(w), 3) for f, w in zip(FEATURES, model.coef_[0])}}
    print(f"fitted on SQuAD v1 articles < 24: {len(train)} questions, {len(ytr)} candidates; "
          f"news: {len(news)} questions, {len(yn)} candidates, weight {args.news_weight}")
    print(f"SQuAD held out: {len(test)} questions (articles >= 24), {len(yte)} candidates")
    print(f"{'weights':<12}{'sentence_acc':>14}{'ECE':>8}")
    for name, logits in (("current", current_logits(Xte)), ("fitted", model.decision_function(Xte))):
        acc, ece = top_metrics(logits, yte, qte)
        print(f"{name:<12}{acc:>14.3f}{ece:>8.3f}   (top answer over held-out SQuAD questions)")
    print("fitted CALIBRATION =", json.dumps(fitted))

    # Stage 2: how far to trust the best candidate. Fitted on the news questions, unanswerable
    # ones included, with the stage-1 weights just fitted; measured on --test.
    answerer_mod.CALIBRATION.update(fitted)
    answerer_mod.CONFIDENCE.update(bias=0.0, logit=1.0, unfit=0.0)  # rank by the logit alone while fitting
    fit_rows = top_rows(seeds, news)
    conf = LogisticRegression(C=1.0, max_iter=5000).fit(confidence_matrix(fit_rows), [r[2] for r in fit_rows])
    confidence = {"bias": round(float(conf.intercept_[0]), 3), "logit": round(float(conf.coef_[0][0]), 3),
                  "unfit": round(float(conf.coef_[0][1]), 3)}
    print("fitted CONFIDENCE =", json.dumps(confidence))
    answerer_mod.CONFIDENCE.update(confidence)  # the answerer ranks by confidence: measure it so
    thresholds = np.arange(0.05, 0.8, 0.05)
    for name, golds_, on in (("news, fitted", news, seeds), ("news, held out (--test)", held, seeds),
                             ("SQuAD, held out (500)", test[:500], answerer)):
        rows = top_rows(on, golds_)
        p = conf.predict_proba(confidence_matrix(rows))[:, 1]
        ece = evaluate.calibrate(p.tolist(), [r[2] for r in rows], 0.5).ece
        chosen = decision_table(f"{name} (ECE {ece:.3f})", p, rows, thresholds)
        if name == "news, fitted":
            print(f"threshold: {chosen:.2f} (most right decisions on the fitted questions, answering >= 95%)")


if __name__ == "__main__":
    main()
