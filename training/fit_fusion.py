"""Choose the retriever's fusion weights and its BM25's k1 and b; write qa/fusion.json.

    .venv/bin/python training/fit_fusion.py              # grid, print, write
    .venv/bin/python training/fit_fusion.py --dry-run    # print only

The retriever adds four z-scored signals (passage BM25, passage cosine, best sentence BM25, best
sentence cosine) with weights. This tries every weighting in steps of --step that sums to 1
(scale does not change ranks) on SQuAD v1.1 *train* articles the reader was never trained on
(training/fit_confidence.py's held-out corpus, asked open over all its paragraphs), and keeps the
one with the best mean reciprocal rank of the question's own paragraph; ties go to the better
R@1, then to the weighting listed first. It prints the chosen weighting beside the one in
qa/fusion.json now, on the held-out articles split in two halves, so a choice that only fits
one half shows. No test set is read.

BM25's k1 and b come first: the passages' (every pair of the grid below, at the weights in
qa/fusion.json, by the same rule: best MRR, then R@1), then the sentences' at the passages'
chosen pair; then the weights, at the chosen pairs. tantivy's own BM25 (k1 1.2, b 0.75) is one
of the pairs.

The dot-product shortcut: fusing with one unit weight gives that signal's z-scores over the
shared candidate pool, so any weighting's fused score is a dot product with them (one fuse per
signal, not per weighting); the script checks it against Retriever.fuse on 500 questions.
"""
from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "training"))

from qa import evaluate as ev  # noqa: E402
from qa import retriever as retriever_mod  # noqa: E402
from qa.answerer import clean_question  # noqa: E402
from qa.errors import BadQuestion  # noqa: E402
from qa.lexical import TANTIVY, Bm25, tokenize  # noqa: E402
from qa.retriever import Retriever, Scores, Weights  # noqa: E402

MODEL = "all-MiniLM-L6-v2"
K1S = (0.4, 0.6, 0.9, 1.2, 1.5)
BS = (0.2, 0.3, 0.4, 0.5, 0.6, 0.75, 0.9)


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def simplex(step: float) -> list[Weights]:
    """Every weighting of the four signals in steps of `step` summing to 1."""
    n = round(1 / step)
    return [Weights(*(c / n for c in combo)) for combo in itertools.product(range(n + 1), repeat=4) if sum(combo) == n]


def pool_ranks(index, unit: list[Retriever], signals, sources, names, grid: np.ndarray) -> np.ndarray:
    """The gold document's rank under every weighting of the grid (0: not in the candidate pool)."""
    z, pool = None, None
    for j, retriever in enumerate(unit):
        hits = retriever.fuse(signals, index.n_passages)
        if z is None:
            pool = np.array(sorted(h.passage for h in hits))
            z = np.zeros((len(pool), len(unit)))
        z[np.searchsorted(pool, [h.passage for h in hits]), j] = [h.score for h in hits]
    docs = index.spans["pass_doc"][pool]
    order = np.argsort(docs, kind="stable")
    docs = docs[order]
    starts = np.flatnonzero(np.r_[True, docs[1:] != docs[:-1]])
    best = np.maximum.reduceat(z[order] @ grid, starts, axis=0)  # (documents, weightings)
    gold = np.array([names[d] in sources for d in docs[starts]])
    if not gold.any():
        return np.zeros(grid.shape[1], dtype=np.int32)
    top = best[gold].max(axis=0)
    return 1 + (best[~gold] > top).sum(axis=0).astype(np.int32)


def questions_of(golds) -> list[str]:
    cleaned = []
    for g in golds:
        try:
            cleaned.append(clean_question(g.question))
        except BadQuestion:
            cleaned.append("?")  # never retrieves its paragraph: counts as a miss
    return cleaned


