"""Ingestion: what changed in the corpus, read, chunked, embedded and tokenised for a store.

`build` is `qa index`. It asks the store what it holds (the live generation's manifest: every
file's size, mtime, sha256 and document number), reads only new and changed files, and hands
the store their documents, passages, sentences, vectors and words, with the documents that go.
The store (qa.store, a folder of generations) decides how to keep them; nothing here knows its
files, so another store can take the same input.

An update costs what it adds: unchanged files are not read again (a file whose stamp moved is
hashed, and counts as changed only if its content did). Now and then the store is compacted
instead: every live document written again as one segment, vectors reused, nothing embedded
again (qa.store.needs_compaction says when).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from . import corpus as corpus_mod
from . import documents as formats
from . import store
from .chunker import ChunkSettings, chunk
from .errors import CorpusError, IndexDamaged, IndexForeign, IndexMissing
from .lexical import tokenize
from .types import Document, Passage, Sentence

EMBED_SLICE = 4096  # passages embedded per call: their vectors are written out before the next


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
    compacted: bool = False  # the whole index was written again (a rebuild, or a compaction)
    encoder: str = ""  # why the query encoder was exported again, when it was


# ---------------------------------------------------------------------------------------------
# What changed


@dataclass
class Plan:
    """How the corpus differs from what the store holds."""

    kept: dict[str, dict]  # unchanged documents' file entries (sha256, stat, doc), stamps brought up to date
    kept_skipped: list[dict]  # unchanged skipped files' entries
    read: list[str]  # new and changed files: read again
    removed: list[str]  # files that are gone
    gone: list[int]  # the document numbers of changed and removed files
    restamped: bool = False  # a file's stamp moved but not its content (a touch, a fresh checkout)

    @property
    def unchanged(self) -> bool:
        return not (self.read or self.removed or self.restamped)


def plan(corpus_root: Path, manifest: dict) -> Plan:
    """Compare the corpus with a manifest's file table, by size and mtime first, then sha256."""
    files = manifest["files"]
    skipped = {s["path"]: s for s in manifest.get("skipped", [])}
    out = Plan(kept={}, kept_skipped=[], read=[], removed=[], gone=[])
    seen = set()
    for name, path in corpus_mod.named_files(corpus_root):
        seen.add(name)
        entry = files.get(name) or skipped.get(name)
        if entry is None:
            out.read.append(name)
            continue
        same, stamp = _same_file(path, entry)
        if not same:
            out.read.append(name)
            if name in files:
                out.gone.append(files[name]["doc"])
            continue
        if stamp != entry.get("stat"):
            out.restamped = True
            entry = {**entry, "stat": stamp}
        if name in files:
            out.kept[name] = entry
        else:
            out.kept_skipped.append(entry)
    out.removed = sorted(n for n in list(files) + list(skipped) if n not in seen)
    out.gone += [files[n]["doc"] for n in out.removed if n in files]
    return out


def stale_files(root: Path, corpus_root: Path, manifest: dict | None = None) -> list[str]:
    """Corpus files added, changed or removed since the index was built ([] when fresh)."""
    found = plan(corpus_root, manifest or store.read_manifest(root))
    return found.read + found.removed


def _same_file(path: Path, entry: dict) -> tuple[bool, list[int] | None]:
    """(whether path still holds what the file entry recorded, its [size, mtime] now): the same
    stamp, or else the same sha256. A file that cannot be stat-ed (a dangling link, a loop) is
    the same only if it could not be before either."""
    try:
        st = path.stat()
        stamp = [st.st_size, st.st_mtime_ns]
    except OSError:
        stamp = None
    if stamp == entry.get("stat"):
        return True, stamp
    digest = _digest_or_none(path, stamp[0]) if stamp is not None else None
    return digest is not None and digest == entry.get("sha256"), stamp


