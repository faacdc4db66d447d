"""BM25 over stemmed words, on tantivy: segments on disk, memory-mapped, scored in Rust.

Chosen over bm25s and our earlier NumPy index by benchmarks/lexical.py (SQuAD-open, and 100k
recombined passages): the same retrieval quality within 0.003 R@1, a quarter of the size on
disk, the fastest queries, and an added document costs a new segment, not a rebuild. The only
module that imports tantivy.

Words are ours, not tantivy's: Snowball stems with stopwords removed (as measured on SQuAD in
shared/FINDINGS.md), joined by spaces and split by tantivy's whitespace tokenizer, so questions
and documents are analysed by one function. tantivy picks the candidates (its BM25 has k1 1.2,
b 0.75 and lengths quantised to a byte; idf is Lucene's, never negative). The candidates are then
scored again in NumPy (``Bm25``) from each row's own word counts, kept beside the index
(``WordCounts``), at the k1 and b training/fit_fusion.py chose for passages and for sentences
(on held-out SQuAD train questions tantivy's k1 1.2 cost the passages 0.008 of the fused R@1).
Asking tantivy for a few rows' scores instead needs a search filtered to those rows, and at a
million passages that filter costs 10 µs a row: 20 ms a question, where the counts cost under one.

An index holds one kind of text (passages, or sentences), each under its row number, and under
its document's number, so that a document's rows can be deleted at once.

tantivy writes every segment file once and replaces meta.json by a rename, so a copy of an
index whose segment files are hard links (``copy``) can be updated without touching the
original: how a new generation of the store keeps what did not change.
"""
from __future__ import annotations

import collections
import math
import os
import re
import shutil
import zlib
from array import array
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

STOPWORDS = frozenset(
    """a about above after again against all am an and any are aren't as at be because been before being below
    between both but by can can't cannot could couldn't did didn't do does doesn't doing don't down during each few
    for from further had hadn't has hasn't have haven't having he he'd he'll he's her here here's hers herself him
    himself his how how's i i'd i'll i'm i've if in into is isn't it it's its itself let's me more most mustn't my
    myself no nor not of off on once only or other ought our ours ourselves out over own same shan't she she'd
    she'll she's should shouldn't so some such than that that's the their theirs them themselves then there
    there's these they they'd they'll they're they've this those through to too under until up very was wasn't we
    we'd we'll we're we've were weren't what what's when when's where where's which while who who's whom why why's
    with won't would wouldn't you you'd you'll you're you've your yours yourself yourselves s t also""".split()
)
_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*")
_stemmer = None
BODY, ROW, DOC = "body", "row", "doc"
WRITER_HEAP = 256 << 20  # bytes tantivy buffers before it writes a segment
MAX_COUNT = 65535  # a word's count in one row is kept in 16 bits


@dataclass(frozen=True)
class Bm25:
    """BM25's two settings."""

    k1: float
    b: float

    def score(self, tf: np.ndarray, idf: np.ndarray, lengths: np.ndarray, average: float) -> np.ndarray:
        """Per row, the sum over words of idf · tf (k1 + 1) / (tf + k1 (1 - b + b · length / average));
        tf is (rows, words) from WordCounts.tf, idf from Lexical.idf, lengths the rows' word counts."""
        norm = self.k1 * (1 - self.b + self.b * np.asarray(lengths, np.float32) / max(average, 1e-9))
        return (idf * tf * (self.k1 + 1) / (tf + norm[:, None])).sum(axis=1, dtype=np.float32)


TANTIVY = Bm25(1.2, 0.75)  # tantivy's own settings: the sentences' where fusion.json names none


def _stem_words(words: list[str]) -> list[str]:
    global _stemmer
    if _stemmer is None:
        import Stemmer

        _stemmer = Stemmer.Stemmer("english")
    return _stemmer.stemWords(words)


def words(text: str) -> list[str]:
    """Lower-cased words, apostrophes normalised, stopwords kept."""
    return [w.replace("’", "'") for w in _WORD.findall(text.lower())]


