"""The benchmark stand-in for MiniLM (minilm-static-384): vectors from the packaged model's own
token table, grouped by topic, with no torch."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from qa import embedder

SPORT = [
    "The striker scored twice in the second half and the club won the league title.",
    "Their goalkeeper saved a penalty, and the team reached the cup final.",
]
SCIENCE = [
    "Chloroplasts in plant cells turn sunlight into chemical energy by photosynthesis.",
    "The enzyme speeds up a chemical reaction inside the cell membrane.",
]
BUSINESS = [
    "Shares of the bank fell after it reported lower quarterly profit to investors.",
    "The company's revenue rose, and its stock price climbed on the exchange.",
]


@pytest.fixture(scope="module")
def static() -> embedder.Embedder:
    return embedder.get("minilm-static-384")


def test_texts_of_one_topic_are_nearer_than_texts_of_another(static):
    vectors = static.embed_batch(SPORT + SCIENCE + BUSINESS)
    assert vectors.shape == (6, 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    similar = vectors @ vectors.T
    for topic in range(3):
        a, b = 2 * topic, 2 * topic + 1
        others = [i for i in range(6) if i not in (a, b)]
        assert similar[a, b] > similar[a, others].max()
        assert similar[b, a] > similar[b, others].max()


def test_stopwords_and_punctuation_alone_give_a_zero_vector(static):
    vectors = static.embed_batch(["", "of the and to it", "...!?"])
    assert not vectors.any()


def test_a_vector_does_not_depend_on_its_batch(static):
    alone = static.embed_batch([SCIENCE[0]])[0]
    batched = static.embed_batch(SPORT + SCIENCE)[2]
    np.testing.assert_allclose(alone, batched, atol=1e-6)


def test_it_needs_no_torch_and_is_not_offered():
    code = ("import sys; from qa import embedder; embedder.get('minilm-static-384').embed_batch(['a test']); "
            "print('torch' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
    assert "minilm-static-384" not in embedder.OFFERED
