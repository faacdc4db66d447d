"""Scoring qa against gold questions: retrieval, answers, offsets and calibration.

The answer figures are those of shared/eval/score.py (sentence_acc, span_em, span_f1, answered,
abstain_ok, offsets_ok, mean_answer_tokens), recomputed here with the same definitions and the
same normalisation, so `qa eval` and the shared scorer agree to the last digit they print.
"""
from __future__ import annotations

import collections
import json
import re
import string
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Mapping, Sequence

from .answerer import THRESHOLD, clean_question
from .errors import BadInput, BadQuestion

if TYPE_CHECKING:
    from .answerer import Answerer
    from .retriever import Retriever
    from .store import Index
    from .types import Hit, Result

Progress = Callable[[str, int, int], None]
TextOf = Callable[[str], "str | None"]

# ---------------------------------------------------------------------------------------------
# Gold questions


@dataclass(frozen=True)
class Gold:
    """One gold question: acceptable answers (none when unanswerable) and the files stating them."""

    id: str
    question: str
    answers: tuple[str, ...]
    sources: tuple[str, ...]
    type: str = ""

    @property
    def answerable(self) -> bool:
        return bool(self.answers)


def load_gold(path: Path) -> list[Gold]:
    """Gold questions from a JSON Lines file in the seeds-dev format."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        why = "it is not UTF-8" if isinstance(exc, UnicodeDecodeError) else exc.strerror or "unreadable"
        raise BadInput(f"cannot read gold questions from {path}: {why}") from None
    golds = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            golds.append(Gold(
                id=str(row["id"]), question=row["question"], answers=tuple(row["answers"]),
                sources=tuple(row.get("sources") or ()), type=row.get("type") or "",
            ))
        except json.JSONDecodeError as exc:
            raise BadInput(f"{path}:{number} is not a gold question (not valid JSON: {exc.msg} at column {exc.colno})") from None
        except KeyError as exc:
            raise BadInput(f"{path}:{number} is not a gold question (no {exc.args[0]!r} field)") from None
        except (ValueError, TypeError):
            raise BadInput(f"{path}:{number} is not a gold question (it needs \"id\", \"question\" and a list of \"answers\")") from None
    return golds


_SQUAD_NAME = re.compile(r"\d{2,}-\d{3,}\.txt")


def write_squad_corpus(squad_json: Path, out_dir: Path, articles: slice | None = None) -> list[Gold]:
    """Write each SQuAD paragraph as one article file (title line, blank line, context); its golds."""
    try:
        data = json.loads(Path(squad_json).read_text(encoding="utf-8"))["data"]
    except OSError as exc:
        raise BadInput(f"cannot read {squad_json}: {exc.strerror or 'unreadable'}") from None
    except ValueError:
        raise BadInput(f"{squad_json} is not a SQuAD file: it is not valid JSON") from None
    except (KeyError, TypeError):
        raise BadInput(f"{squad_json} is not a SQuAD file: it has no \"data\" list") from None
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    golds, written = [], set()
    for a in range(len(data))[articles or slice(None)]:
        article = data[a]
        title = article["title"].replace("_", " ")
        for p, paragraph in enumerate(article["paragraphs"]):
            # Numbered by position in the whole file, so a slice names files as the full set does.
            name = f"{a:02d}-{p:03d}.txt"
            _write_if_changed(out_dir / name, f"{title}\n\n{paragraph['context']}\n")
            written.add(name)
            for qa in paragraph["qas"]:
                impossible = bool(qa.get("is_impossible"))
                # SQuAD repeats an answer once per annotator; keep each text once, in order.
                answers = () if impossible else tuple(dict.fromkeys(x["text"] for x in qa["answers"]))
                golds.append(Gold(qa["id"], qa["question"], answers, (name,), "unanswerable" if impossible else "squad"))
    # Paragraph files left from an earlier, larger write would be indexed as extra documents.
    for path in out_dir.glob("*.txt"):
        if _SQUAD_NAME.fullmatch(path.name) and path.name not in written:
            path.unlink()
    return golds


def _write_if_changed(path: Path, text: str) -> None:
    data = text.encode("utf-8")
    try:
        if path.read_bytes() == data:
            return  # an untouched file keeps its mtime, so the index stays fresh across runs
    except FileNotFoundError:
        pass
    path.write_bytes(data)


# ---------------------------------------------------------------------------------------------
# Answer figures, as shared/eval/score.py defines them

_PUNCTUATION = frozenset(string.punctuation)


def normalize(text: str) -> str:
    """SQuAD normalisation as score.py does it: lower case, no ASCII punctuation, no articles."""
    text = text.lower().replace("\u2019", "'").replace("\u2018", "'")
    text = "".join(ch for ch in text if ch not in _PUNCTUATION)
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def token_f1(prediction: str, gold: str) -> float:
    """SQuAD token F1 between two answer texts."""
    p, g = normalize(prediction).split(), normalize(gold).split()
    if not p or not g:
        return float(p == g)
    same = sum((collections.Counter(p) & collections.Counter(g)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(p), same / len(g)
    return 2 * precision * recall / (precision + recall)


@dataclass(frozen=True)
class Verdict:
    """How one answer record fares against its gold question."""

    present: bool  # False: no answer record (the question could not be asked)
    abstained: bool
    returned: int  # answers in the record
    offsets_ok: int  # of those, answers whose offsets cut out exactly their text
    correct: bool  # the top answer's sentence holds a gold answer and cites a gold source, abstained or not
    em: float
    f1: float
    tokens: int
    failure: str | None = None


def holds_answer(gold: Gold, sentence: str, source_name: str) -> bool:
    """score.py's sentence_acc test: the sentence holds a gold answer and comes from a gold source."""
    text = normalize(sentence)
    return source_name in gold.sources and any(g and g in text for g in map(normalize, gold.answers))