def tokenize(text: str) -> list[str]:
    """Stemmed content words: what BM25 matches on."""
    return _stem_words([w for w in words(text) if w not in STOPWORDS])


def _schema():
    import tantivy

    builder = tantivy.SchemaBuilder()
    builder.add_text_field(BODY, tokenizer_name="whitespace", index_option="freq")
    builder.add_unsigned_field(ROW, fast=True)
    builder.add_unsigned_field(DOC, indexed=True)
    return builder.build()


def build(path: Path, texts: Iterable[list[str]], docs: Iterable[int]) -> None:
    """Write an index of tokenised texts to the folder path, row i being the i-th text, of document docs[i]."""
    import tantivy

    path.mkdir(parents=True, exist_ok=True)
    _write(tantivy.Index(_schema(), path=str(path)), texts, docs, 0, ())


def update(path: Path, texts: Iterable[list[str]], docs: Iterable[int], first_row: int, dead: Sequence[int] = ()) -> None:
    """Delete the rows of the dead documents and add texts as rows first_row, first_row + 1, ...

    One commit: the added texts make a new segment; a deleted row stays counted in BM25's
    statistics until tantivy merges its segment."""
    import tantivy

    _write(tantivy.Index.open(str(path)), texts, docs, first_row, dead)


def copy(source: Path, target: Path) -> None:
    """target becomes a copy of the index at source that can be updated alone: segment files
    (written once) are hard-linked where the file system allows, meta files are copied."""
    target.mkdir(parents=True)
    for entry in os.scandir(source):
        if entry.name.endswith(".lock"):
            continue
        if entry.name.endswith(".json"):  # meta.json, .managed.json: rewritten (by rename) on commit
            shutil.copy2(entry.path, target / entry.name)
            continue
        try:
            os.link(entry.path, target / entry.name)
        except OSError:
            shutil.copy2(entry.path, target / entry.name)


def _write(index, texts: Iterable[list[str]], docs: Iterable[int], first_row: int, dead: Sequence[int]) -> None:
    import tantivy

    # One indexing thread: qa indexes on the same cores that embed.
    writer = index.writer(heap_size=WRITER_HEAP, num_threads=1)
    if len(dead):
        # by query: delete_documents_by_term does not match unsigned fields (tantivy-py 0.27)
        writer.delete_documents_by_query(tantivy.Query.term_set_query(index.schema, DOC, [int(d) for d in dead]))
    for row, (tokens, doc_id) in enumerate(zip(texts, docs, strict=True), first_row):
        doc = tantivy.Document()
        doc.add_text(BODY, " ".join(tokens))
        doc.add_unsigned(ROW, row)
        doc.add_unsigned(DOC, int(doc_id))
        writer.add_document(doc)
    writer.commit()
    writer.wait_merging_threads()


class Lexical:
    """A tantivy index opened for searching."""

    def __init__(self, path: Path):
        import tantivy

        self._tantivy = tantivy
        self._index = tantivy.Index.open(str(path))
        self._schema = self._index.schema
        self._searcher = self._index.searcher()
        self.size = self._searcher.num_docs

    def _query(self, tokens: list[str]):
        t = self._tantivy
        terms = sorted(set(tokens))
        if not terms:
            return None
        return t.Query.boolean_query([(t.Occur.Should, t.Query.term_query(self._schema, BODY, w, index_option="freq"))
                                      for w in terms])

    def _search(self, query, limit: int) -> tuple[np.ndarray, np.ndarray]:
        if query is None or limit <= 0:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        hits = self._searcher.search(query, limit, count=False).hits
        rows = self._searcher.fast_field_values(ROW, [address for _, address in hits])
        return np.asarray(rows, dtype=np.int64), np.asarray([score for score, _ in hits], dtype=np.float32)

    def top(self, tokens: list[str], k: int) -> tuple[np.ndarray, np.ndarray]:
        """(rows, scores) of the k best-scoring rows, best first; rows matching no word are left out."""
        return self._search(self._query(tokens), k)

    def idf(self, term: str) -> float:
        """Lucene's idf of a stemmed word (as tantivy scores it); an unknown word counts as rarest."""
        n = self.size
        df = self._searcher.doc_freq(BODY, term)
        return math.log1p((n - max(df, 1) + 0.5) / (max(df, 1) + 0.5))

    def idfs(self, terms: list[str]) -> np.ndarray:
        return np.array([self.idf(t) for t in terms], dtype=np.float32)


