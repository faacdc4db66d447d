"""Retriever + reader -> answer records: ranked, merged across sources, with a confidence."""
from __future__ import annotations

import importlib.util
import os
import re
import sys
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import lexical
from .errors import BadQuestion
from .reader import sigmoid
from .reader.model import candidate_logit, top_confidence
from .retriever import Retriever, Signals
from .store import Index
from .types import Answer, Citation, Hit, Result



def _lazy(name: str):
    """The module, loaded on first use (the recipe in importlib's documentation)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.find_spec(name)
    loader = importlib.util.LazyLoader(spec.loader)
    spec.loader = loader
    module = sys.modules[name] = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


# The rule reader: its regexes and word lists cost 30 ms of every start, so only the rule path loads them.
rules = _lazy("qa.reader.rules")

MAX_QUESTION_CHARS = 2000
PASSAGES = 5  # passages the rule reader reads; the trained reader reads what its calibration was fitted with

# Stage 1, which sentence: logistic weights over the features of a candidate sentence, fitted by
# benchmarks/calibrate.py on SQuAD v1.1 dev articles 0-23 together with our own news questions over
# seeds/ (benchmarks/data/seeds-{heldout,test,final}.jsonl, half the weight); label: the sentence
# holds a gold answer in a gold source. Neither seeds-dev nor benchmarks/data/seeds-blind5.jsonl is
# fitted on: the README's figures for them are tests.
CALIBRATION = {
    "bias": -4.616,
    "dense": 1.582,  # cosine of question and sentence
    "bm25": 2.856,  # sentence BM25 over the best sentence's
    "coverage": 0.041,  # share of the question's idf-weighted words in the sentence
    "passage": 1.807,  # fused passage score minus the best passage's (z units)
    "span": -0.087,
    "span_score": 0.024,
    "kind_ok": 0.46,  # a phrase of the asked kind was found
    "missing": -1.489,  # a typed question (who, when, how many ...) with no such phrase here
    "mismatch": -1.018,  # the number found counts something else
    "context": 1.976,  # coverage by the sentence and the one before it (coreference)
    "focus": -0.498,  # a "whose request" or "how many people" noun absent here and in the sentence before
    "undescribed": -1.121,  # share of the "which *American* official" words not describing the name
    "speaker": 4.374,  # a "who said" question and a name beside a reporting verb
    "previous": -0.723,  # cosine of question and the sentence before
    "anaphor": 0.15,  # the sentence opens with he, it, this ...
    "echo": -0.66,  # share of the question describing the name itself (its own subject)
    "anaphor_dense": 0.579,  # for those, the sentence before's cosine
    "anaphor_bm25": -0.236,  # and its BM25
}
# Stage 2, how far to trust a candidate: a logistic regression over its CALIBRATION logit and how
# surely it is not the kind of thing asked (unfit), fitted by benchmarks/calibrate.py on the same news
# questions, unanswerable ones among them; the score of every answer. SQuAD v1.1 has no questions
# the text doesn't answer, so it cannot teach this part.
CONFIDENCE = {"bias": 1.709, "logit": 0.319, "unfit": -2.812}
# Abstain below this confidence: the threshold making the most right decisions (right answers plus
# right abstentions) on the fitted news questions while answering at least 95% of the answerable
# ones, the highest of a tie (0.35-0.50 tie here); benchmarks/calibrate.py prints the trade-off.
THRESHOLD = 0.5


def unfit(features: dict) -> float:
    """How surely the best candidate is not the kind of thing asked: no phrase of the asked type,
    a number counting something else, a name without the asked description, a missing focus."""
    return max(features["missing"], features["mismatch"], features["undescribed"], features["focus"])


def confidence(logit: float, features: dict) -> float:
    return sigmoid(CONFIDENCE["bias"] + CONFIDENCE["logit"] * logit + CONFIDENCE["unfit"] * unfit(features))


def clean_question(question: str) -> str:
    """The question with control characters removed; BadQuestion when nothing usable is left."""
    if len(question) > MAX_QUESTION_CHARS:
        raise BadQuestion(f"question is too long ({len(question):,} characters; the limit is {MAX_QUESTION_CHARS:,})")
    text = "".join(" " if unicodedata.category(ch)[0] in "CZ" else ch for ch in question)
    text = " ".join(text.split())
    if not any(ch.isalnum() for ch in text):
        raise BadQuestion("the question is empty; ask something like \"Who is the UN's special envoy for Syria?\"")
    return text


@dataclass(frozen=True)
class Candidate:
    sentence: int
    passage: int
    start: int  # the answer span in the file
    end: int
    features: dict
    logit: float
    score: float  # confidence in [0, 1]


def normalize_answer(text: str) -> str:
    text = text.lower().replace("’", "'")
    text = re.sub(r"[^\w\s]", " ", text)
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


class Answerer:
    def __init__(self, index: Index, encoder, corpus_root: Path | None = None, threshold: float | None = None,
                 reader=None, calibration: dict | None = None, passages: int | None = None):
        """reader: a trained span reader (qa.reader.model.SpanReader) with its fitted calibration, or
        None for the rule reader. Without a calibration the trained reader's score is its raw span
        probability (what benchmarks/calibrate.py fits from)."""
        self.index = index
        self.retriever = Retriever(index, encoder)
        self.corpus_root = Path(corpus_root or index.manifest["corpus"])
        self.reader = reader
        self.calibration = calibration
        if passages is None:
            passages = calibration["passages"] if calibration else PASSAGES
        self.passages = passages
        if threshold is None:
            threshold = calibration["threshold"] if calibration else THRESHOLD if reader is None else 0.5
        self.threshold = threshold
        self._idf = index.lexical_sentences.idf
        self._paths: dict[int, str] = {}
        self._tokens: dict[int, list] = {}  # sentence -> word tokens; tokenising dominated a warm answer
        self._descriptions: dict[int, dict] = {}  # document -> name -> words describing it
        self._aliases = self._places = None

    @property
    def aliases(self) -> dict:
        """The rule reader's demonyms, from a scan of every document: only when rules answer."""
        if self._aliases is None:
            self._aliases = rules.demonyms(d.text for _, d in self.index.live_documents())
        return self._aliases

    @property
    def places(self) -> set:
        if self._places is None:
            # A word the corpus makes an adjective of ("African") is a place too.
            self._places = rules.place_names(d.text for _, d in self.index.live_documents()) | set(self.aliases.values()) - {"u.s"}
        return self._places

    def tokens(self, s: int) -> list:
        tokens = self._tokens.get(s)
        if tokens is None:
            sent = self.index.sentence(s)
            tokens = self._tokens[s] = rules.tokenize(self.index.documents[sent.doc].text, sent.start, sent.end, self.aliases)
        return tokens

    def descriptions(self, doc: int) -> dict:
        """How the document describes each name it mentions (rules.descriptions), computed once."""
        found = self._descriptions.get(doc)
        if found is None:
            sentences = np.flatnonzero(self.index.spans["sent_doc"] == doc)
            found = self._descriptions[doc] = rules.descriptions([self.tokens(int(s)) for s in sentences])
        return found

    # -- public ---------------------------------------------------------------------------------

    def ask_batch(self, questions: list[str], k: int = 1, ids: list[str | None] | None = None) -> list[Result]:
        cleaned = [clean_question(q) for q in questions]
        return self.answer_signals(cleaned, self.retriever.signals_batch(cleaned), k, ids)

    def answer_signals(self, questions: list[str], signals: list[Signals], k: int = 1,
                       ids: list[str | None] | None = None) -> list[Result]:
        """Answer cleaned questions whose retrieval signals are already computed."""
        ids = ids or [None] * len(questions)
        return [self._answer(q, s, k, i) for q, s, i in zip(questions, signals, ids)]

    def ask(self, question: str, k: int = 1, id: str | None = None) -> Result:
        return self.ask_batch([question], k, [id])[0]

    # -- inside ---------------------------------------------------------------------------------

    def candidates(self, question: rules.Question, signals: Signals, hits: list[Hit]) -> list[Candidate]:
        index = self.index
        top_bm25 = float(signals.bm25_sentence.values.max(initial=0.0)) or 1.0
        z_top = hits[0].score if hits else 0.0
        out = []
        for hit in hits:
            p = index.passage(hit.passage)
            for s in range(p.first_sentence, p.last_sentence):
                sent = index.sentence(s)
                if sent.heading:
                    continue  # headlines help retrieval; answers come from the article body
                tokens = self.tokens(s)
                known = self.descriptions(sent.doc) if question.descriptors else None
                span = rules.best_span(tokens, question, self.places, known)
                # "He said it was done at a request from John Kerry": the question's words may sit
                # in the sentence before, which the answer sentence refers back to.
                previous = s > 0 and index.sentence(s - 1).doc == sent.doc and not index.sentence(s - 1).heading
                before = self.tokens(s - 1) if previous else []
                anaphor = previous and bool(tokens) and tokens[0].low in rules.ANAPHORS
                features = {
                    "dense": float(signals.dense_sentence[s]),
                    "bm25": float(signals.bm25_sentence[s]) / top_bm25,
                    "coverage": rules.coverage(tokens, question),
                    "passage": hit.score - z_top,
                    "span": 1.0 if span else 0.0,
                    "span_score": max(-2.0, min(3.0, span.score)) if span else 0.0,
                    "kind_ok": 1.0 if rules.kind_ok(span, question) else 0.0,
                    # A typed question (who, when, how many ...) with no phrase of that type here.
                    "missing": 1.0 if question.kind in rules.TYPED and not span else 0.0,
                    "mismatch": rules.count_mismatch(tokens, span, question),
                    "context": rules.coverage(before + tokens, question),
                    # "At whose *request* ...": the sentence (or the one before) must mention it.
                    "focus": 1.0 if question.target and not any(t.matches(question.target) for t in before + tokens) else 0.0,
                    "undescribed": rules.undescribed(tokens, span, question, known),
                    "speaker": 1.0 if question.reported and rules.speaks(tokens, span) else 0.0,
                    "previous": float(signals.dense_sentence[s - 1]) if previous else 0.0,
                    "anaphor": 1.0 if anaphor else 0.0,
                    # A sentence opening "He said ..." takes its subject from the one before: score both.
                    "anaphor_dense": float(signals.dense_sentence[s - 1]) if anaphor else 0.0,
                    "anaphor_bm25": float(signals.bm25_sentence[s - 1]) / top_bm25 if anaphor else 0.0,
                    "echo": rules.echo(tokens, span, question),
                }
                logit = CALIBRATION["bias"] + sum(CALIBRATION[name] * v for name, v in features.items())
                if span:
                    start, end = tokens[span.i].start, tokens[span.j - 1].end
                else:
                    start, end = sent.start, sent.end
                out.append(Candidate(s, hit.passage, start, end, features, logit, confidence(logit, features)))
        out.sort(key=lambda c: -c.score)
        return out

    def read(self, text: str, signals: Signals, hits: list[Hit]) -> list[Candidate]:
        """Candidates from the trained reader over the hits' passages, best first."""
        index = self.index
        passages = [index.passage(h.passage) for h in hits]
        texts = [index.documents[p.doc].text[p.start : p.end] for p in passages]
        found = self.reader.read_batch(text, texts, top=5)
        z_top = hits[0].score if hits else 0.0
        q_terms = set(lexical.tokenize(text))
        share = (lambda words: len(q_terms & words) / len(q_terms)) if q_terms else (lambda words: 0.0)
        margins = [sp.score - sp.null for spans in found for sp in spans[:1]]
        best_margin = max(margins, default=0.0)
        bm25_best = max((float(signals.bm25_sentence[s]) for p in passages for s in range(p.first_sentence, p.last_sentence)),
                        default=0.0)
        terms: dict[int, set] = {}  # sentence -> its content words

        def words_of(s: int) -> set:
            if s not in terms:
                sent = index.sentence(s)
                terms[s] = set(lexical.tokenize(index.documents[sent.doc].text[sent.start : sent.end]))
            return terms[s]

        out = []
        for hit, p, body, spans in zip(hits, passages, texts, found):
            coverage = share(set(lexical.tokenize(body)))
            for rank, sp in enumerate(spans):  # rank: 0 for the passage's best span
                start, end = p.start + sp.start, p.start + sp.end
                s = self._sentence_at(p, start)
                sent = index.sentence(s)
                if sent.heading or end > sent.end:
                    continue  # answers come from the article body, inside one sentence
                own = words_of(s)
                before = words_of(s - 1) if s > p.first_sentence else set()
                answer = set(lexical.tokenize(body[sp.start : sp.end]))
                features = {
                    "margin": sp.score - sp.null,  # span against "no answer here", logits
                    "best_margin": best_margin,  # the best passage's margin: is anything answered at all?
                    "prob": sp.prob,
                    "span": sp.score,
                    "null": sp.null,
                    "rank": float(rank),
                    "passage": hit.score - z_top,  # fused retrieval score against the best passage's (z units)
                    "dense": float(signals.dense[hit.passage]),  # cosine of question and passage
                    "dense_sentence": float(signals.dense_sentence[s]),
                    "coverage": coverage,  # share of the question's content words in the passage
                    "sentence_coverage": share(own),  # ... in the answer's sentence
                    "context_coverage": share(own | before),  # ... in it and the sentence before (he, it, this)
                    "bm25_sentence": float(signals.bm25_sentence[s]) / bm25_best if bm25_best > 0 else 0.0,
                    # Answers rarely repeat the question: "Who is Russia's foreign minister?" -> not "Russia".
                    "echo": len(answer & q_terms) / len(answer) if answer else 0.0,
                }
                logit, score = self.confidence_of(features)
                out.append(Candidate(s, hit.passage, start, end, features, logit, score))
        out.sort(key=lambda c: -c.score)
        return out

    def confidence_of(self, features: dict) -> tuple[float, float]:
        """(logit, confidence): candidates are ranked by the fitted logit, and the confidence scales
        it as fitted on top answers (a monotone map, so the ranking is the logit's)."""
        cal = self.calibration
        if cal is None:
            return features["prob"], features["prob"]
        z = candidate_logit(cal, features)
        return z, top_confidence(cal, z)

    def _sentence_at(self, p, offset: int) -> int:
        """The sentence of passage p that holds the character offset."""
        starts = self.index.spans["sent_start"][p.first_sentence : p.last_sentence]
        return p.first_sentence + max(0, int(np.searchsorted(starts, offset, side="right")) - 1)

    def _answer(self, text: str, signals: Signals, k: int, id: str | None) -> Result:
        hits = self.retriever.fuse(signals, self.passages)
        if self.reader is not None:
            candidates = self.read(text, signals, hits)
        else:
            candidates = self.candidates(rules.analyse(text, self._idf, self.aliases), signals, hits)
        groups: dict[str, list[tuple[str, Candidate]]] = {}  # key -> (the candidate's own form, candidate)
        words: dict[str, set] = {}
        for c in candidates:
            form = normalize_answer(self._text(c))
            # "Mistura" is the answer "Staffan de Mistura" again, not a second answer.
            mine = set(form.split())
            key = next((g for g, w in words.items() if mine and (mine <= w or w <= mine)), form)
            words.setdefault(key, mine)
            groups.setdefault(key, []).append((form, c))
        answers = [self._merge(group) for group in groups.values()][:k]
        abstained = not answers or answers[0].score < self.threshold
        return Result(question=text, answers=tuple(answers), abstained=abstained, id=id)

    def _merge(self, group: list[tuple[str, Candidate]]) -> Answer:
        """One answer for every place that states it: the best one cites, the rest support."""
        key, best = group[0]
        citations, seen = [], set()
        for form, c in group:
            # The same words in an unrelated sentence ("four" areas vs "four" corridors) are not support;
            # a longer or shorter form of the answer ("Mistura") joins the group but cites nothing.
            if c is not best and (c.score < self.threshold or form != key):
                continue
            if (c.sentence, c.start) not in seen:
                seen.add((c.sentence, c.start))
                citations.append(self.citation(c))
        doc = self.index.documents[self.index.sentence(best.sentence).doc]
        sent = self.index.sentence(best.sentence)
        return Answer(
            answer=doc.text[best.start : best.end],
            sentence=doc.text[sent.start : sent.end],
            score=best.score,
            source=citations[0],
            supporting=tuple(citations[1:]),
            passage=best.passage,
        )

    def _text(self, c: Candidate) -> str:
        return self.index.documents[self.index.sentence(c.sentence).doc].text[c.start : c.end]

    def path_of(self, doc_id: int) -> str:
        """The document's path as it opens from the current directory."""
        if doc_id not in self._paths:
            full = self.corpus_root / self.index.documents[doc_id].path
            if self.corpus_root.is_file():
                full = self.corpus_root
            self._paths[doc_id] = os.path.relpath(full)
        return self._paths[doc_id]

    def citation(self, c: Candidate) -> Citation:
        sent = self.index.sentence(c.sentence)
        doc = self.index.documents[sent.doc]
        return Citation(
            path=self.path_of(sent.doc), start=c.start, end=c.end,
            sentence_start=sent.start, sentence_end=sent.end, line=doc.text.count("\n", 0, c.start) + 1,
            title=doc.title, date=doc.date, page=doc.page_at(c.start),
        )