def _digest_or_none(path: Path, size: int) -> str | None:
    if size > corpus_mod.MAX_FILE_BYTES:
        return None
    try:
        return corpus_mod.file_digest(path)
    except OSError:
        return None


def _stamp(corpus_root: Path, name: str) -> list[int] | None:
    """[size, mtime] of a corpus file, what decides staleness first; None if it cannot be stat-ed."""
    try:
        st = (corpus_root if corpus_root.is_file() else corpus_root / name).stat()
    except OSError:
        return None
    return [st.st_size, st.st_mtime_ns]


def _entries(corpus_root: Path, documents: list[Document], skipped: list[corpus_mod.Skipped]) -> tuple[list[dict], list[dict]]:
    """The file table's entries of documents just read, and of files skipped."""
    # A document's sha256 is of its source file: for .txt and .md, of its strictly decoded UTF-8
    # text, whose bytes are the file's (no second read); extracted formats hashed the file itself.
    docs = [{"sha256": d.sha256, "stat": _stamp(corpus_root, d.path)} for d in documents]
    skips = []
    for s in skipped:
        stamp = _stamp(corpus_root, s.path)
        # Skipped files were never hashed: they are, once, so a touch alone doesn't count as a change.
        digest = _digest_or_none(corpus_root if corpus_root.is_file() else corpus_root / s.path, (stamp or [0])[0])
        skips.append({"path": s.path, "reason": s.reason, "stat": stamp, "sha256": digest})
    return docs, skips


# ---------------------------------------------------------------------------------------------
# Vectors


def embedding_text(doc: Document, start: int, end: int) -> str:
    """What the encoder sees for a passage: its article's title, then the passage."""
    body = doc.text[start:end]
    return f"{doc.title}\n{body}" if doc.title and not body.startswith(doc.title) else body


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


def embed_into(documents, sentences, passages, todo_p: list[int], todo_s: list[int], embedder,
               p_vec: np.ndarray, s_vec: np.ndarray, progress=None) -> None:
    """Embed passages todo_p and sentences todo_s (local numbers) into the rows of p_vec and s_vec.

    Every sentence lies in one passage, and a document's passages and sentences are embedded
    together: the sentences of a slice of todo_p are a slice of todo_s, in order."""
    method = sentence_vectors(embedder)
    total = len(todo_p) + (len(todo_s) if method == "separate" else 0)
    done = 0

    def tick(n: int) -> None:
        nonlocal done
        done += n
        store.checkpoint("during-embedding")
        if progress:
            progress("embedding", done, total)

    if progress:
        progress("embedding", 0, total)
    store.checkpoint("before-embedding")
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
    store.checkpoint("after-embedding")


def _tokens(documents, sentences, passages):
    """The words BM25 indexes: passages with their title line, as embedded; sentences alone."""
    return ((tokenize(embedding_text(documents[p.doc], p.start, p.end)) for p in passages),
            (tokenize(documents[s.doc].text[s.start : s.end]) for s in sentences))


# ---------------------------------------------------------------------------------------------
# qa index


def build(
    corpus_root: Path,
    root: Path,
    embedder,
    settings: ChunkSettings = ChunkSettings(),
    rebuild: bool = False,
    progress: Callable[[str, int, int], None] | None = None,
    faiss_kind: str | None = None,
) -> Report:
    """Bring the index at root up to date with the corpus, embedding only what is new."""
    with store.locked(root):
        old = None if rebuild else _reusable(root, embedder.name, settings, vectors_recipe(embedder))
        extraction = formats.settings()
        # An index of an earlier format is written again whole (compacted), its vectors reused.
        if (old is not None and old.manifest["format"] == store.FORMAT and old.manifest.get("extraction") == extraction
                and faiss_kind is None):
            found = plan(corpus_root, old.manifest)
            if found.unchanged:
                store.remove_old_generations(root, old.manifest["generation"])  # what a crash after the swap left
                return Report(unchanged=True, generation=old.manifest["generation"], kept=sorted(found.kept),
                              passages=old.live_passages, sentences=old.live_sentences,
                              skipped=[corpus_mod.Skipped(s["path"], s["reason"]) for s in found.kept_skipped])
            report = _update(corpus_root, root, embedder, settings, extraction, old, found, progress)
            if report is not None:
                return report
        return _compact(corpus_root, root, embedder, settings, extraction, old, progress, faiss_kind)


