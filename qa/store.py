"""The folder store: an index on disk as generations of immutable segments, swapped in atomically.

Layout of an index folder (``vectors/`` by default)::

    CURRENT            names the live generation, e.g. "gen-000003"; replaced atomically
    gen-000003/        one complete, self-checking index
        manifest.json  model, chunking settings, segments, corpus files and hashes, data checksums
        alive.npy      one flag per document number: false once its file changed or went
        spans/         sentence and passage offsets, one .npy each (memory-mapped), all segments
        lexical-passages/, lexical-sentences/   BM25 over passages and sentences (tantivy, qa.lexical)
        dense/         a large index's approximate search: shard-0000.faiss ... (IVF), by document path
        seg-000001/    the documents and vectors of one `qa index` run, never rewritten
            docs.jsonl      each document's text, title, date and content spans, a JSON line each
            docs.offsets.npy  where each line starts: documents are read one at a time, when used
            passages.npy    passage vectors, float32, memory-mapped on load
            sentences.npy   sentence vectors
            passage-words.*.npy, sentence-words.*.npy  each row's words (hashed) and their counts, for BM25
        seg-000002/    ...
    lock               held (flock) by a running `qa index`; the kernel drops it if that process dies

Rows (documents, passages, sentences) are numbered across segments in the order they were
added, and never renumbered until a compaction writes everything again as one segment. An
update writes a new segment for the new and changed files, marks the documents that went as
dead, and hard-links everything else from the generation before: its cost is what it adds
(plus the span arrays, a few bytes a row). Dead rows are deleted from the lexical indexes.

A small index is searched exactly (every passage's cosine, in memory). A large one is searched
by FAISS IVF in shards: each live document belongs to the shard its path hashes to, and a shard
holds its documents' passages in path order. An update writes again only the shards of the
documents it adds or retires, and writes each one exactly as a fresh build of the same corpus
would (same rows, same order, same k-means): so an updated index answers as a rebuild does,
where one IVF trained before the update and another trained after would probe different lists.

A new generation is written beside the live one, synced, and only then named in CURRENT, so a
`qa index` killed at any moment leaves the previous index whole. Ingestion (what to read,
chunking, embedding) is qa.ingest's; this module only keeps what it is handed. The only module
that imports faiss.
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import fcntl
import json
import math
import os
import shutil
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import corpus as corpus_mod
from . import lexical
from .chunker import ChunkSettings
from .errors import IndexBusy, IndexDamaged, IndexForeign, IndexMissing, IndexProblem
from .types import Document, Passage, Sentence

FORMAT = 6  # 2: int8 vectors, sentences pooled; 3: tantivy; 4: segments, rows kept across updates; 5: dense shards;
# 6: word counts per row
CURRENT = "CURRENT"
VERIFY_BYTES = 64 << 20  # on load, the smallest files are checked by sha256 up to this much in all; the rest by size
SPANS = {"sent_doc": np.int32, "sent_start": np.int64, "sent_end": np.int64, "sent_heading": np.bool_,
         "pass_doc": np.int32, "pass_start": np.int64, "pass_end": np.int64, "pass_first": np.int32, "pass_last": np.int32,
         "pass_words": np.int32, "sent_words": np.int32}  # how many words BM25 indexed for the row
UPGRADABLE = (5,)  # earlier formats whose documents and vectors `qa index` keeps while writing the current one
OLD_SPANS = {5: set(SPANS) - {"sent_words"}}
MAX_SEGMENTS = 12  # more, and the next update compacts (each segment is one more file to read a document from)
MAX_DEAD = 0.25  # dead passages above this share of rows, and the next update compacts


def checkpoint(stage: str) -> None:
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
    """The generation's documents, by number, read one at a time from their segment's docs.jsonl.

    Opening an index reads nothing per document: docs.offsets.npy says where each line starts,
    the file is memory-mapped, and a document is parsed on first use (then kept, while fewer than
    CACHED are). A question touches the few documents its passages are in. Dead documents (their
    file changed or went) are still here under their number; nothing points at them.
    """

    CACHED = 4096

    def __init__(self, parts: list[tuple[Path, np.ndarray]], root: Path):
        import mmap

        self._root, self._maps, self._offsets = root, [], []
        self._names = [f"{path.parent.name}/{path.name}" for path, _ in parts]
        for path, offsets in parts:
            with open(path, "rb") as handle:
                size = os.fstat(handle.fileno()).st_size
                if len(offsets) < 1 or int(offsets[-1]) != size or np.any(np.diff(offsets) <= 0):
                    raise ValueError("docs.offsets.npy does not match docs.jsonl")
                self._maps.append(mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) if size else b"")
            self._offsets.append(offsets)
        self._bases = np.cumsum([0] + [len(o) - 1 for o in self._offsets])
        self._cache: dict[int, Document] = {}

    def __len__(self) -> int:
        return int(self._bases[-1])

    def __getitem__(self, i: int) -> Document:
        doc = self._cache.get(i)
        if doc is None:
            if not 0 <= i < len(self):
                raise IndexError(i)
            part = int(np.searchsorted(self._bases, i, side="right")) - 1
            offsets, line = self._offsets[part], i - int(self._bases[part])
            try:
                doc = _document(json.loads(self._maps[part][int(offsets[line]) : int(offsets[line + 1])]))
            except (ValueError, KeyError, TypeError):
                raise IndexDamaged(f"the index in {self._root}/ is damaged ({self._names[part]} line {line + 1} "
                                   "cannot be read) — run `qa index --rebuild`") from None
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


class Stacked:
    """The rows of several segments' arrays as one array: rows by number, or the whole (copied)."""

    def __init__(self, parts: list[np.ndarray], dim: int):
        self._parts = parts
        self._bases = np.cumsum([0] + [len(p) for p in parts])
        self.shape = (int(self._bases[-1]), dim)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, rows):
        if len(self._parts) == 1:
            return self._parts[0][rows]
        rows = np.arange(*rows.indices(len(self))) if isinstance(rows, slice) else np.asarray(rows, dtype=np.int64)
        part = np.searchsorted(self._bases, rows, side="right") - 1
        out = np.empty((len(rows), self.shape[1]), dtype=np.float32)
        for k in np.unique(part):
            mine = part == k
            out[mine] = self._parts[k][rows[mine] - self._bases[k]]
        return out

    def __array__(self, dtype=None, copy=None):
        whole = np.concatenate(self._parts) if len(self._parts) > 1 else np.asarray(self._parts[0])
        return whole.astype(dtype) if dtype is not None else whole