def hashed(terms: Iterable[str]) -> np.ndarray:
    """Each word's CRC-32 (of its UTF-8): how WordCounts names it. A question word shares its hash
    with another word of a row of 70 distinct words once in 60 million rows read; the cost is that
    row's tf of that word read wrong."""
    return np.array([_crc(t) for t in terms], dtype=np.uint32)


def _crc(word: str) -> int:
    return zlib.crc32(word.encode("utf-8"))


class _Hashes(dict):
    def __missing__(self, word: str) -> int:
        value = self[word] = _crc(word)
        return value


class WordCountsWriter:
    """Collects each row's distinct words and their counts as the rows stream to tantivy."""

    def __init__(self):
        self._terms, self._counts, self._ends = array("I"), array("H"), array("q", [0])
        self._hashes = _Hashes()  # one CRC a distinct word, not one a word

    def add(self, tokens: list[str]) -> list[str]:
        counted = collections.Counter(tokens)
        self._terms.extend(map(self._hashes.__getitem__, counted))
        self._counts.extend(min(n, MAX_COUNT) for n in counted.values())
        self._ends.append(len(self._terms))
        return tokens

    def save(self, stem: Path) -> None:
        """Write stem.ends.npy (row i's words are entries ends[i]:ends[i+1]), stem.terms.npy, stem.counts.npy."""
        for part, values, dtype in (("ends", self._ends, np.int64), ("terms", self._terms, np.uint32),
                                    ("counts", self._counts, np.uint16)):
            np.save(stem.with_name(f"{stem.name}.{part}.npy"), np.frombuffer(values, dtype=dtype))


class WordCounts:
    """Every row's word counts, over the segments' files WordCountsWriter saved, memory-mapped."""

    def __init__(self, stems: list[Path]):
        self._parts = [tuple(np.load(stem.with_name(f"{stem.name}.{part}.npy"), mmap_mode="r", allow_pickle=False)
                             for part in ("ends", "terms", "counts")) for stem in stems]
        self._bases = np.cumsum([0] + [len(ends) - 1 for ends, _, _ in self._parts])

    def __len__(self) -> int:
        return int(self._bases[-1])

    def tf(self, terms: list[str], rows: np.ndarray) -> np.ndarray:
        """(rows, terms): how often each term occurs in each row."""
        rows = np.asarray(rows, dtype=np.int64)
        if not len(rows) or not terms:
            return np.zeros((len(rows), len(terms)), dtype=np.float32)
        wanted, column = np.unique(hashed(terms), return_inverse=True)
        found = np.zeros((len(rows), len(wanted)), dtype=np.float32)
        part_of = np.searchsorted(self._bases, rows, side="right") - 1
        for k in np.unique(part_of):
            (ends, terms_k, counts_k), mine = self._parts[k], np.flatnonzero(part_of == k)
            local = rows[mine] - self._bases[k]
            starts, sizes = ends[local], ends[local + 1] - ends[local]
            # Every entry of these rows at once: entry j of row i is starts[i] + j.
            owner = np.repeat(mine, sizes)
            at = np.arange(int(sizes.sum())) - np.repeat(np.cumsum(sizes) - sizes, sizes) + np.repeat(starts, sizes)
            got = terms_k[at]
            where = np.minimum(np.searchsorted(wanted, got), len(wanted) - 1)
            hit = wanted[where] == got
            found[owner[hit], where[hit]] = counts_k[at[hit]]
        return found[:, column]
