"""The library's front door: keep an index fresh and open an answerer on it.

Paths are explicit here; only the CLI resolves defaults from flags and the environment.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Callable

from . import corpus as corpus_mod
from . import embedder as embedder_mod
from . import ingest, store
from .answerer import Answerer
from .chunker import ChunkSettings
from .errors import CorpusError, IndexDamaged, IndexForeign, IndexMissing

Notify = Callable[[str], None]
ENCODER_DIR = "encoder"  # beside the generations: the query encoder outlives index rebuilds
# Above this many files, `qa ask` checks the corpus by its folders' stamps, not every file's
# (benchmarks/endtoend.py: every file's took 2.7 s at 143,360 files, about 19 µs a file).
QUICK_CHECK_FILES = 10_000


def build_index(corpus: Path, root: Path, model: str, rebuild: bool = False, progress=None,
                settings: ChunkSettings = ChunkSettings(), embedder=None) -> ingest.Report:
    """Index corpus into root (incrementally unless rebuild) and prepare the fast query encoder.

    The encoder export is checked on every run and exported again when it is missing, stale or
    damaged (always on rebuild); report.encoder says why when that happened.
    """
    encoder = ""
    if embedder is None and model == embedder_mod.MiniLM.name:
        # First: the exported graph encodes the corpus too (int8, one pass per passage).
        encoder = _export_encoder(root, force=rebuild)
        embedder = index_encoder(root, model)
    report = ingest.build(corpus, root, embedder or embedder_mod.get(model), settings, rebuild=rebuild, progress=progress)
    report.encoder = encoder
    return report


def index_encoder(root: Path, model: str):
    """What encodes the corpus: the query encoder's own export, on every core (up to 4), or the
    model itself where onnxruntime is not installed."""
    if encoder_state(root)[0] != "ok":
        return embedder_mod.get(model)
    return _onnx_encoder(root, threads=min(4, len(os.sched_getaffinity(0))))


def _onnx_encoder(root: Path, threads: int = 1):
    from . import onnx_encoder

    try:
        return onnx_encoder.OnnxEncoder(root / ENCODER_DIR, threads=threads)
    except Exception:  # noqa: BLE001 - onnxruntime raises its own kinds for a bad graph
        raise IndexDamaged(encoder_damage(root, "onnxruntime cannot load model.onnx")) from None


def encoder_state(root: Path, full: bool = False) -> tuple[str, str]:
    """The query encoder export under root: ("ok" | "missing" | "stale" | "damaged" | "absent", why).

    "absent" means onnxruntime is not installed, so questions are encoded by the model itself.
    """
    try:
        from . import onnx_encoder
    except ImportError:
        return "absent", "onnxruntime is not installed"
    return onnx_encoder.state(root / ENCODER_DIR, full=full)


def encoder_damage(root: Path, why: str) -> str:
    return f"the query encoder in {root / ENCODER_DIR}/ is damaged ({why}) — run `qa index --rebuild`"


def _export_encoder(root: Path, force: bool = False) -> str:
    """Export the query encoder to ONNX unless an intact current export is there (about 3 s, 90 MB).

    Returns why, when it replaced a stale or damaged export ("" otherwise).
    """
    state, why = encoder_state(root, full=True)
    if state == "absent" or (state == "ok" and not force):
        return ""
    from . import onnx_encoder

    with store.locked(root):
        for leftover in root.glob(f".{ENCODER_DIR}-*.tmp"):  # from an export that was killed
            shutil.rmtree(leftover, ignore_errors=True)
        onnx_encoder.export(root / ENCODER_DIR)
    return why if state in ("stale", "damaged") else ""  # a first export, or a forced one, is routine


def query_encoder(root: Path, model: str):
    """The encoder for questions: ONNX when exported (no torch import), else the model itself.

    A damaged export is IndexDamaged, never a fallback: it would hide the damage, and a half
    readable graph fails deep inside onnxruntime.
    """
    state = ""
    if model == embedder_mod.MiniLM.name:
        state, why = encoder_state(root)
        if state == "damaged":
            raise IndexDamaged(encoder_damage(root, why))
        if state == "ok":
            return _onnx_encoder(root)
    return embedder_mod.get(model)


def corpus_mismatch(manifest: dict, root: Path, corpus: Path) -> str | None:
    """None when the index at root was built from corpus, else why not, with the fix.

    The corpus is recognised by its path when indexed (absolute), by its place beside the index
    (relative to root, so a project folder holding both can be moved or copied), or else by its
    content: the same files with the same hashes are the same corpus wherever they now live.
    `qa ask` and `qa status` both decide with this.
    """
    here = corpus.resolve()
    if Path(manifest["corpus"]) == here:
        return None
    relative = manifest.get("corpus_relative")
    if relative is not None and (root.resolve() / relative).resolve() == here:
        return None
    try:
        names = {name for name, _ in corpus_mod.named_files(corpus)}
    except CorpusError:
        names = set()
    indexed = set(manifest["files"]) | {s["path"] for s in manifest.get("skipped", [])}
    if names == indexed and not ingest.stale_files(root, corpus, manifest):
        return None
    return (f"{root}/ indexes {manifest['corpus']}, not {here}; pass --index with another folder "
            f"or run `qa index {corpus} --rebuild`")


def ensure_index(corpus: Path, root: Path, model: str, notify: Notify, progress=None,
                 settings: ChunkSettings = ChunkSettings(), before_build: Callable[[], object] = lambda: None) -> store.Index:
    """Load the index, building it first when missing and updating it when the corpus changed.

    before_build runs before any building starts (open_answerer: a broken model fails first)."""
    if not corpus.exists():
        raise CorpusError(f"no such corpus folder: {corpus}")
    try:
        manifest = store.read_manifest(root)
    except IndexMissing:
        before_build()
        notify(f"no index in {root}/ yet — indexing {corpus}/ (first run)")
        build_index(corpus, root, model, progress=progress, settings=settings)
        return store.load(root)
    store.check_compatible(manifest, root, model, settings)
    mismatch = corpus_mismatch(manifest, root, corpus)
    if mismatch:
        raise IndexForeign(mismatch)
    state = ""
    if model == embedder_mod.MiniLM.name:
        state, why = encoder_state(root)
        if state == "damaged":
            raise IndexDamaged(encoder_damage(root, why))
        if state in ("missing", "stale"):
            notify(f"exporting the query encoder to {root / ENCODER_DIR}/ ({why}; a few seconds, once)")
    if len(manifest["files"]) > QUICK_CHECK_FILES and manifest.get("folders") == corpus_mod.folder_stamps(corpus):
        changed = []  # no file added, removed or renamed; one rewritten in place waits for `qa index`
    else:
        changed = ingest.stale_files(root, corpus, manifest)
    if changed:
        shown = ", ".join(changed[:3]) + (f" and {len(changed) - 3} more" if len(changed) > 3 else "")
        before_build()
        notify(f"the corpus changed since indexing ({shown}) — updating {root}/")
        build_index(corpus, root, model, progress=progress, settings=settings)
    elif state in ("missing", "stale"):
        _export_encoder(root)
    return store.load(root, manifest=manifest)  # read again by load when the update made a new generation


def open_reader(kind: str = "trained", background: bool = False):
    """(reader, calibration) for Answerer: "trained" is the span reader shipped in qa/reader/weights,
    a folder path another such model, "rules" (None, None) for the rule reader. Raises
    ModelProblem, with the fix, when a model file is missing or damaged (with background=True, a
    damaged checksum or graph only from the reader's ready())."""
    if kind == "rules":
        return None, None
    from .reader import model as reader_model

    folder = reader_model.WEIGHTS if kind == "trained" else Path(kind)
    reader = reader_model.SpanReader(folder, background=background)
    return reader, reader_model.load_calibration(reader.info, folder)


def open_answerer(corpus: Path, root: Path, model: str = embedder_mod.DEFAULT_MODEL,
                  notify: Notify = lambda _: None, progress=None, reader: str = "trained") -> Answerer:
    # First, so that a broken model fails before any indexing; it loads while the index opens.
    span_reader, calibration = open_reader(reader, background=True)
    wait = span_reader.ready if span_reader else lambda: None
    try:
        index = ensure_index(corpus, root, model, notify, progress, before_build=wait)
        encoder = query_encoder(root, model)
    finally:
        if span_reader:
            span_reader.join()  # never leave with onnxruntime mid-load in a thread: the process would abort
    wait()
    return Answerer(index, encoder, corpus, reader=span_reader, calibration=calibration)
