"""The index on disk: FAISS vectors, BM25, passages and a manifest, swapped in atomically.

Layout of an index folder (``vectors/`` by default)::

    CURRENT            names the live generation, e.g. "gen-000003"; replaced atomically
    gen-000003/        one complete, self-checking index
        manifest.json  model, chunking settings, corpus files and hashes, build time, data checksums
        docs.jsonl     each document's text, title, date and content spans, a JSON line each
        docs.offsets.npy  where each line starts: documents are read one at a time, when used
        spans.npz      sentence and passage offsets (plain arrays, loaded with allow_pickle=False)
        passages.npy   passage vectors, float32, memory-mapped on load
        sentences.npy  sentence vectors
        passages.faiss FAISS index over passages.npy
        lexical-passages/, lexical-sentences/   BM25 over passages and sentences (tantivy, qa.lexical)
    lock               held (flock) by a running `qa index`; the kernel drops it if that process dies

A new generation is written beside the live one, synced, and only then named in CURRENT, so a
`qa index` killed at any moment leaves the previous index whole. The only module that imports faiss.
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import fcntl
import json
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from . import corpus as corpus_mod
from . import documents as formats
from .chunker import ChunkSettings, chunk
from .errors import CorpusError, IndexBusy, IndexDamaged, IndexForeign, IndexMissing, IndexProblem
from . import lexical
from .lexical import tokenize
from .types import Document, Passage, Sentence

FORMAT = 3  # 2: int8 vectors, sentences pooled from their passage's pass ("vectors" in the manifest); 3: tantivy
CURRENT = "CURRENT"
VERIFY_BYTES = 64 << 20  # on load, the smallest files are checked by sha256 up to this much in all; the rest by size


def _checkpoint(stage: str) -> None:
    """Fault injection for the crash tests: QA_CRASH_AT=stage kills this process right here.

    Stages: before-embedding, during-embedding, after-embedding, before-swap, after-swap.
    """
    if os.environ.get("QA_CRASH_AT") == stage:
        import signal

        os.kill(os.getpid(), signal.SIGKILL)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_file(path: Path, data: bytes) -> None:
    with open(path, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


@contextlib.contextmanager
def locked(root: Path):
    """Hold the index's writer lock, or raise IndexBusy at once."""
    try:
        root.mkdir(parents=True, exist_ok=True)
        handle = open(root / "lock", "a+")
    except OSError as exc:
        raise IndexProblem(f"cannot write the index in {root}/: {exc.strerror or 'not writable'}; "
                           "pass --index with a folder you can write to") from None
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise IndexBusy(f"{root}/ is being updated by another `qa index` (pid {holder}); wait for it to finish") from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        yield
    finally:
        handle.close()  # closing drops the flock; a killed process drops it too


# ---------------------------------------------------------------------------------------------
# The loaded index


class Documents(Sequence):
    """The generation's documents, read one at a time from docs.jsonl when asked for.

    Opening an index reads nothing per document: docs.offsets.npy says where each line starts,
    the file is memory-mapped, and a document is parsed on first use (then kept, while fewer than
    CACHED are). A question touches the few documents its passages are in.
    """

    CACHED = 4096

    def __init__(self, path: Path, offsets: np.ndarray, root: Path):
        import mmap

        self._offsets, self._root = offsets, root
        with open(path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            if len(offsets) < 1 or int(offsets[-1]) != size or np.any(np.diff(offsets) <= 0):
                raise ValueError("docs.offsets.npy does not match docs.jsonl")
            self._map = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) if size else b""
        self._cache: dict[int, Document] = {}

    def __len__(self) -> int:
        return len(self._offsets) - 1

    def __getitem__(self, i: int) -> Document:
        doc = self._cache.get(i)
        if doc is None:
            if not 0 <= i < len(self):
                raise IndexError(i)
            try:
                doc = _document(json.loads(self._map[int(self._offsets[i]) : int(self._offsets[i + 1])]))
            except (ValueError, KeyError, TypeError):
                raise IndexDamaged(f"the index in {self._root}/ is damaged (docs.jsonl line {i + 1} cannot be read) "
                                   "— run `qa index --rebuild`") from None
            if len(self._cache) >= self.CACHED:
                self._cache.clear()
            self._cache[i] = doc
        return doc

    def __iter__(self):  # Sequence's own stops at IndexError; this one is direct
        return (self[i] for i in range(len(self)))


