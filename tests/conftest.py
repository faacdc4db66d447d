import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SEEDS = ROOT / "seeds"
SHARED = ROOT.parent / "shared"
# Questions of our own over seeds/ (fitted on, never a test set): tests never use the questions of
# seeds-dev, blind5, blind6 or SQuAD dev, which are kept for measuring.
OWN = ROOT / "benchmarks" / "data" / "seeds-heldout.jsonl"
FAST_MODEL = "hashing-512"  # deterministic bag-of-words vectors: the fast run never loads torch


def own_questions() -> list[dict]:
    return [json.loads(line) for line in OWN.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """A fresh folder holding a copy of seeds/, as a user's working directory."""
    shutil.copytree(SEEDS, tmp_path / "seeds")
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture(scope="module")
def indexed_workdir(tmp_path_factory):
    """A working directory with seeds/ and a vectors/ built by `qa index`, once per module."""
    folder = tmp_path_factory.mktemp("indexed")
    shutil.copytree(SEEDS, folder / "seeds")
    done = run_qa("index", cwd=folder)
    assert done.returncode == 0, done.stderr
    return folder


def run_qa(*args, cwd, model=FAST_MODEL, input=None, env=None, timeout=300):
    """Run the real `qa` command in a subprocess."""
    full_env = {**os.environ, "QA_MODEL": model, "NO_COLOR": "1", **(env or {})}
    for name in [k for k, v in full_env.items() if v is None]:  # env={"NO_COLOR": None} unsets it
        del full_env[name]
    full_env.pop("QA_INDEX", None)
    full_env.pop("QA_CORPUS", None)
    return subprocess.run(
        [sys.executable, "-m", "qa", *map(str, args)], cwd=cwd, env=full_env, input=input,
        capture_output=True, text=True, timeout=timeout,
    )


class CountingEmbedder:
    """The hashing embedder, counting how many texts it was asked to embed."""

    def __init__(self):
        from qa.embedder import Hashing

        self.inner = Hashing()
        self.name, self.dim = self.inner.name, self.inner.dim
        self.embedded = 0

    def embed_batch(self, texts, progress=None):
        self.embedded += len(texts)
        return self.inner.embed_batch(texts, progress)