def judge(gold: Gold, record: dict | None, text_of: TextOf) -> Verdict:
    """Score one answer record (Result.to_json()) against its gold question."""
    if record is None:
        return Verdict(False, False, 0, 0, False, 0.0, 0.0, 0, "no answer record")
    answers = record.get("answers") or []
    abstained = bool(record.get("abstained")) or not answers
    offsets_ok = 0
    for answer in answers:
        source = answer.get("source") or {}
        text = text_of(source.get("path", ""))
        if text is not None and text[source.get("start", -1):source.get("end", -1)] == answer.get("answer"):
            offsets_ok += 1
    correct, em, f1, tokens = False, 0.0, 0.0, 0
    if answers and gold.answerable:
        top = answers[0]
        cited = Path((top.get("source") or {}).get("path", "")).name
        correct = holds_answer(gold, top.get("sentence") or top.get("answer") or "", cited)
        golds = [normalize(g) for g in gold.answers]
        em = max(float(normalize(top.get("answer", "")) == g) for g in golds)
        f1 = max(token_f1(top.get("answer", ""), g) for g in gold.answers)
        tokens = len(normalize(top.get("answer", "")).split())
    if not gold.answerable:
        failure = None if abstained else "answered an unanswerable question: " + repr(answers[0].get("answer"))
    elif abstained:
        failure = "abstained"
    elif not correct:
        failure = f"top answer {answers[0].get('answer')!r} from {Path((answers[0].get('source') or {}).get('path', '')).name}"
    else:
        failure = None
    return Verdict(True, abstained, len(answers), offsets_ok, correct, em, f1, tokens, failure)


@dataclass(frozen=True)
class Metrics:
    """score.py's figures: fractions of answerable questions unless said otherwise."""

    questions: int
    answerable: int
    sentence_acc: float
    span_em: float
    span_f1: float
    answered: float
    abstain_ok: float | None  # of unanswerable questions; None when there are none
    offsets_ok: float  # of every returned answer
    mean_answer_tokens: float  # over answered questions

    def to_json(self) -> dict:
        """Keys and rounding exactly as score.py prints them."""
        return {
            "questions": self.questions,
            "sentence_acc": round(self.sentence_acc, 4),
            "span_em": round(self.span_em, 4),
            "span_f1": round(self.span_f1, 4),
            "answered": round(self.answered, 4),
            "abstain_ok": None if self.abstain_ok is None else round(self.abstain_ok, 4),
            "offsets_ok": round(self.offsets_ok, 4),
            "mean_answer_tokens": round(self.mean_answer_tokens, 2),
        }