def fit_bm25(current: Retriever, golds, names, sentences: bool) -> tuple[Bm25, list[tuple[Bm25, dict]]]:
    """The (k1, b) of the grid whose passage BM25 (or sentence BM25) gives the best fused MRR
    with the current retriever's weights and other settings."""
    index = current.index
    pairs = [Bm25(k1, b) for k1 in K1S for b in BS]
    ranks = np.zeros((len(golds), len(pairs)), dtype=np.int32)
    for lo in range(0, len(golds), 64):
        chunk = golds[lo : lo + 64]
        cleaned = questions_of(chunk)
        for i, (g, q, s) in enumerate(zip(chunk, cleaned, current.signals_batch(cleaned))):
            rows = s.bm25_sentence.rows if sentences else s.pool
            counts = current.term_frequencies(tokenize(q), rows, sentences=sentences)
            for j, pair in enumerate(pairs):
                if sentences:
                    s.bm25_sentence = Scores(rows, pair.score(*counts))
                else:
                    s.bm25 = Scores(rows, pair.score(*counts))
                ranks[lo + i, j] = ev.document_rank(index, current.fuse(s, index.n_passages), g.sources, names) or 0
        if lo % 640 == 0:
            say(f"  {'sentence' if sentences else 'passage'} k1 and b: {lo + len(chunk):,}/{len(golds):,} questions")
    return pairs[best_column(ranks)], [(pair, figures(ranks[:, j])) for j, pair in enumerate(pairs)]


def print_pairs(what: str, chosen: Bm25, by_pair: list[tuple[Bm25, dict]], questions: int, seconds: float) -> None:
    print(f"{what} BM25 k1 and b, {questions:,} held-out SQuAD train questions ({seconds:.0f} s):")
    print(f"{'k1':>5}{'b':>6}{'R@1':>8}{'R@5':>7}{'MRR':>7}")
    for pair, f in by_pair:
        mark = "  chosen" if pair == chosen else "  tantivy's own" if pair == TANTIVY else ""
        print(f"{pair.k1:>5g}{pair.b:>6g}{f['R@1']:>8.3f}{f['R@5']:>7.3f}{f['MRR']:>7.4f}{mark}")


def mean_reciprocal_ranks(ranks: np.ndarray) -> np.ndarray:
    """Per column of ranks (0: not found), the mean reciprocal rank."""
    return np.where(ranks > 0, 1.0 / np.maximum(ranks, 1), 0.0).mean(axis=0)


def best_column(ranks: np.ndarray) -> int:
    """The column (a setting) with the best MRR, then R@1; ties go to the first."""
    mrr, r1 = mean_reciprocal_ranks(ranks), (ranks == 1).mean(axis=0)
    return min(range(ranks.shape[1]), key=lambda c: (-round(mrr[c], 6), -r1[c], c))