@dataclass
class Index:
    """A loaded, verified index generation."""

    root: Path
    manifest: dict
    documents: Documents | list[Document]
    spans: dict[str, np.ndarray]
    passage_vectors: Stacked
    sentence_vectors: Stacked
    lexical_passages: lexical.Lexical
    lexical_sentences: lexical.Lexical
    passage_words: lexical.WordCounts | None  # None: an earlier format, loaded to be upgraded
    sentence_words: lexical.WordCounts | None
    alive: np.ndarray  # per document number
    shards: list = field(default_factory=list, repr=False)  # FAISS indexes of a large index, by passage row
    dead_passages: np.ndarray | None = None  # a flag per passage row, or None when none is dead

    @property
    def model(self) -> str:
        return self.manifest["model"]

    @property
    def n_passages(self) -> int:
        return len(self.spans["pass_doc"])

    @property
    def n_sentences(self) -> int:
        return len(self.spans["sent_doc"])

    @property
    def live_passages(self) -> int:
        return self.manifest["counts"]["passages"]

    @property
    def live_sentences(self) -> int:
        return self.manifest["counts"]["sentences"]

    def live_documents(self):
        """(number, document) of every live document."""
        return ((i, self.documents[i]) for i in np.flatnonzero(self.alive).tolist())

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
        """(scores, rows) of the k nearest live passages for each query vector, best first; rows
        are -1 where fewer are found."""
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        if not self.shards:  # a small index: every live passage's cosine
            cosines = queries @ np.asarray(self.passage_vectors, dtype=np.float32).T
            if self.dead_passages is not None:
                cosines[:, self.dead_passages] = -np.inf
            k = min(k, len(self.passage_vectors))
            best = np.argsort(-cosines, axis=1, kind="stable")[:, :k]
            scores = np.take_along_axis(cosines, best, 1)
            return scores, np.where(np.isfinite(scores), best, -1)
        if len(self.shards) == 1:
            return self.shards[0].search(queries, min(k, self.shards[0].ntotal))
        scores, rows = [], []
        for shard in self.shards:  # each holds live rows only: a shard is written again when one of its documents goes
            got, ids = shard.search(queries, min(k, shard.ntotal))
            scores.append(np.where(ids >= 0, got, -np.inf))
            rows.append(ids)
        scores, rows = np.concatenate(scores, axis=1), np.concatenate(rows, axis=1)
        best = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        return np.take_along_axis(scores, best, 1), np.take_along_axis(rows, best, 1)


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