def _meta(corpus_root: Path, embedder, settings: ChunkSettings, extraction: dict) -> dict:
    """What the manifest says of how the index was made."""
    return {"model": embedder.name, "dim": embedder.dim, "vectors": vectors_recipe(embedder),
            "chunking": settings.to_json(), "extraction": extraction, "corpus_root": corpus_root}


def _update(corpus_root, root, embedder, settings, extraction, old: store.Index, found: Plan, progress) -> Report | None:
    """Append the new and changed files as a segment and retire the documents that went; None
    when the store would rather be compacted."""
    documents, skipped = corpus_mod.load(corpus_root, names=set(found.read))
    gone = set(found.gone)
    if store.needs_compaction(old, gone):
        return None
    sentences, passages = chunk(documents, settings)
    was = old.manifest["files"]
    report = Report(skipped=[corpus_mod.Skipped(s["path"], s["reason"]) for s in found.kept_skipped] + skipped,
                    kept=sorted(found.kept), removed=[n for n in found.removed if n in was])
    for d in documents:
        (report.updated if d.path in was else report.added).append(d.path)
    writer = store.FolderWriter(root, old, keep=True)
    p_vec, s_vec = writer.vectors(len(passages), len(sentences), embedder.dim)
    embed_into(documents, sentences, passages, list(range(len(passages))), list(range(len(sentences))),
               embedder, p_vec, s_vec, progress)
    report.embedded_passages, report.embedded_sentences = len(passages), len(sentences)
    passage_words, sentence_words = _tokens(documents, sentences, passages)
    new_files, new_skipped = _entries(corpus_root, documents, skipped)
    report.generation = writer.commit(
        documents, sentences, passages, passage_words, sentence_words, gone=sorted(gone), files=found.kept,
        new_files=new_files, skipped=found.kept_skipped + new_skipped,
        meta=_meta(corpus_root, embedder, settings, extraction),
    )
    report.passages, report.sentences = writer.live_passages, writer.live_sentences
    return report


