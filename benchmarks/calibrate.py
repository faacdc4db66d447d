"""Fit qa's answer confidence on SQuAD v1.1 and check it on held-out articles and on seeds-dev.

Every candidate sentence of the retrieved passages is a row of features (qa/answerer.py
`Answerer.candidates`); its label says whether the sentence holds a gold answer in the gold
paragraph. A logistic regression over those rows gives both the ranking of candidates and a
probability that means something. Fitted on articles 0-23, measured on articles 24-47, so the
figures printed are not the ones the weights were fitted on.

    python benchmarks/calibrate.py [--per-split 2000]

Prints the fitted weights as a literal for qa/answerer.py, with sentence accuracy and
expected calibration error (ECE) before and after, and the seeds-dev figures at several
abstention thresholds.
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
from qa import evaluate, reader, store  # noqa: E402
from qa.api import open_answerer  # noqa: E402

SHARED = ROOT.parent / "shared"
OUT = ROOT / "benchmarks" / "out"
FEATURES = sorted(answerer_mod.CALIBRATION.keys() - {"bias"})


def rows_for(answerer, golds, batch=64):
    """(features, label, question number) for every candidate of every question."""
    X, y, qid = [], [], []
    for lo in range(0, len(golds), batch):
        chunk = golds[lo : lo + batch]
        signals = answerer.retriever.signals_batch([g.question for g in chunk])
        for n, (gold, s) in enumerate(zip(chunk, signals)):
            question = reader.analyse(gold.question, answerer._idf)
            hits = answerer.retriever.fuse(s, answer_mod_passages())
            for c in answerer.candidates(question, s, hits):
                sent = answerer.index.sentence(c.sentence)
                doc = answerer.index.documents[sent.doc]
                text = evaluate.normalize(doc.text[sent.start : sent.end])
                right = Path(doc.path).name in gold.sources and any(
                    evaluate.normalize(a) and evaluate.normalize(a) in text for a in gold.answers)
                X.append([c.features[f] for f in FEATURES])
                y.append(right)
                qid.append(lo + n)
    return np.array(X, dtype=np.float64), np.array(y, dtype=bool), np.array(qid)


def answer_mod_passages():
    return answerer_mod.PASSAGES


def top_metrics(logits, y, qid):
    """Sentence accuracy of the top candidate per question, and the ECE of its probability."""
    best = {}
    for i, q in enumerate(qid):
        if q not in best or logits[i] > logits[best[q]]:
            best[q] = i
    idx = np.array(list(best.values()))
    p = 1 / (1 + np.exp(-logits[idx]))
    correct = y[idx].astype(float)
    bins = np.minimum((p * 10).astype(int), 9)
    ece = sum(abs(p[bins == b].mean() - correct[bins == b].mean()) * (bins == b).sum() for b in range(10) if (bins == b).any()) / len(p)
    return correct.mean(), ece, p, correct


def current_logits(X):
    w = np.array([answerer_mod.CALIBRATION[f] for f in FEATURES])
    return X @ w + answerer_mod.CALIBRATION["bias"]


def open_squad(version: str):
    corpus, root = OUT / f"squad-{version}" / "corpus", OUT / f"squad-{version}" / "index"
    golds = evaluate.write_squad_corpus(SHARED / "data" / "squad" / f"dev-{version}.0.json" if version == "v2" else SHARED / "data" / "squad" / "dev-v1.1.json", corpus)
    return open_answerer(corpus, root, notify=lambda m: print(m, file=sys.stderr)), golds


def split(golds, cut, n, rng):
    train = [g for g in golds if int(g.sources[0][:2]) < cut]
    test = [g for g in golds if int(g.sources[0][:2]) >= cut]
    return rng.sample(train, min(n, len(train))), rng.sample(test, min(n, len(test)))


def decisions(logits, y, qid, answerable, threshold):
    """(answered rate on answerable, sentence accuracy on answerable, abstention on unanswerable)."""
    best = {}
    for i, q in enumerate(qid):
        if q not in best or logits[i] > logits[best[q]]:
            best[q] = i
    ans_n = sum(1 for q in best if answerable[q]) or 1
    un_n = sum(1 for q in best if not answerable[q]) or 1
    p = {q: 1 / (1 + np.exp(-logits[i])) for q, i in best.items()}
    answered = sum(1 for q in best if answerable[q] and p[q] >= threshold) / ans_n
    right = sum(1 for q, i in best.items() if answerable[q] and p[q] >= threshold and y[i]) / ans_n
    abstain = sum(1 for q in best if not answerable[q] and p[q] < threshold) / un_n
    return answered, right, abstain


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--per-split", type=int, default=2000, help="questions sampled from each split")
    parser.add_argument("--train", choices=["v1", "v2"], default="v2",
                        help="fit on SQuAD v1.1 (answerable only) or v2.0 (with unanswerable questions)")
    args = parser.parse_args()
    rng = random.Random(0)
    answerer, golds = open_squad(args.train)
    cut = 24 if args.train == "v1" else 18  # v2 dev has 35 articles
    train, test = split(golds, cut, args.per_split, rng)
    Xtr, ytr, qtr = rows_for(answerer, train)
    Xte, yte, qte = rows_for(answerer, test)

    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=1.0, max_iter=5000).fit(Xtr, ytr)
    fitted = {"bias": round(float(model.intercept_[0]), 3), **{f: round(float(w), 3) for f, w in zip(FEATURES, model.coef_[0])}}
    print(f"fitted on SQuAD {args.train} articles < {cut}: {len(train)} questions, {len(ytr)} candidates")
    print(f"held out: {len(test)} questions (articles >= {cut}), {len(yte)} candidates")
    print(f"{'weights':<12}{'sentence_acc':>14}{'ECE':>8}")
    for name, logits in (("current", current_logits(Xte)), ("fitted", model.decision_function(Xte))):
        acc, ece, _, _ = top_metrics(logits, yte, qte)
        print(f"{name:<12}{acc:>14.3f}{ece:>8.3f}   (top answer over all held-out questions; unanswerable count as wrong)")
    print("fitted CALIBRATION =", json.dumps(fitted))
    answerable_tr = [bool(g.answers) for g in train]
    answerable_te = [bool(g.answers) for g in test]
    logit_tr, logit_te = model.decision_function(Xtr), model.decision_function(Xte)
    print(f"{'threshold':>9}{'answered':>10}{'correct':>9}{'abstain_ok':>11}   (held out)")
    best_t, best_score = 0.5, -1.0
    for t in np.arange(0.05, 0.8, 0.05):
        a, r, u = decisions(logit_tr, ytr, qtr, answerable_tr, t)
        score = r * sum(answerable_tr) + u * (len(train) - sum(answerable_tr))
        if score > best_score:
            best_t, best_score = float(t), score
        a, r, u = decisions(logit_te, yte, qte, answerable_te, t)
        print(f"{t:>9.2f}{a:>10.3f}{r:>9.3f}{u:>11.3f}")
    print(f"threshold maximising right decisions on the training split: {best_t:.2f}")


if __name__ == "__main__":
    main()
