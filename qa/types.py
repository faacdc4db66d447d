"""The records every layer passes around: offsets always point into the original file."""
from __future__ import annotations

import bisect
from dataclasses import dataclass


@dataclass(frozen=True)
class Document:
    """One corpus file as qa reads it, whatever its format, with the parts of it that are content.

    For .txt and .md, text is the file as decoded; for HTML, PDF and Word it is the text qa
    extracted (what `qa show --text PATH` prints). Offsets everywhere index this text.
    """

    path: str  # relative to the corpus root, with forward slashes
    text: str
    sha256: str  # of the source file's bytes (for .txt and .md, also of text's UTF-8)
    title: str | None = None
    date: str | None = None
    place: str | None = None
    blocks: tuple[tuple[int, int], ...] = ()  # content spans; everything else is scrape junk
    headings: tuple[tuple[int, int], ...] = ()  # content spans that are titles or section heads
    author: str | None = None
    pages: tuple[int, ...] = ()  # where each page starts in text (PDF); () when the source has no pages

    def page_at(self, offset: int) -> int | None:
        """The 1-based page holding text[offset], or None when the source has no pages."""
        if not self.pages:
            return None
        return bisect.bisect_right(self.pages, offset)


@dataclass(frozen=True)
class Sentence:
    doc: int
    start: int
    end: int
    heading: bool = False


@dataclass(frozen=True)
class Passage:
    doc: int
    start: int
    end: int
    first_sentence: int  # index into the index's sentence table
    last_sentence: int  # exclusive


@dataclass(frozen=True)
class Hit:
    """A passage found by retrieval and its fused score (z units)."""

    passage: int
    score: float


@dataclass(frozen=True)
class Citation:
    path: str  # as it opens from the directory qa runs in
    start: int
    end: int
    sentence_start: int
    sentence_end: int
    line: int
    title: str | None = None
    date: str | None = None
    page: int | None = None  # 1-based, for sources with pages (PDF)

    @property
    def ref(self) -> str:
        """The one citation form qa prints everywhere and `qa show` follows: PATH:LINE:START-END,
        characters START to END of the file (0-based, end exclusive), starting on line LINE."""
        return f"{self.path}:{self.line}:{self.start}-{self.end}"

    def to_json(self) -> dict:
        record = {
            "path": self.path,
            "start": self.start,
            "end": self.end,
            "sentence_start": self.sentence_start,
            "sentence_end": self.sentence_end,
            "line": self.line,
        }
        if self.title:
            record["title"] = self.title
        if self.date:
            record["date"] = self.date
        if self.page is not None:
            record["page"] = self.page
        return record


@dataclass(frozen=True)
class Answer:
    answer: str
    sentence: str
    score: float
    source: Citation
    supporting: tuple[Citation, ...] = ()
    passage: int = -1  # the passage it came from, for `:sources`

    def to_json(self) -> dict:
        return {
            "answer": self.answer,
            "sentence": self.sentence,
            "score": round(self.score, 4),
            "source": self.source.to_json(),
            "supporting": [
                {"path": c.path, "start": c.start, "end": c.end, "line": c.line,
                 **({"page": c.page} if c.page is not None else {})}
                for c in self.supporting
            ],
        }


@dataclass(frozen=True)
class Result:
    """All qa has to say about one question."""

    question: str
    answers: tuple[Answer, ...]  # when abstaining: the nearest evidence, low confidence
    abstained: bool
    id: str | None = None

    def to_json(self) -> dict:
        record: dict = {}
        if self.id is not None:
            record["id"] = self.id
        record["question"] = self.question
        record["abstained"] = self.abstained
        record["answers"] = [a.to_json() for a in self.answers]
        return record