def aggregate(golds: Sequence[Gold], verdicts: Sequence[Verdict]) -> Metrics:
    """score.py's totals over verdicts aligned with their golds."""
    answerable = [v for g, v in zip(golds, verdicts) if g.answerable]
    unanswerable = [v for g, v in zip(golds, verdicts) if not g.answerable]
    answered = [v for v in answerable if v.present and not v.abstained]
    n_ans = max(len(answerable), 1)
    return Metrics(
        questions=len(golds),
        answerable=len(answerable),
        sentence_acc=sum(v.correct for v in answered) / n_ans,
        span_em=sum(v.em for v in answered) / n_ans,
        span_f1=sum(v.f1 for v in answered) / n_ans,
        answered=len(answered) / n_ans,
        abstain_ok=sum(v.present and v.abstained for v in unanswerable) / len(unanswerable) if unanswerable else None,
        offsets_ok=sum(v.offsets_ok for v in verdicts) / max(sum(v.returned for v in verdicts), 1),
        mean_answer_tokens=sum(v.tokens for v in answered) / max(len(answered), 1),
    )


def score(golds: Sequence[Gold], records: Sequence[dict | None], text_of: TextOf | None = None) -> tuple[Metrics, list[Verdict]]:
    """score.py's figures for answer records aligned with golds (None: no record for that question)."""
    text_of = text_of or file_reader()
    verdicts = [judge(g, r, text_of) for g, r in zip(golds, records, strict=True)]
    return aggregate(golds, verdicts), verdicts


def file_reader() -> TextOf:
    """Cited files' text, read relative to the current directory as score.py does (None: unreadable);
    web pages, PDFs and Word files as qa extracts them, since their offsets index that text."""
    from . import documents

    cache: dict[str, str | None] = {}

    def text_of(path: str) -> str | None:
        if path not in cache:
            try:
                if path and documents.kind_of(path) is not None:
                    from .corpus import document_text

                    cache[path] = document_text(Path(path))[0]
                else:
                    cache[path] = Path(path).read_text(encoding="utf-8") if path else None
            except (OSError, UnicodeDecodeError):
                cache[path] = None
        return cache[path]

    return text_of


# ---------------------------------------------------------------------------------------------
# Retrieval


@dataclass(frozen=True)
class Retrieval:
    """Document-level recall@k and mean reciprocal rank over answerable questions with sources.

    A gold document not within the retriever's top RANK_DEPTH passages counts as not retrieved.
    """

    questions: int
    recall: Mapping[int, float]
    mrr: float

    def to_json(self) -> dict:
        return {"questions": self.questions, **{f"recall@{k}": round(v, 4) for k, v in self.recall.items()},
                "mrr": round(self.mrr, 4)}


def document_rank(index: Index, hits: Sequence[Hit], sources: Sequence[str], names: Sequence[str] | None = None) -> int | None:
    """1-based rank of the first gold document among the hits' documents, each counted once."""
    names = names if names is not None else [Path(d.path).name for d in index.documents]
    seen: set[int] = set()
    for hit in hits:
        doc = index.passage(hit.passage).doc
        if doc in seen:
            continue  # a document split into several passages is one result
        seen.add(doc)
        if names[doc] in sources:
            return len(seen)
    return None


def retrieval_from_ranks(ranks: Sequence[int | None], recall_at: Sequence[int] = (1, 5, 20)) -> Retrieval:
    """Recall@k and MRR from each question's gold document rank (None: not retrieved)."""
    n = max(len(ranks), 1)
    return Retrieval(
        questions=len(ranks),
        recall={k: sum(r is not None and r <= k for r in ranks) / n for k in recall_at},
        mrr=sum(1.0 / r for r in ranks if r is not None) / n,
    )