MANIFEST_KEYS = {"format", "generation", "model", "chunking", "faiss", "dense", "corpus", "counts", "passage_words", "sentence_words", "rows", "segments", "files", "data"}


def read_manifest(root: Path, upgradable: bool = False) -> dict:
    """The live generation's manifest; IndexMissing when there is none. upgradable: an earlier
    format `qa index` can bring up to date is read too (for its documents and vectors only)."""
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
    if not isinstance(manifest, dict):
        raise IndexDamaged(f"{damaged} (manifest.json lacks its fields) — run `qa index --rebuild`")
    found = manifest.get("format")
    if found != FORMAT and not (upgradable and found in UPGRADABLE):  # before the fields: another version's has others
        if found in UPGRADABLE:
            raise IndexForeign(f"{root}/ was written by an earlier version of qa (format {found}); run `qa index` "
                               "to bring it up to date (its vectors are kept: nothing is embedded again)")
        raise IndexForeign(f"{root}/ was written by another version of qa (format {found}); run `qa index --rebuild`")
    if not (MANIFEST_KEYS if found == FORMAT else MANIFEST_KEYS - {"sentence_words"}) <= manifest.keys():
        raise IndexDamaged(f"{damaged} (manifest.json lacks its fields) — run `qa index --rebuild`")
    return manifest


def check_compatible(manifest: dict, root: Path, model: str, settings: ChunkSettings) -> None:
    if manifest["model"] != model:
        raise IndexForeign(
            f"{root}/ was built with model {manifest['model']!r}, not {model!r}; "
            f"run `qa index --rebuild` or pass `--model {manifest['model']}`"
        )
    if manifest["chunking"] != settings.to_json():
        raise IndexForeign(f"{root}/ was built with other chunking settings ({manifest['chunking']}); run `qa index --rebuild`")


