"""The library's front door: keep an index fresh and open an answerer on it.

Paths are explicit here; only the CLI resolves defaults from flags and the environment.
"""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Callable

from . import embedder as embedder_mod
from . import store
from .answerer import Answerer
from .chunker import ChunkSettings
from .errors import CorpusError, IndexForeign, IndexMissing

Notify = Callable[[str], None]
ENCODER_DIR = "encoder"  # beside the generations: the query encoder outlives index rebuilds


def build_index(corpus: Path, root: Path, model: str, rebuild: bool = False, progress=None,
                settings: ChunkSettings = ChunkSettings(), embedder=None) -> store.Report:
    """Index corpus into root (incrementally unless rebuild) and prepare the fast query encoder."""
    embedder = embedder or embedder_mod.get(model)
    report = store.build(corpus, root, embedder, settings, rebuild=rebuild, progress=progress)
    if model == embedder_mod.MiniLM.name:
        _export_encoder(root)
    return report


def _export_encoder(root: Path) -> None:
    """Export the query encoder to ONNX once per model version (about 3 s, 90 MB)."""
    try:
        from . import onnx_encoder
    except ImportError:  # onnxruntime missing: questions are encoded by the model itself, slower
        return
    target = root / ENCODER_DIR
    if not onnx_encoder.is_current(target):
        with store.locked(root):
            for leftover in root.glob(f".{ENCODER_DIR}-*.tmp"):  # from an export that was killed
                shutil.rmtree(leftover, ignore_errors=True)
            onnx_encoder.export(target)


def query_encoder(root: Path, model: str):
    """The encoder for questions: ONNX when exported (no torch import), else the model itself."""
    if model == embedder_mod.MiniLM.name:
        try:
            from . import onnx_encoder
        except ImportError:
            return embedder_mod.get(model)
        target = root / ENCODER_DIR
        if onnx_encoder.is_current(target):
            return onnx_encoder.OnnxEncoder(target)
    return embedder_mod.get(model)


def ensure_index(corpus: Path, root: Path, model: str, notify: Notify, progress=None,
                 settings: ChunkSettings = ChunkSettings()) -> store.Index:
    """Load the index, building it first when missing and updating it when the corpus changed."""
    if not corpus.exists():
        raise CorpusError(f"no such corpus folder: {corpus}")
    try:
        manifest = store.read_manifest(root)
    except IndexMissing:
        notify(f"no index in {root}/ yet — indexing {corpus}/ (first run)")
        build_index(corpus, root, model, progress=progress, settings=settings)
        return store.load(root)
    store.check_compatible(manifest, root, model, settings)
    if Path(manifest["corpus"]) != corpus.resolve():
        raise IndexForeign(
            f"{root}/ indexes {manifest['corpus']}, not {corpus.resolve()}; pass --index with another folder "
            f"or run `qa index {corpus} --rebuild`"
        )
    changed = store.stale_files(root, corpus, manifest)
    if changed:
        shown = ", ".join(changed[:3]) + (f" and {len(changed) - 3} more" if len(changed) > 3 else "")
        notify(f"the corpus changed since indexing ({shown}) — updating {root}/")
        build_index(corpus, root, model, progress=progress, settings=settings)
    elif model == embedder_mod.MiniLM.name and not (root / ENCODER_DIR).exists():
        _export_encoder(root)
    return store.load(root)


def open_answerer(corpus: Path, root: Path, model: str = embedder_mod.DEFAULT_MODEL,
                  notify: Notify = lambda _: None, progress=None) -> Answerer:
    index = ensure_index(corpus, root, model, notify, progress)
    return Answerer(index, query_encoder(root, model), corpus)