# ---------------------------------------------------------------------------------------------
# Calibration


@dataclass(frozen=True)
class Bin:
    """One bar of the reliability diagram: answers whose score falls in [lo, hi)."""

    lo: float
    hi: float
    count: int
    confidence: float  # mean score
    accuracy: float


@dataclass(frozen=True)
class CoveragePoint:
    """Answering only the top `coverage` fraction by score: their accuracy, and the lowest score kept."""

    coverage: float
    accuracy: float
    score: float


@dataclass(frozen=True)
class Calibration:
    """How well the top answer's score predicts that it is right."""

    ece: float  # expected calibration error over equal-width bins
    brier: float
    bins: tuple[Bin, ...]
    curve: tuple[CoveragePoint, ...]  # accuracy against coverage, answers sorted by score
    threshold: float  # the abstention threshold in use
    coverage_at_threshold: float
    accuracy_at_threshold: float | None  # None when nothing clears the threshold

    def to_json(self) -> dict:
        return {
            "ece": round(self.ece, 4), "brier": round(self.brier, 4), "threshold": self.threshold,
            "coverage_at_threshold": round(self.coverage_at_threshold, 4),
            "accuracy_at_threshold": None if self.accuracy_at_threshold is None else round(self.accuracy_at_threshold, 4),
            "bins": [{"lo": round(b.lo, 2), "hi": round(b.hi, 2), "count": b.count, "confidence": round(b.confidence, 4),
                      "accuracy": round(b.accuracy, 4)} for b in self.bins],
            "curve": [{"coverage": round(p.coverage, 4), "accuracy": round(p.accuracy, 4), "score": round(p.score, 4)}
                      for p in self.curve],
        }


CURVE_POINTS = 100  # enough for a smooth plot; a point per question would bloat --json on SQuAD


def calibrate(scores: Sequence[float], correct: Sequence[bool], threshold: float, bins: int = 10) -> Calibration:
    """ECE, Brier score and the accuracy-coverage curve of scores against correctness."""
    n = len(scores)
    if n == 0:
        return Calibration(0.0, 0.0, (), (), threshold, 0.0, None)
    groups: list[list[int]] = [[] for _ in range(bins)]
    for i, s in enumerate(scores):
        groups[min(int(s * bins), bins - 1)].append(i)  # a score of exactly 1.0 joins the top bin
    table, ece = [], 0.0
    for b, members in enumerate(groups):
        if not members:
            continue
        confidence = sum(scores[i] for i in members) / len(members)
        accuracy = sum(correct[i] for i in members) / len(members)
        ece += len(members) / n * abs(accuracy - confidence)
        table.append(Bin(b / bins, (b + 1) / bins, len(members), confidence, accuracy))
    brier = sum((s - float(c)) ** 2 for s, c in zip(scores, correct)) / n
    order = sorted(range(n), key=lambda i: -scores[i])  # stable: ties keep question order
    hits, cumulative = 0, []
    for i in order:
        hits += correct[i]
        cumulative.append(hits)
    cuts = sorted({max(1, round(j * n / CURVE_POINTS)) for j in range(1, CURVE_POINTS + 1)})
    curve = tuple(CoveragePoint(m / n, cumulative[m - 1] / m, scores[order[m - 1]]) for m in cuts)
    kept = [c for s, c in zip(scores, correct) if s >= threshold]
    return Calibration(ece, brier, tuple(table), curve, threshold, len(kept) / n,
                       sum(kept) / len(kept) if kept else None)


# ---------------------------------------------------------------------------------------------
# The whole evaluation


@dataclass(frozen=True)
class Row:
    """One question's outcome, for plots and error analysis."""

    id: str
    score: float  # the top answer's confidence; 0 when there is no answer
    correct: bool  # the top answer is right: sentence_acc's test and span F1 >= 0.5; never when unanswerable
    abstained: bool
    type: str
    rank: int | None  # the gold document's rank in fused retrieval; None when not retrieved or not asked
    f1: float = 0.0  # the top answer's span F1 (0 when unanswerable)