def load(root: Path, verify: bool = True, manifest: dict | None = None, upgradable: bool = False) -> Index:
    """Load and cross-check the live generation; any inconsistency is IndexDamaged.

    manifest: the live one, already read (it is large for a large corpus); read again if another
    generation went live since. upgradable: an index of an earlier format in UPGRADABLE loads
    too, without what that format lacks (word counts: None), for `qa index` to reuse its
    documents and vectors; it cannot answer."""
    gen = current_generation(root)
    if manifest is None or gen is None or manifest.get("generation") != gen.name:
        manifest = read_manifest(root, upgradable)
        gen = current_generation(root)
    current = manifest["format"] == FORMAT
    span_keys = [k for k in SPANS if current or k in OLD_SPANS[manifest["format"]]]
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
        import faiss

        faiss.omp_set_num_threads(1)  # one query at a time: threads cost more than they give (16 ms vs 1.2 ms)
        # MMAP_IFC maps every index type (plain MMAP copied Flat and HNSW into the heap); older
        # faiss builds lack it, and MMAP still maps IVF. Never combine the two: IVF reads fail.
        mmap = getattr(faiss, "IO_FLAG_MMAP_IFC", faiss.IO_FLAG_MMAP)
        docs, p_vecs, s_vecs = [], [], []
        for seg in manifest["segments"]:
            folder = gen / seg["name"]
            part = f"{seg['name']}/docs.offsets.npy"
            docs.append((folder / "docs.jsonl", np.load(folder / "docs.offsets.npy", allow_pickle=False)))
            part = f"{seg['name']}/passages.npy"
            p_vecs.append(np.load(folder / "passages.npy", mmap_mode="r", allow_pickle=False))
            part = f"{seg['name']}/sentences.npy"
            s_vecs.append(np.load(folder / "sentences.npy", mmap_mode="r", allow_pickle=False))
        shards = []
        for name in manifest["dense"]["files"]:
            part = f"dense/{name}"
            shards.append(faiss.read_index(str(gen / "dense" / name), mmap | faiss.IO_FLAG_READ_ONLY))
        part = "docs.jsonl"
        documents = Documents(docs, root)
        part = "spans"
        spans = {k: np.load(gen / "spans" / f"{k}.npy", mmap_mode="r", allow_pickle=False) for k in span_keys}
        part = "alive.npy"
        alive = np.load(gen / "alive.npy", allow_pickle=False)
        words = {"passage": None, "sentence": None}
        for kind in words if current else ():
            part = f"{kind}-words"
            words[kind] = lexical.WordCounts([gen / seg["name"] / f"{kind}-words" for seg in manifest["segments"]])
        part = "the lexical index"
        dim = manifest.get("dim") or (p_vecs[0].shape[1] if p_vecs else 0)
        index = Index(
            root=root, manifest=manifest, documents=documents, spans=spans,
            passage_vectors=Stacked(p_vecs, dim), sentence_vectors=Stacked(s_vecs, dim),
            lexical_passages=lexical.Lexical(gen / "lexical-passages"),
            lexical_sentences=lexical.Lexical(gen / "lexical-sentences"), alive=alive, shards=shards,
            passage_words=words["passage"], sentence_words=words["sentence"],
        )
        part = "alive.npy"
        if not alive.all():
            index.dead_passages = ~alive[spans["pass_doc"]]
    except IndexDamaged:
        raise
    except (OSError, ValueError, KeyError, TypeError, AttributeError, RuntimeError, EOFError, IndexError):
        raise IndexDamaged(f"{damaged} ({part} cannot be read) — run `qa index --rebuild`") from None
    counts, rows = manifest["counts"], manifest["rows"]
    consistent = (
        len(documents) == len(alive) == rows["documents"] and int(alive.sum()) == counts["documents"]
        and index.n_passages == rows["passages"] == len(index.passage_vectors)
        and sum(shard.ntotal for shard in shards) == (counts["passages"] if shards else 0)
        and index.n_sentences == rows["sentences"] == len(index.sentence_vectors)
        and index.lexical_passages.size == counts["passages"] and index.lexical_sentences.size == counts["sentences"]
        and (not current or (len(index.passage_words) == rows["passages"] and len(index.sentence_words) == rows["sentences"]))
        and all(len(a) == rows["sentences" if k.startswith("sent") else "passages"] for k, a in spans.items())
        and manifest["generation"] == gen.name
    )
    if not consistent:
        raise IndexDamaged(f"{damaged} (its parts disagree in size) — run `qa index --rebuild`")
    return index


# ---------------------------------------------------------------------------------------------
# Writing


def needs_compaction(index: Index, gone: set[int]) -> bool:
    """Whether the next update should write everything again: too many segments or too many dead rows."""
    if len(index.manifest["segments"]) + 1 > MAX_SEGMENTS:
        return True
    pass_doc = index.spans["pass_doc"]
    dead = index.dead_passages.copy() if index.dead_passages is not None else np.zeros(len(pass_doc), bool)
    if gone:
        dead |= np.isin(pass_doc, np.fromiter(gone, dtype=np.int64))
    return bool(dead.sum() > MAX_DEAD * max(len(pass_doc), 1))


