"""Readers: given a question and passages, the spans of those passages that answer it.

Every reader has one method, ``read_batch(question, passages) -> [[Span, ...], ...]``: for each
passage, its best answer spans, best first, with character offsets into that passage's text.

- ``model.SpanReader``: the trained extractive reader (training/train_reader.py), run by
  onnxruntime; what qa answers with.
- ``rules.RuleReader``: the earlier hand-written rules (question types and phrase patterns),
  kept so that benchmarks can compare the two in one run.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol, Sequence


def sigmoid(x: float) -> float:
    """The logistic function, clipped so that no score overflows math.exp."""
    return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, x))))


@dataclass(frozen=True)
class Span:
    """An answer span inside one passage: text[start:end] of that passage."""

    passage: int  # position in the passages given to read_batch
    start: int
    end: int
    score: float  # start + end logit (rules: their own span score)
    null: float  # the "no answer here" score of the window the span came from (start + end of [CLS])
    prob: float  # softmax probability of this start and end within the window, [CLS] included


class Reader(Protocol):
    name: str

    def read_batch(self, question: str, passages: Sequence[str], top: int = 3) -> list[list[Span]]:
        ...