@dataclass(frozen=True)
class EvalReport:
    """Everything `qa eval` measures on one gold set."""

    metrics: Metrics
    retrieval: Retrieval  # the answerer's own fused retrieval
    baselines: Mapping[str, Retrieval]  # other weightings over the same signals
    calibration: Calibration
    rows: tuple[Row, ...]
    failures: tuple[tuple[str, str], ...]  # (id, why) like score.py's stderr
    seconds: Mapping[str, float]  # wall time: signals, ranking, answering, total

    def to_json(self, rows: bool = False) -> dict:
        """score.py's keys at the top, then retrieval, calibration and timings."""
        record = {
            **self.metrics.to_json(),
            "retrieval": self.retrieval.to_json(),
            "baselines": {name: r.to_json() for name, r in self.baselines.items()},
            "calibration": self.calibration.to_json(),
            "seconds": {k: round(v, 3) for k, v in self.seconds.items()},
        }
        if rows:
            record["rows"] = [
                {"id": r.id, "score": round(r.score, 4), "correct": r.correct, "abstained": r.abstained,
                 "type": r.type, "rank": r.rank} for r in self.rows
            ]
        return record


# Passages ranked per question for recall and MRR: far past rank 20 even when documents split into
# several passages, and cheaper than the whole candidate pool (building every Hit cost 14% of a run).
RANK_DEPTH = 100
RIGHT_F1 = 0.5  # an answer phrase this close to a gold answer (token F1) counts as right for calibration


def evaluate(
    answerer: Answerer,
    golds: Sequence[Gold],
    k_answers: int = 1,
    recall_at: Sequence[int] = (1, 5, 20),
    batch: int = 64,
    progress: Progress | None = None,
    baselines: Mapping[str, Retriever] | None = None,
) -> EvalReport:
    """Ask every gold question and measure retrieval, answers and calibration.

    baselines: other retrievers over the same index, ranked from the same signals (computed once).
    """
    if not golds:
        raise BadInput("no gold questions to evaluate")
    index = answerer.index
    names = [Path(d.path).name for d in index.documents]
    retrievers = {"qa": answerer.retriever, **(baselines or {})}
    text_of = file_reader()
    ranks: dict[str, list[int | None]] = {name: [] for name in retrievers}
    verdicts: list[Verdict] = []
    rows: list[Row] = []
    seconds = collections.Counter()
    started = time.perf_counter()
    for lo in range(0, len(golds), batch):
        chunk = golds[lo : lo + batch]
        asked, cleaned = [], []
        for i, gold in enumerate(chunk):
            try:
                cleaned.append(clean_question(gold.question))
                asked.append(i)
            except BadQuestion:
                pass  # scored as "no answer record", as score.py scores a missing line
        t0 = time.perf_counter()
        signals = answerer.retriever.signals_batch(cleaned) if cleaned else []
        t1 = time.perf_counter()
        fused_rank: dict[int, int | None] = {}
        for i, s in zip(asked, signals):
            gold = chunk[i]
            if not (gold.answerable and gold.sources):
                continue
            for name, retriever in retrievers.items():
                rank = document_rank(index, retriever.fuse(s, RANK_DEPTH), gold.sources, names)
                ranks[name].append(rank)
                if name == "qa":
                    fused_rank[i] = rank
        t2 = time.perf_counter()
        ids = [chunk[i].id for i in asked]
        results = answerer.answer_signals(cleaned, signals, k_answers, ids)  # the same signals, not recomputed
        t3 = time.perf_counter()
        seconds.update(signals=t1 - t0, ranking=t2 - t1, answering=t3 - t2)
        by_position: dict[int, Result] = dict(zip(asked, results))
        for i, gold in enumerate(chunk):
            result = by_position.get(i)
            verdict = judge(gold, result.to_json() if result is not None else None, text_of)
            verdicts.append(verdict)
            top = result.answers[0].score if result is not None and result.answers else 0.0
            # The score claims the *answer* is right, so calibration judges the phrase, not only its sentence.
            rows.append(Row(gold.id, top, verdict.correct and verdict.f1 >= RIGHT_F1, not verdict.present or verdict.abstained,
                            gold.type, fused_rank.get(i), verdict.f1))
        if progress:
            progress("evaluating", lo + len(chunk), len(golds))
    seconds["total"] = time.perf_counter() - started
    threshold = getattr(answerer, "threshold", THRESHOLD)
    return EvalReport(
        metrics=aggregate(golds, verdicts),
        retrieval=retrieval_from_ranks(ranks.pop("qa"), recall_at),
        baselines={name: retrieval_from_ranks(r, recall_at) for name, r in ranks.items()},
        calibration=calibrate([r.score for r in rows], [r.correct for r in rows], threshold),
        rows=tuple(rows),
        failures=tuple((g.id, v.failure) for g, v in zip(golds, verdicts) if v.failure),
        seconds=dict(seconds),
    )