def choose_faiss(rows: int) -> str:
    """Exact search up to ANN_THRESHOLD vectors (passages + sentences), IVF above.

    benchmarks/scale.py, one thread: an exact scan of 50k vectors takes 4.2 ms a question,
    100k 8.6 ms and 1M 84 ms. IVFFlat (nlist 4·sqrt(n)) memory-maps and builds three times
    faster than HNSW (M 32, efSearch 128), which fell to 85% of the exact top 10 at 1M.
    """
    return "flat" if rows <= ANN_THRESHOLD else "ivf"


ANN_THRESHOLD = 50_000
# The share of an IVF's lists each question probes. On scale.py's vectors (mixes of real MiniLM
# vectors) nprobe 32 of 1,265 lists kept 0.984 of the exact top 10; on benchmarks/endtoend.py's
# topical articles (minilm-static-384 vectors) at 100k, one IVF, it kept 0.924, a tenth of the
# lists (128) 0.984. A share, not a count: lists grow as sqrt(n), so a fixed count probes less
# of the corpus the larger it grows. At 1M in 128 shards of 197 lists, a question's dense search
# is memory-bound (every probed vector is read): 32 lists a shard kept 0.981 of the top 10 in
# 37 ms, 21 (a tenth) 0.968 in 27 ms, 16 0.956 in 22 ms.
PROBE_SHARE = 0.1
MIN_PROBES = 8  # a small IVF probes all its lists
TRAIN_SAMPLE = 160_000  # k-means on a sample above this: 33-71 s for 4,000 lists at 1M vectors
# Passages a dense shard holds, about: an update trains again the shards it touches (k-means on
# 8k vectors, well under a second), and every question searches every shard (128 at 1M).
SHARD_PASSAGES = 8192


def nprobe(nlist: int) -> int:
    return min(nlist, max(MIN_PROBES, math.ceil(PROBE_SHARE * nlist)))


def shard_count(kind: str, passages: int) -> int:
    """How many dense shards an index of this many live passages has: none when searched exactly,
    else a power of two near passages / SHARD_PASSAGES, so that it changes only as the corpus
    doubles or halves (and a change writes every shard again)."""
    if kind == "flat":
        return 0
    return 2 ** max(0, round(math.log2(max(passages, 1) / SHARD_PASSAGES)))


def shard_of(path: str, shards: int) -> int:
    return zlib.crc32(path.encode("utf-8")) % shards


def _faiss_index(vectors: np.ndarray, ids: np.ndarray):
    """An IVF over vectors, found by ids; a function of the vectors and their order alone."""
    import faiss

    n, dim = vectors.shape
    # k-means differs with the thread count, and load() sets one thread for questions: an update
    # after a load must train exactly as a fresh build does, or the two answer differently.
    faiss.omp_set_num_threads(len(os.sched_getaffinity(0)))
    # 4·sqrt(n) lists, but at least 40 training points a list, or FAISS's k-means warns and clusters poorly.
    nlist = max(1, min(int(4 * n**0.5), n // 40))
    index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, nlist, faiss.METRIC_INNER_PRODUCT)
    index.cp.min_points_per_centroid = 1  # a shard of under 40 passages has one list: no warning
    sample = np.sort(np.random.default_rng(0).choice(n, size=TRAIN_SAMPLE, replace=False)) if n > TRAIN_SAMPLE else slice(None)
    index.train(np.ascontiguousarray(vectors[sample], dtype=np.float32))
    index.nprobe = nprobe(nlist)  # stored in the file
    index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), np.asarray(ids, dtype=np.int64))
    return index


def _latest_generation(root: Path) -> str:
    gens = sorted(p.name for p in root.glob("gen-*") if p.is_dir()) if root.exists() else []
    return gens[-1] if gens else "gen-000000"


def _link_tree(source: Path, target: Path) -> None:
    """target holds hard links to source's files (copies where links are refused)."""
    target.mkdir(parents=True)
    for entry in os.scandir(source):
        _link_file(Path(entry.path), target / entry.name)