def _compact(corpus_root, root, embedder, settings, extraction, old: store.Index | None, progress, faiss_kind) -> Report:
    """Write every live document again as one segment, reusing the vectors of those unchanged."""
    reuse = _extracted_before(old, corpus_root, extraction) if old is not None else None
    documents, skipped = corpus_mod.load(corpus_root, reuse)
    if not documents:
        why = "; ".join(f"{s.path} {s.reason}" for s in skipped[:3])
        raise CorpusError(f"no article text in {corpus_root}" + (f" ({why})" if why else " (no files qa reads: "
                          + ", ".join(corpus_mod.EXTENSIONS) + ")"))
    sentences, passages = chunk(documents, settings)
    report = Report(skipped=skipped, passages=len(passages), sentences=len(sentences), compacted=True)

    # Vectors of unchanged documents come from the old generation, keyed by content hash.
    old_docs: dict[str, int] = {}
    if old is not None:
        for entry in old.manifest["files"].values():  # live documents only
            old_docs.setdefault(entry["sha256"], entry["doc"])
        old_paths = {name: entry["sha256"] for name, entry in old.manifest["files"].items()}
        for d in documents:
            if d.path not in old_paths:
                report.added.append(d.path)
            elif old_paths[d.path] != d.sha256:
                report.updated.append(d.path)
            else:
                report.kept.append(d.path)
        new_paths = {d.path for d in documents}
        report.removed = sorted(p for p in old_paths if p not in new_paths)
    else:
        report.added = [d.path for d in documents]

    reused: list[tuple[int, int]] = []  # (document, the same document in the old generation)
    todo_p, todo_s = [], []
    by_doc_p = _ranges([p.doc for p in passages], len(documents))
    by_doc_s = _ranges([s.doc for s in sentences], len(documents))
    if old is not None:
        old_p = _ranges(np.asarray(old.spans["pass_doc"]).tolist(), len(old.documents))
        old_s = _ranges(np.asarray(old.spans["sent_doc"]).tolist(), len(old.documents))
    for i, d in enumerate(documents):
        j = old_docs.get(d.sha256)
        (p0, p1), (s0, s1) = by_doc_p[i], by_doc_s[i]
        # Same source and same text: a web page, PDF or Word file extracted anew can differ.
        if (j is not None and old.documents[j].text == d.text
                and old_p[j][1] - old_p[j][0] == p1 - p0 and old_s[j][1] - old_s[j][0] == s1 - s0):
            reused.append((i, j))
        else:
            todo_p += range(p0, p1)
            todo_s += range(s0, s1)

    writer = store.FolderWriter(root, old, keep=False)
    p_vec, s_vec = writer.vectors(len(passages), len(sentences), embedder.dim)
    for i, j in reused:
        (p0, p1), (s0, s1) = by_doc_p[i], by_doc_s[i]
        p_vec[p0:p1] = old.passage_vectors[old_p[j][0] : old_p[j][1]]
        s_vec[s0:s1] = old.sentence_vectors[old_s[j][0] : old_s[j][1]]
    embed_into(documents, sentences, passages, todo_p, todo_s, embedder, p_vec, s_vec, progress)
    report.embedded_passages, report.embedded_sentences = len(todo_p), len(todo_s)
    passage_words, sentence_words = _tokens(documents, sentences, passages)
    new_files, new_skipped = _entries(corpus_root, documents, skipped)
    report.generation = writer.commit(
        documents, sentences, passages, passage_words, sentence_words, gone=[], files={}, new_files=new_files,
        skipped=new_skipped, meta=_meta(corpus_root, embedder, settings, extraction), faiss_kind=faiss_kind,
    )
    return report


def _extracted_before(old: store.Index, corpus_root: Path, extraction: dict) -> corpus_mod.Reuse | None:
    """What the live index made of each web page, PDF and Word file that has not changed since:
    same size and mtime, or else same sha256, and the same extraction settings. None reuses nothing."""
    manifest = old.manifest
    if manifest.get("extraction") != extraction:
        return None
    skipped = {s["path"]: s for s in manifest.get("skipped", [])}

    def reuse(name: str, path: Path):
        entry = manifest["files"].get(name) or skipped.get(name)
        if entry is None:
            return None
        same, stamp = _same_file(path, entry)
        if not same or stamp is None:
            return None
        if name in manifest["files"]:
            return old.documents[manifest["files"][name]["doc"]]
        return corpus_mod.Skipped(name, entry["reason"])

    return reuse


def _ranges(owner: list[int], n: int) -> list[tuple[int, int]]:
    """For rows grouped by owner in order, each owner's (start, end) row range."""
    out = [(0, 0)] * n
    start = 0
    for i in range(1, len(owner) + 1):
        if i == len(owner) or owner[i] != owner[start]:
            out[owner[start]] = (start, i)
            start = i
    return out


def _reusable(root: Path, model: str, settings: ChunkSettings, recipe: str) -> store.Index | None:
    """The live index if its vectors can be reused: same model, chunking and sentence vectors,
    undamaged, of this format or one that can be upgraded."""
    try:
        index = store.load(root, upgradable=True)
    except (IndexMissing, IndexDamaged, IndexForeign):
        return None
    if (index.model != model or index.manifest["chunking"] != settings.to_json()
            or index.manifest.get("vectors") != recipe):
        return None
    return index