def _document(d: dict) -> Document:
    return Document(
        path=d["path"], text=d["text"], sha256=d["sha256"], title=d.get("title"), date=d.get("date"),
        place=d.get("place"), blocks=tuple(map(tuple, d["blocks"])), headings=tuple(map(tuple, d["headings"])),
        author=d.get("author"), pages=tuple(d.get("pages") or ()),
    )


@dataclass
class Index:
    """A loaded, verified index generation."""

    root: Path
    manifest: dict
    documents: "Documents | list[Document]"
    spans: dict[str, np.ndarray]
    passage_vectors: np.ndarray
    sentence_vectors: np.ndarray
    lexical_passages: lexical.Lexical
    lexical_sentences: lexical.Lexical
    _faiss: object = field(default=None, repr=False)

    @property
    def model(self) -> str:
        return self.manifest["model"]

    @property
    def n_passages(self) -> int:
        return len(self.spans["pass_doc"])

    @property
    def n_sentences(self) -> int:
        return len(self.spans["sent_doc"])

    def passage(self, i: int) -> Passage:
        s = self.spans
        return Passage(int(s["pass_doc"][i]), int(s["pass_start"][i]), int(s["pass_end"][i]),
                       int(s["pass_first"][i]), int(s["pass_last"][i]))

    def sentence(self, i: int) -> Sentence:
        s = self.spans
        return Sentence(int(s["sent_doc"][i]), int(s["sent_start"][i]), int(s["sent_end"][i]), bool(s["sent_heading"][i]))

    def passage_text(self, i: int) -> str:
        p = self.passage(i)
        return self.documents[p.doc].text[p.start : p.end]

    def search_passages(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(scores, ids) of the k nearest passages for each query vector."""
        k = min(k, self.n_passages)
        scores, ids = self._faiss.search(np.ascontiguousarray(queries, dtype=np.float32), k)
        return scores, ids


def current_generation(root: Path) -> Path | None:
    try:
        name = (root / CURRENT).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    except NotADirectoryError:
        raise IndexProblem(f"{root} is not a folder; pass --index with the folder holding the index") from None
    except UnicodeDecodeError:
        raise IndexDamaged(f"the index in {root}/ is damaged ({CURRENT} is not text) — run `qa index --rebuild`") from None
    except OSError as exc:
        raise IndexDamaged(f"the index in {root}/ cannot be read ({CURRENT}: {exc.strerror or 'unreadable'}) — "
                           "run `qa index --rebuild`") from None
    if not name.startswith("gen-") or "/" in name:
        raise IndexDamaged(f"the index in {root}/ is damaged ({CURRENT} is garbled) — run `qa index --rebuild`")
    return root / name


MANIFEST_KEYS = {"format", "generation", "model", "chunking", "faiss", "corpus", "counts", "files", "data"}


def read_manifest(root: Path) -> dict:
    """The live generation's manifest; IndexMissing when there is none."""
    gen = current_generation(root)
    if gen is None:
        raise IndexMissing(f"no index in {root}/ — run `qa index`")
    damaged = f"the index in {root}/ is damaged"
    try:
        manifest = json.loads((gen / "manifest.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        if not gen.is_dir():
            raise IndexDamaged(f"{damaged} ({CURRENT} names {gen.name}, which is missing) — run `qa index --rebuild`") from None
        raise IndexDamaged(f"{damaged} (manifest.json is missing) — run `qa index --rebuild`") from None
    except OSError as exc:
        raise IndexDamaged(f"{damaged} (manifest.json: {exc.strerror or 'unreadable'}) — run `qa index --rebuild`") from None
    except ValueError:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise IndexDamaged(f"{damaged} (manifest.json is not valid JSON) — run `qa index --rebuild`") from None
    if not isinstance(manifest, dict) or not MANIFEST_KEYS <= manifest.keys():
        raise IndexDamaged(f"{damaged} (manifest.json lacks its fields) — run `qa index --rebuild`")
    if manifest.get("format") != FORMAT:
        raise IndexForeign(f"{root}/ was written by another version of qa (format {manifest.get('format')}); run `qa index --rebuild`")
    return manifest


def check_compatible(manifest: dict, root: Path, model: str, settings: ChunkSettings) -> None:
    if manifest["model"] != model:
        raise IndexForeign(
            f"{root}/ was built with model {manifest['model']!r}, not {model!r}; "
            f"run `qa index --rebuild` or pass `--model {manifest['model']}`"
        )
    if manifest["chunking"] != settings.to_json():
        raise IndexForeign(f"{root}/ was built with other chunking settings ({manifest['chunking']}); run `qa index --rebuild`")


def load(root: Path, verify: bool = True, manifest: dict | None = None) -> Index:
    """Load and cross-check the live generation; any inconsistency is IndexDamaged.

    manifest: the live one, already read (it is large for a large corpus); read again if another
    generation went live since."""
    gen = current_generation(root)
    if manifest is None or gen is None or manifest.get("generation") != gen.name:
        manifest = read_manifest(root)
        gen = current_generation(root)
    damaged = f"the index in {root}/ is damaged"
    part = "manifest.json"  # the file being read, for the message when it fails
    try:
        if verify:
            budget = VERIFY_BYTES  # opening must not cost more as the corpus grows: hash this much at most
            for name, expect in sorted(manifest["data"].items(), key=lambda item: (item[1]["bytes"], item[0])):
                part = name
                path = gen / name
                if not path.exists():
                    raise IndexDamaged(f"{damaged} ({name} is missing) — run `qa index --rebuild`")
                if path.stat().st_size != expect["bytes"]:
                    raise IndexDamaged(f"{damaged} ({name} is {path.stat().st_size:,} bytes, expected {expect['bytes']:,}) — run `qa index --rebuild`")
                budget -= expect["bytes"]
                if budget >= 0 and corpus_mod.file_digest(path) != expect["sha256"]:
                    raise IndexDamaged(f"{damaged} ({name} fails its checksum) — run `qa index --rebuild`")
        part = "docs.jsonl"
        documents = Documents(gen / part, np.load(gen / "docs.offsets.npy", allow_pickle=False), root)
        part = "spans.npz"
        with np.load(gen / part, allow_pickle=False) as data:
            spans = {k: data[k] for k in data.files}
        part = "passages.npy"
        passage_vectors = np.load(gen / part, mmap_mode="r", allow_pickle=False)
        part = "sentences.npy"
        sentence_vectors = np.load(gen / part, mmap_mode="r", allow_pickle=False)
        part = "the lexical index"
        index = Index(
            root=root, manifest=manifest, documents=documents, spans=spans,
            passage_vectors=passage_vectors, sentence_vectors=sentence_vectors,
            lexical_passages=lexical.Lexical(gen / "lexical-passages"),
            lexical_sentences=lexical.Lexical(gen / "lexical-sentences"),
        )
        import faiss

        faiss.omp_set_num_threads(1)  # one query at a time: threads cost more than they give (16 ms vs 1.2 ms)
        # MMAP_IFC maps every index type (plain MMAP copied Flat and HNSW into the heap); older
        # faiss builds lack it, and MMAP still maps IVF. Never combine the two: IVF reads fail.
        mmap = getattr(faiss, "IO_FLAG_MMAP_IFC", faiss.IO_FLAG_MMAP)
        part = "passages.faiss"
        index._faiss = faiss.read_index(str(gen / part), mmap | faiss.IO_FLAG_READ_ONLY)
    except IndexDamaged:
        raise
    except (OSError, ValueError, KeyError, TypeError, AttributeError, RuntimeError, EOFError):
        raise IndexDamaged(f"{damaged} ({part} cannot be read) — run `qa index --rebuild`") from None
    counts = manifest["counts"]
    consistent = (
        len(documents) == counts["documents"]
        and index.n_passages == counts["passages"] == len(passage_vectors) == index.lexical_passages.size
        and index.n_sentences == counts["sentences"] == len(sentence_vectors) == index.lexical_sentences.size
        and index._faiss.ntotal == counts["passages"]
        and manifest["generation"] == gen.name
    )
    if not consistent:
        raise IndexDamaged(f"{damaged} (its parts disagree in size) — run `qa index --rebuild`")
    return index


# ---------------------------------------------------------------------------------------------
# Building


@dataclass
class Report:
    """What `qa index` did."""

    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    skipped: list[corpus_mod.Skipped] = field(default_factory=list)
    embedded_passages: int = 0
    embedded_sentences: int = 0
    passages: int = 0
    sentences: int = 0
    generation: str = ""
    unchanged: bool = False
    encoder: str = ""  # why the query encoder was exported again, when it was


def stale_files(root: Path, corpus_root: Path, manifest: dict | None = None) -> list[str]:
    """Corpus files added, changed or removed since the index was built ([] when fresh).

    Size and mtime decide first; a file whose stamp moved is hashed before it counts as changed.
    """
    manifest = manifest or read_manifest(root)
    recorded = manifest["files"]
    changed = []
    seen = set()
    for path in corpus_mod.discover(corpus_root):
        name = corpus_mod.relative_name(path, corpus_root)
        seen.add(name)
        entry = recorded.get(name) or next((s for s in manifest.get("skipped", []) if s["path"] == name), None)
        if entry is None:
            changed.append(name)
            continue
        try:
            st = path.stat()
        except OSError:  # a dangling link or a loop: changed only if it was readable before
            if entry.get("stat") is not None:
                changed.append(name)
            continue
        if [st.st_size, st.st_mtime_ns] != entry.get("stat"):
            digest = _digest_or_none(path, st.st_size)
            if digest is None or entry.get("sha256") != digest:
                changed.append(name)
    changed += [name for name in recorded if name not in seen]
    return changed


def embedding_text(doc: Document, start: int, end: int) -> str:
    """What the encoder sees for a passage: its article's title, then the passage."""
    body = doc.text[start:end]
    return f"{doc.title}\n{body}" if doc.title and not body.startswith(doc.title) else body


def build(
    corpus_root: Path,
    root: Path,
    embedder,
    settings: ChunkSettings = ChunkSettings(),
    rebuild: bool = False,
    progress: Callable[[str, int, int], None] | None = None,
    faiss_kind: str | None = None,
) -> Report:
    """Bring the index at root up to date with the corpus, re-embedding only what changed."""
    with locked(root):
        method = sentence_vectors(embedder)
        old = None if rebuild else _reusable(root, embedder.name, settings, vectors_recipe(embedder))
        extraction = formats.settings()
        reuse = _extracted_before(old, corpus_root, extraction) if old is not None else None
        documents, skipped = corpus_mod.load(corpus_root, reuse)
        if not documents:
            why = "; ".join(f"{s.path} {s.reason}" for s in skipped[:3])
            raise CorpusError(f"no article text in {corpus_root}" + (f" ({why})" if why else " (no files qa reads: "
                              + ", ".join(corpus_mod.EXTENSIONS) + ")"))
        sentences, passages = chunk(documents, settings)
        report = Report(skipped=skipped, passages=len(passages), sentences=len(sentences))

        # Vectors of unchanged documents come from the old generation, keyed by content hash.
        old_docs = {}
        if old is not None:
            for i, d in enumerate(old.documents):
                old_docs.setdefault(d.sha256, i)
            old_paths = {d.path: d.sha256 for d in old.documents}
            new_paths = {d.path for d in documents}
            for d in documents:
                if d.path not in old_paths:
                    report.added.append(d.path)
                elif old_paths[d.path] != d.sha256:
                    report.updated.append(d.path)
                else:
                    report.kept.append(d.path)
            report.removed = sorted(p for p in old_paths if p not in new_paths)
        else:
            report.added = [d.path for d in documents]

        reused: list[tuple[int, int]] = []  # (document, the same document in the old generation)
        todo_p, todo_s = [], []
        by_doc_p = _ranges([p.doc for p in passages], len(documents))
        by_doc_s = _ranges([s.doc for s in sentences], len(documents))
        if old is not None:
            old_p = _ranges(old.spans["pass_doc"].tolist(), len(old.documents))
            old_s = _ranges(old.spans["sent_doc"].tolist(), len(old.documents))
        for i, d in enumerate(documents):
            j = old_docs.get(d.sha256) if old is not None else None
            (p0, p1), (s0, s1) = by_doc_p[i], by_doc_s[i]
            # Same source and same text: a web page, PDF or Word file extracted anew can differ.
            if (j is not None and old.documents[j].text == d.text
                    and old_p[j][1] - old_p[j][0] == p1 - p0 and old_s[j][1] - old_s[j][0] == s1 - s0):
                reused.append((i, j))
            else:
                todo_p += range(p0, p1)
                todo_s += range(s0, s1)
        if old is not None and not (todo_p or todo_s or report.removed or report.added or report.updated):
            report.unchanged = True
            if not _stats_differ(old.manifest, corpus_root, documents) and old.manifest.get("extraction") == extraction:
                report.generation = old.manifest["generation"]
                _remove_old_generations(root, report.generation)  # what a crash after the swap left
                return report
            # Same content, new timestamps (a touch, a fresh checkout): record the new stamps, embed nothing.

        # The vectors go straight into the new generation's files, memory-mapped: a million
        # passages' vectors never sit in memory at once, nor twice.
        previous = old.manifest["generation"] if old is not None else _latest_generation(root)
        tmp = _new_generation_folder(root, previous)
        p_vec = np.lib.format.open_memmap(tmp / "passages.npy", mode="w+", dtype=np.float32, shape=(len(passages), embedder.dim))
        s_vec = np.lib.format.open_memmap(tmp / "sentences.npy", mode="w+", dtype=np.float32, shape=(len(sentences), embedder.dim))
        for i, j in reused:
            (p0, p1), (s0, s1) = by_doc_p[i], by_doc_s[i]
            p_vec[p0:p1] = old.passage_vectors[old_p[j][0] : old_p[j][1]]
            s_vec[s0:s1] = old.sentence_vectors[old_s[j][0] : old_s[j][1]]
        total = len(todo_p) + (len(todo_s) if method == "separate" else 0)
        done = 0

        def tick(n: int) -> None:
            nonlocal done
            done += n
            _checkpoint("during-embedding")
            if progress:
                progress("embedding", done, total)

        if progress:
            progress("embedding", 0, total)
        _checkpoint("before-embedding")
        # Every sentence lies in one passage, and a changed document's passages and sentences are
        # all embedded again: the sentences of a slice of todo_p are a slice of todo_s, in order.
        first = 0
        for lo in range(0, len(todo_p), EMBED_SLICE):
            rows = todo_p[lo : lo + EMBED_SLICE]
            sent_rows = todo_s[first : first + sum(passages[i].last_sentence - passages[i].first_sentence for i in rows)]
            first += len(sent_rows)
            texts = [embedding_text(documents[passages[i].doc], passages[i].start, passages[i].end) for i in rows]
            if method == "pooled":
                parts = [_sentence_parts(passages[i], sentences, len(texts[n]) - (passages[i].end - passages[i].start))
                         for n, i in enumerate(rows)]
                p_vec[rows], s_vec[sent_rows] = embedder.embed_with_parts(texts, parts, progress=tick)
            else:
                p_vec[rows] = embedder.embed_batch(texts, progress=tick)
                s_vec[sent_rows] = embedder.embed_batch(
                    [documents[sentences[k].doc].text[sentences[k].start : sentences[k].end] for k in sent_rows], progress=tick)
        _checkpoint("after-embedding")
        p_vec.flush()
        s_vec.flush()
        report.embedded_passages, report.embedded_sentences = len(todo_p), len(todo_s)
        report.generation = _write_generation(
            root, tmp, documents, skipped, corpus_root, embedder, settings, sentences, passages, p_vec,
            faiss_kind, extraction,
        )
        return report


def sentence_vectors(embedder) -> str:
    """How an embedder makes sentence vectors: "pooled" from the tokens of their passage's own pass
    (one forward pass per token of text: qa.onnx_encoder), or "separate", each sentence encoded
    again by itself (the other embedders)."""
    return "pooled" if hasattr(embedder, "embed_with_parts") else "separate"


def vectors_recipe(embedder) -> str:
    """What the manifest records of how the vectors were made: an index is only updated by the same."""
    return f"{getattr(embedder, 'precision', 'fp32')}, sentences {sentence_vectors(embedder)}"


def _sentence_parts(passage: Passage, sentences: list[Sentence], shift: int) -> list[tuple[int, int]]:
    """The passage's sentences as character spans of its embedding text (shift: the title line)."""
    return [(sentences[k].start - passage.start + shift, sentences[k].end - passage.start + shift)
            for k in range(passage.first_sentence, passage.last_sentence)]


def _extracted_before(old: Index, corpus_root: Path, extraction: dict) -> corpus_mod.Reuse | None:
    """What the live index made of each web page, PDF and Word file that has not changed since:
    same size and mtime, or else same sha256, and the same extraction settings. None reuses nothing."""
    manifest = old.manifest
    if manifest.get("extraction") != extraction:
        return None
    by_path = {d.path: d for d in old.documents}
    skipped = {s["path"]: s for s in manifest.get("skipped", [])}

    def reuse(name: str, path: Path):
        entry = manifest["files"].get(name) or skipped.get(name)
        if entry is None:
            return None
        try:
            st = path.stat()
        except OSError:
            return None
        if [st.st_size, st.st_mtime_ns] != entry.get("stat"):
            digest = _digest_or_none(path, st.st_size)
            if digest is None or digest != entry.get("sha256"):
                return None
        if name in by_path:
            return by_path[name]
        return corpus_mod.Skipped(name, entry["reason"]) if name in skipped else None

    return reuse


def _stats_differ(manifest: dict, corpus_root: Path, documents: list[Document]) -> bool:
    stamps = _stamps(corpus_root)
    return any(manifest["files"].get(d.path, {}).get("stat") != stamps.get(d.path) for d in documents)


def _digest_or_none(path: Path, size: int) -> str | None:
    if size > corpus_mod.MAX_FILE_BYTES:
        return None
    try:
        return corpus_mod.file_digest(path)
    except OSError:
        return None


def _stamps(corpus_root: Path) -> dict[str, list[int]]:
    """[size, mtime] of every corpus file that can be stat-ed: what decides staleness first."""
    out = {}
    for path in corpus_mod.discover(corpus_root):
        try:
            st = path.stat()
        except OSError:
            continue
        out[corpus_mod.relative_name(path, corpus_root)] = [st.st_size, st.st_mtime_ns]
    return out


def _ranges(owner: list[int], n: int) -> list[tuple[int, int]]:
    """For rows grouped by owner in order, each owner's (start, end) row range."""
    out = [(0, 0)] * n
    start = 0
    for i in range(1, len(owner) + 1):
        if i == len(owner) or owner[i] != owner[start]:
            out[owner[start]] = (start, i)
            start = i
    return out


def _reusable(root: Path, model: str, settings: ChunkSettings, recipe: str) -> Index | None:
    """The live index if its vectors can be reused: same model, chunking and sentence vectors, undamaged."""
    try:
        index = load(root)
    except (IndexMissing, IndexDamaged, IndexForeign):
        return None
    if (index.model != model or index.manifest["chunking"] != settings.to_json()
            or index.manifest.get("vectors") != recipe):
        return None
    return index


def _latest_generation(root: Path) -> str:
    gens = sorted(p.name for p in root.glob("gen-*") if p.is_dir()) if root.exists() else []
    return gens[-1] if gens else "gen-000000"


def choose_faiss(rows: int) -> str:
    """Exact search up to ANN_THRESHOLD vectors (passages + sentences), IVF above.

    benchmarks/scale.py, one thread: an exact scan of 50k vectors takes 4.2 ms a question,
    100k 8.6 ms and 1M 84 ms. IVFFlat (nlist 4·sqrt(n), nprobe 32) keeps 98.4% of the exact
    top 10 at both 100k and 1M in 2-3 ms and memory-maps; HNSW (M 32, efSearch 128) fell to
    85% at 1M and builds three times slower.
    """
    return "flat" if rows <= ANN_THRESHOLD else "ivf"


ANN_THRESHOLD = 50_000
EMBED_SLICE = 4096  # passages embedded per call: their vectors are written out before the next
NPROBE = 32
TRAIN_SAMPLE = 160_000  # k-means on a sample: 33-71 s for 4,000 lists at 1M vectors


def _faiss_index(vectors: np.ndarray, kind: str):
    import faiss

    n, dim = vectors.shape
    # k-means differs with the thread count, and load() sets one thread for questions: an update
    # after a load must train exactly as a fresh build does, or the two answer differently.
    faiss.omp_set_num_threads(len(os.sched_getaffinity(0)))
    if kind == "flat":
        index = faiss.IndexFlatIP(dim)
    elif kind == "ivf":
        nlist = max(1, int(4 * n**0.5))
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, nlist, faiss.METRIC_INNER_PRODUCT)
        # At least 40 training points a list, or FAISS's k-means warns and clusters poorly.
        sample = np.random.default_rng(0).choice(n, size=min(n, max(TRAIN_SAMPLE, 40 * nlist)), replace=False)
        index.train(np.ascontiguousarray(vectors[np.sort(sample)], dtype=np.float32))
        index.nprobe = NPROBE  # stored in the file
    else:
        raise ValueError(f"unknown FAISS index kind {kind!r}")
    index.add(np.ascontiguousarray(vectors, dtype=np.float32))
    return index


def _new_generation_folder(root: Path, previous: str) -> Path:
    """The hidden folder the next generation is written in; it is renamed into place when whole."""
    tmp = root / f".gen-{int(previous.split('-')[1]) + 1:06d}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    return tmp


def _write_generation(root, tmp, documents, skipped, corpus_root, embedder, settings, sentences, passages, p_vec,
                      faiss_kind, extraction):
    import faiss

    name = tmp.name[1:].removesuffix(".tmp")
    offsets = [0]  # where each document's line starts in docs.jsonl, then its end
    with open(tmp / "docs.jsonl", "wb") as handle:
        for d in documents:
            record = {
                "path": d.path, "sha256": d.sha256, "title": d.title, "date": d.date, "place": d.place,
                "blocks": d.blocks, "headings": d.headings, "text": d.text,
            }
            if d.author:
                record["author"] = d.author
            if d.pages:
                record["pages"] = d.pages
            line = (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")
            handle.write(line)
            offsets.append(offsets[-1] + len(line))
    np.save(tmp / "docs.offsets.npy", np.array(offsets, dtype=np.int64))
    spans = {
        "sent_doc": np.array([s.doc for s in sentences], dtype=np.int32),
        "sent_start": np.array([s.start for s in sentences], dtype=np.int64),
        "sent_end": np.array([s.end for s in sentences], dtype=np.int64),
        "sent_heading": np.array([s.heading for s in sentences], dtype=np.bool_),
        "pass_doc": np.array([p.doc for p in passages], dtype=np.int32),
        "pass_start": np.array([p.start for p in passages], dtype=np.int64),
        "pass_end": np.array([p.end for p in passages], dtype=np.int64),
        "pass_first": np.array([p.first_sentence for p in passages], dtype=np.int32),
        "pass_last": np.array([p.last_sentence for p in passages], dtype=np.int32),
    }
    np.savez(tmp / "spans.npz", **spans)
    kind = faiss_kind or choose_faiss(len(passages) + len(sentences))
    faiss.write_index(_faiss_index(p_vec, kind), str(tmp / "passages.faiss"))
    lexical.build(tmp / "lexical-passages", (tokenize(embedding_text(documents[p.doc], p.start, p.end)) for p in passages))
    lexical.build(tmp / "lexical-sentences", (tokenize(documents[s.doc].text[s.start : s.end]) for s in sentences))

    stamps = _stamps(corpus_root)
    # A document's sha256 is of its source file: for .txt and .md, of its strictly decoded UTF-8
    # text, whose bytes are the file's (no second read); extracted formats hashed the file itself.
    files = {d.path: {"sha256": d.sha256, "stat": stamps.get(d.path)} for d in documents}
    data = {}
    for path in sorted(tmp.rglob("*")):
        if path.is_dir():  # tantivy's folders
            _fsync_dir(path)
            continue
        with open(path, "rb") as handle:
            os.fsync(handle.fileno())
        data[path.relative_to(tmp).as_posix()] = {"bytes": path.stat().st_size, "sha256": corpus_mod.file_digest(path)}
    manifest = {
        "format": FORMAT,
        "generation": name,
        "model": embedder.name,
        "dim": embedder.dim,
        "vectors": vectors_recipe(embedder),
        "chunking": settings.to_json(),
        # Library versions and limits behind extracted text: when they change, `qa index` extracts again.
        "extraction": extraction,
        "faiss": kind,
        "corpus": str(corpus_root.resolve()),
        # Where the corpus sits from the index folder: a project folder holding both still fits when moved.
        "corpus_relative": os.path.relpath(corpus_root.resolve(), root.resolve()),
        "built_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "counts": {"documents": len(documents), "passages": len(passages), "sentences": len(sentences)},
        "files": files,
        # What `qa ask` compares on a large corpus instead of every file's stamp (qa.api.ensure_index).
        "folders": corpus_mod.folder_stamps(corpus_root),
        "skipped": [
            {"path": s.path, "reason": s.reason, "stat": stamps.get(s.path),
             # Skipped files were never hashed: they are, once, so a touch alone doesn't count as a change.
             "sha256": _digest_or_none(corpus_root if corpus_root.is_file() else corpus_root / s.path,
                                       (stamps.get(s.path) or [0])[0])}
            for s in skipped
        ],
        "data": data,
    }
    _write_file(tmp / "manifest.json", json.dumps(manifest, indent=1, ensure_ascii=False).encode("utf-8"))
    final = root / name
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    _fsync_dir(root)
    pointer = root / f".{CURRENT}.tmp"
    _write_file(pointer, name.encode("utf-8"))
    _checkpoint("before-swap")
    os.replace(pointer, root / CURRENT)  # the moment the new generation goes live
    _fsync_dir(root)
    _checkpoint("after-swap")
    _remove_old_generations(root, name)
    return name


def _remove_old_generations(root: Path, live: str) -> None:
    """Delete every generation but the live one, and half-written ones a crash left behind."""
    for stale in root.glob("gen-*"):
        if stale.name != live:
            shutil.rmtree(stale, ignore_errors=True)
    for leftover in root.glob(".gen-*.tmp"):
        shutil.rmtree(leftover, ignore_errors=True)