def _link_file(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


class FolderWriter:
    """Writes the next generation of the index at root; nothing is live until commit().

    keep: an update of previous (its segments and lexical indexes are hard-linked, its rows kept);
    otherwise everything is written anew as one segment. Call under locked(root).
    """

    def __init__(self, root: Path, previous: Index | None, keep: bool):
        self.root, self.keep = root, keep and previous is not None
        self.previous = previous
        last = previous.manifest["generation"] if previous is not None else _latest_generation(root)
        self.name = f"gen-{int(last.split('-')[1]) + 1:06d}"
        self.tmp = root / f".{self.name}.tmp"
        shutil.rmtree(self.tmp, ignore_errors=True)
        self.tmp.mkdir(parents=True)
        numbers = [int(s["name"].split("-")[1]) for s in previous.manifest["segments"]] if previous is not None else []
        self.segment = f"seg-{max(numbers, default=0) + 1:06d}"
        self.segments = list(previous.manifest["segments"]) if self.keep else []
        self.live_passages = self.live_sentences = 0
        if self.keep:
            gen = root / previous.manifest["generation"]
            for seg in self.segments:
                _link_tree(gen / seg["name"], self.tmp / seg["name"])
            for name in ("lexical-passages", "lexical-sentences"):
                lexical.copy(gen / name, self.tmp / name)
        self._vectors = None

    def vectors(self, n_passages: int, n_sentences: int, dim: int) -> tuple[np.ndarray, np.ndarray]:
        """The new segment's vector arrays, memory-mapped files to write into: a million
        passages' vectors never sit in memory at once, nor twice."""
        folder = self.tmp / self.segment
        folder.mkdir()
        self._vectors = (
            np.lib.format.open_memmap(folder / "passages.npy", mode="w+", dtype=np.float32, shape=(n_passages, dim)),
            np.lib.format.open_memmap(folder / "sentences.npy", mode="w+", dtype=np.float32, shape=(n_sentences, dim)),
        )
        return self._vectors

    def commit(self, documents: list[Document], sentences: list[Sentence], passages: list[Passage],
               passage_words, sentence_words, gone: list[int], files: dict[str, dict], new_files: list[dict],
               skipped: list[dict], meta: dict, faiss_kind: str | None = None) -> str:
        """Write the new segment (documents with their sentences and passages, numbered within
        it, and the words of each passage and sentence), retire the documents gone, and make the
        generation live. Returns its name.

        files: the file entries of the documents kept, by path ({"sha256", "stat", "doc"});
        new_files: the new documents' entries, without "doc"; skipped: every skipped file's."""
        tmp, prev = self.tmp, self.previous if self.keep else None
        p_vec, s_vec = self._vectors
        doc0 = len(prev.documents) if prev else 0
        pass0, sent0 = (prev.n_passages, prev.n_sentences) if prev else (0, 0)
        if documents:
            folder = tmp / self.segment
            _write_documents(folder, documents)
            p_vec.flush()
            s_vec.flush()
            self.segments.append({"name": self.segment, "documents": len(documents), "passages": len(passages),
                                  "sentences": len(sentences)})
        else:
            shutil.rmtree(tmp / self.segment, ignore_errors=True)

        pass_docs, sent_docs = [p.doc + doc0 for p in passages], [s.doc + doc0 for s in sentences]
        # Each row's words stream to tantivy and, counted, to the segment's word counts.
        counted = {"passage": lexical.WordCountsWriter(), "sentence": lexical.WordCountsWriter()}
        lengths: dict[str, list[int]] = {"passage": [], "sentence": []}

        def counting(kind: str, rows):
            return (lengths[kind].append(len(words)) or counted[kind].add(words) for words in rows)

        passage_words, sentence_words = counting("passage", passage_words), counting("sentence", sentence_words)
        if prev is not None:
            lexical.update(tmp / "lexical-passages", passage_words, pass_docs, pass0, gone)
            lexical.update(tmp / "lexical-sentences", sentence_words, sent_docs, sent0, gone)
        else:
            lexical.build(tmp / "lexical-passages", passage_words, pass_docs)
            lexical.build(tmp / "lexical-sentences", sentence_words, sent_docs)
        if documents:
            for kind, writer in counted.items():
                writer.save(tmp / self.segment / f"{kind}-words")

        # Rows of every segment, numbered across them: the old ones, then the new.
        new = {
            "pass_words": lengths["passage"], "sent_words": lengths["sentence"],
            "sent_doc": sent_docs, "sent_start": [s.start for s in sentences],
            "sent_end": [s.end for s in sentences], "sent_heading": [s.heading for s in sentences],
            "pass_doc": pass_docs, "pass_start": [p.start for p in passages],
            "pass_end": [p.end for p in passages], "pass_first": [p.first_sentence + sent0 for p in passages],
            "pass_last": [p.last_sentence + sent0 for p in passages],
        }
        (tmp / "spans").mkdir()
        columns = {}
        for key, dtype in SPANS.items():
            column = np.asarray(new[key], dtype=dtype)
            if prev is not None:
                column = np.concatenate([np.asarray(prev.spans[key]), column])
            np.save(tmp / "spans" / f"{key}.npy", column)
            columns[key] = column
        alive = np.concatenate([prev.alive, np.ones(len(documents), bool)]) if prev else np.ones(len(documents), bool)
        alive[gone] = False
        np.save(tmp / "alive.npy", alive)

        corpus_root = meta["corpus_root"]
        files = {**files, **{d.path: {**entry, "doc": doc0 + i} for i, (d, entry) in enumerate(zip(documents, new_files, strict=True))}}
        live_rows, sent_doc = alive[columns["pass_doc"]], columns["sent_doc"]
        self.live_passages, self.live_sentences = int(live_rows.sum()), int(alive[sent_doc].sum())
        kind = faiss_kind or choose_faiss(self.live_passages + self.live_sentences)
        vectors = Stacked((prev.passage_vectors._parts if prev else []) + ([p_vec] if documents else []), p_vec.shape[1])
        was = prev.manifest["files"] if prev else {}
        retired = set(gone)
        touched = [d.path for d in documents] + [path for path, entry in was.items() if entry["doc"] in retired]
        dense = self._write_dense(kind, files, len(alive), columns["pass_doc"], vectors, touched)
        del self._vectors, p_vec, s_vec, vectors
        manifest = {
            "format": FORMAT,
            "generation": self.name,
            "model": meta["model"],
            "dim": meta["dim"],
            "vectors": meta["vectors"],
            "chunking": meta["chunking"],
            # Library versions and limits behind extracted text: when they change, `qa index` extracts again.
            "extraction": meta["extraction"],
            "faiss": kind,
            "dense": dense,
            "corpus": str(corpus_root.resolve()),
            # Where the corpus sits from the index folder: a project folder holding both still fits when moved.
            "corpus_relative": os.path.relpath(corpus_root.resolve(), self.root.resolve()),
            "built_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "counts": {"documents": int(alive.sum()), "passages": self.live_passages, "sentences": self.live_sentences},
            # The means of pass_words and sent_words over live rows: BM25's average lengths.
            "passage_words": float(columns["pass_words"][live_rows].mean()) if self.live_passages else 0.0,
            "sentence_words": float(columns["sent_words"][alive[sent_doc]].mean()) if self.live_sentences else 0.0,
            "rows": {"documents": len(alive), "passages": len(live_rows), "sentences": len(sent_doc)},
            "segments": self.segments,
            "files": files,
            # What `qa ask` compares on a large corpus instead of every file's stamp (qa.api.ensure_index).
            "folders": corpus_mod.folder_stamps(corpus_root),
            "skipped": skipped,
            "data": self._checksums(),
        }
        # No indent: json's C encoder writes only unindented JSON (140,000 files' entries: 0.3 s, not 1.5).
        _write_file(tmp / "manifest.json", json.dumps(manifest, ensure_ascii=False).encode("utf-8"))
        return self._swap()

    def _write_dense(self, kind: str, files: dict[str, dict], n_documents: int, pass_doc: np.ndarray,
                     vectors: Stacked, touched: list[str]) -> dict:
        """dense/: the shards of documents touched (paths added, changed or gone) written anew,
        the rest linked from the generation before; every shard when their number changes."""
        shards = shard_count(kind, self.live_passages)
        if not shards:
            return {"shards": 0, "files": []}
        folder = self.tmp / "dense"
        folder.mkdir()
        before = self.previous.manifest["dense"] if self.keep else {"shards": -1, "files": []}
        redo = {shard_of(path, shards) for path in touched} if before["shards"] == shards else set(range(shards))
        # Live documents in path order, as a fresh build reads them; each shard's rows follow it.
        doc_shard = np.full(n_documents, -1, np.int64)  # -1: a dead document, in no shard
        doc_rank = np.zeros(n_documents, np.int64)
        for rank, path in enumerate(sorted(files)):
            doc = files[path]["doc"]
            doc_shard[doc], doc_rank[doc] = shard_of(path, shards), rank
        row_shard = doc_shard[pass_doc]
        rows = np.flatnonzero(np.isin(row_shard, sorted(redo)))
        rows = rows[np.lexsort((rows, doc_rank[pass_doc[rows]], row_shard[rows]))]
        bounds = np.searchsorted(row_shard[rows], np.arange(shards + 1))
        written = []
        for shard in range(shards):
            name = f"shard-{shard:04d}.faiss"
            if shard not in redo:
                if name in before["files"]:
                    _link_file(self.root / self.previous.manifest["generation"] / "dense" / name, folder / name)
                    written.append(name)
                continue
            mine = rows[bounds[shard] : bounds[shard + 1]]
            if len(mine):
                import faiss

                faiss.write_index(_faiss_index(vectors[mine], mine), str(folder / name))
                written.append(name)
        return {"shards": shards, "files": written}

    def _checksums(self) -> dict:
        """Size and sha256 of every file of the new generation, synced; a file linked from the
        previous generation keeps the checksum it had (it is the same file)."""
        data = {}
        prev = self.root / self.previous.manifest["generation"] if self.keep else None
        known = self.previous.manifest["data"] if self.keep else {}
        for path in sorted(self.tmp.rglob("*")):
            if path.is_dir():  # segments' and tantivy's folders
                _fsync_dir(path)
                continue
            name = path.relative_to(self.tmp).as_posix()
            try:
                linked = name in known and (prev / name).stat().st_ino == path.stat().st_ino
            except OSError:
                linked = False
            if linked:
                data[name] = known[name]
                continue
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())
            data[name] = {"bytes": path.stat().st_size, "sha256": corpus_mod.file_digest(path)}
        return data

    def _swap(self) -> str:
        final = self.root / self.name
        shutil.rmtree(final, ignore_errors=True)
        os.replace(self.tmp, final)
        _fsync_dir(self.root)
        pointer = self.root / f".{CURRENT}.tmp"
        _write_file(pointer, self.name.encode("utf-8"))
        checkpoint("before-swap")
        os.replace(pointer, self.root / CURRENT)  # the moment the new generation goes live
        _fsync_dir(self.root)
        checkpoint("after-swap")
        remove_old_generations(self.root, self.name)
        return self.name


def _write_documents(folder: Path, documents: list[Document]) -> None:
    offsets = [0]  # where each document's line starts in docs.jsonl, then its end
    with open(folder / "docs.jsonl", "wb") as handle:
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
    np.save(folder / "docs.offsets.npy", np.array(offsets, dtype=np.int64))


def remove_old_generations(root: Path, live: str) -> None:
    """Delete every generation but the live one, and half-written ones a crash left behind."""
    for stale in root.glob("gen-*"):
        if stale.name != live:
            shutil.rmtree(stale, ignore_errors=True)
    for leftover in root.glob(".gen-*.tmp"):
        shutil.rmtree(leftover, ignore_errors=True)