def figures(ranks: np.ndarray) -> dict:
    r = ev.retrieval_from_ranks([int(x) if x > 0 else None for x in ranks], (1, 5, 20))
    return {"R@1": r.recall[1], "R@5": r.recall[5], "R@20": r.recall[20], "MRR": r.mrr}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--step", type=float, default=0.1)
    ap.add_argument("--dry-run", action="store_true", help="print the figures, write nothing")
    args = ap.parse_args()

    from fit_confidence import heldout_corpus

    from qa import store
    from qa.api import build_index, query_encoder

    corpus, root, golds = heldout_corpus()
    build_index(corpus, root, MODEL)
    index, encoder = store.load(root), query_encoder(root, MODEL)
    golds = [g for g in golds if g.answerable]
    names = [Path(d.path).name for d in index.documents]
    started = time.perf_counter()
    bm25, by_pair = fit_bm25(Retriever(index, encoder), golds, names, sentences=False)
    print_pairs("Passage", bm25, by_pair, len(golds), time.perf_counter() - started)
    started = time.perf_counter()
    sentence_bm25, by_pair = fit_bm25(Retriever(index, encoder, bm25=bm25), golds, names, sentences=True)
    print_pairs("Sentence", sentence_bm25, by_pair, len(golds), time.perf_counter() - started)
    weightings = simplex(args.step)
    grid = np.array([[w.bm25, w.dense, w.bm25_sentence, w.dense_sentence] for w in weightings]).T
    unit = [Retriever(index, encoder, Weights(*(1.0 if i == j else 0.0 for i in range(4))), bm25, sentence_bm25)
            for j in range(4)]
    current = Retriever(index, encoder, bm25=bm25, sentence_bm25=sentence_bm25)
    ranks = np.zeros((len(golds), len(weightings)), dtype=np.int32)
    checked = disagree = 0
    started = time.perf_counter()
    for lo in range(0, len(golds), 64):
        chunk = golds[lo : lo + 64]
        cleaned = questions_of(chunk)
        for i, (g, s) in enumerate(zip(chunk, current.signals_batch(cleaned))):
            ranks[lo + i] = pool_ranks(index, unit, s, g.sources, names, grid)
            if lo + i < 500:
                exact = ev.document_rank(index, current.fuse(s, index.n_passages), g.sources, names) or 0
                checked += 1
                disagree += exact != ranks[lo + i, weightings.index(current.weights)]
        if lo % 640 == 0:
            say(f"  {lo + len(chunk):,}/{len(golds):,} questions")
    best, mrr = best_column(ranks), mean_reciprocal_ranks(ranks)
    chosen, now = weightings[best], weightings.index(current.weights)
    article = np.array([int(g.sources[0].split("-")[0]) for g in golds])  # files are named article-paragraph.txt
    halves = {"even articles": article % 2 == 0, "odd articles": article % 2 == 1}
    print(f"{len(golds):,} held-out SQuAD train questions over {len(index.documents):,} paragraphs; "
          f"{len(weightings)} weightings (step {args.step:g}); {time.perf_counter() - started:.0f} s")
    print(f"check: the shortcut agreed with Retriever.fuse on {checked - disagree}/{checked} questions (ties aside)")
    print(f"{'weights (bm25/dense/bm25_sentence/dense_sentence)':<52}{'questions':<16}{'R@1':>7}{'R@5':>7}{'MRR':>7}")
    for label, c in ((f"now {label_of(weightings[now])}", now), (f"chosen {label_of(chosen)}", best)):
        for part, mask in {"all": np.ones(len(golds), bool), **halves}.items():
            f = figures(ranks[mask, c])
            print(f"{label:<52}{part:<16}{f['R@1']:>7.3f}{f['R@5']:>7.3f}{f['MRR']:>7.3f}")
    print("best five by MRR: " + "; ".join(f"{label_of(weightings[c])} {mrr[c]:.4f}" for c in np.argsort(-mrr)[:5]))
    if args.dry_run:
        return 0
    record = {
        "what": "the retriever's fused score = sum of weight * z-score of each signal over the candidate pool",
        "weights": chosen.as_dict(),
        "bm25": {"k1": bm25.k1, "b": bm25.b},
        "bm25_sentence": {"k1": sentence_bm25.k1, "b": sentence_bm25.b},
        "rule": "best MRR of the question's own paragraph, then R@1: first the passages' k1 and b over the grid "
                f"{list(K1S)} x {list(BS)} at the previous weights, then the sentences' over the same grid, then every "
                f"weighting summing to 1 in steps of {args.step:g} at those settings",
        "fitted_on": {"squad_train_heldout_questions": len(golds), "paragraphs": len(index.documents),
                      "lexical": "tantivy's candidates, BM25 again at k1 and b from each row's word counts (qa.lexical)", "vectors": index.manifest.get("vectors")},
        "figures": {k: round(v, 4) for k, v in figures(ranks[:, best]).items()},
    }
    retriever_mod.FUSION.write_text(json.dumps(record, indent=1) + "\n")
    print(f"wrote {retriever_mod.FUSION.relative_to(ROOT)}")
    return 0


def label_of(w: Weights) -> str:
    return "/".join(f"{v:g}" for v in (w.bm25, w.dense, w.bm25_sentence, w.dense_sentence))


if __name__ == "__main__":
    sys.exit(main())