# ---------------------------------------------------------------------------------------------
# Plot


def plot(report: EvalReport, path: Path) -> None:
    """One PNG: accuracy against coverage (where to abstain) beside a reliability diagram."""
    try:
        # The Agg canvas directly, not pyplot: no GUI backend, no global figure state.
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise BadInput("--plot needs matplotlib: pip install 'qa[plot]'") from None
    cal = report.calibration
    figure = Figure(figsize=(11, 4.5), dpi=100)
    FigureCanvasAgg(figure)
    left, right = figure.subplots(1, 2)

    coverage = [0.0] + [p.coverage for p in cal.curve]
    accuracy = [cal.curve[0].accuracy if cal.curve else 0.0] + [p.accuracy for p in cal.curve]
    left.plot(coverage, accuracy, color="C0", label="accuracy of the answers kept")
    kept = f"{cal.accuracy_at_threshold:.2f}" if cal.accuracy_at_threshold is not None else "—"
    left.axvline(cal.coverage_at_threshold, color="C3", linestyle="--",
                 label=f"threshold {cal.threshold:g}: covers {cal.coverage_at_threshold:.0%}, accuracy {kept}")
    left.set_xlim(0, 1)
    left.set_ylim(0, 1.02)
    left.set_xlabel("coverage (fraction of questions answered, highest scores first)")
    left.set_ylabel("accuracy (sentence holds a gold answer)")
    left.set_title(f"Where to abstain ({report.metrics.questions} questions)")
    scores = left.twinx()  # the score threshold that gives each coverage
    scores.plot([p.coverage for p in cal.curve], [p.score for p in cal.curve], color="C2", linestyle=":",
                label="lowest score kept")
    scores.set_ylim(0, 1.02)
    scores.set_ylabel("score threshold")
    lines = left.get_legend_handles_labels()
    more = scores.get_legend_handles_labels()
    left.legend(lines[0] + more[0], lines[1] + more[1], loc="lower left", fontsize=8)

    width = 1.0 / max(len(cal.bins), 10)
    centres = [(b.lo + b.hi) / 2 for b in cal.bins]
    right.bar(centres, [b.accuracy for b in cal.bins], width=width * 0.9, color="C0", alpha=0.8, label="accuracy")
    right.plot([b.confidence for b in cal.bins], [b.accuracy for b in cal.bins], "o", color="C1",
               label="at the bin's mean score")
    right.plot([0, 1], [0, 1], color="grey", linestyle="--", label="perfect calibration")
    for centre, b in zip(centres, cal.bins):
        right.annotate(str(b.count), (centre, b.accuracy), ha="center", va="bottom", fontsize=7)
    right.set_xlim(0, 1)
    right.set_ylim(0, 1.05)
    right.set_xlabel("top answer's score")
    right.set_ylabel("fraction correct")
    right.set_title(f"Reliability: ECE {cal.ece:.3f}, Brier {cal.brier:.3f}")
    right.legend(loc="upper left", fontsize=8)
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png")
