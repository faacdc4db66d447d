"""The trained span reader, run by onnxruntime: no torch import on the question path.

training/train_reader.py fine-tunes all-MiniLM-L6-v2 with a start/end head on SQuAD v1.1 train
and writes ``weights/`` (int8 ONNX graph, tokenizer, reader.json with the settings it was
trained with and each file's size and sha256). Inputs are "[CLS] question [SEP] passage [SEP]"
windows of at most ``max_len`` tokens, ``stride`` tokens of overlap, as in training; the [CLS]
token's start + end score is "no answer in this window".
"""
from __future__ import annotations

import json
import re
import threading
from pathlib import Path
from typing import Sequence

import numpy as np

from ..corpus import file_digest
from ..errors import ModelProblem
from . import Span, sigmoid

WEIGHTS = Path(__file__).resolve().parent / "weights"
FIX = "reinstall qa, or restore the folder with `git checkout -- qa/reader/weights`"


def read_info(folder: Path = WEIGHTS, verify: bool = True) -> dict:
    """reader.json, with every file it lists checked against its size and sha256."""
    try:
        info = json.loads((folder / "reader.json").read_text(encoding="utf-8"))
        files = info["files"]
    except FileNotFoundError:
        raise ModelProblem(f"the reader model is missing ({folder}/reader.json); {FIX}") from None
    except (OSError, ValueError, KeyError, TypeError):
        raise ModelProblem(f"the reader model's reader.json is damaged; {FIX}") from None
    for name, expected in files.items():
        path = folder / name
        try:
            size = path.stat().st_size
        except OSError:
            raise ModelProblem(f"the reader model file {name} is missing; {FIX}") from None
        if size != expected["bytes"] or (verify and file_digest(path) != expected["sha256"]):
            raise ModelProblem(f"the reader model file {name} is damaged (its checksum does not match); {FIX}")
    return info


class SpanReader:
    name = "trained"

    def __init__(self, folder: Path = WEIGHTS, threads: int = 1, file: str = "reader.onnx", background: bool = False):
        """Settings and file sizes are checked here; checksums, the graph and the tokenizer are loaded
        here too, or with background=True in a thread while the caller opens the index (onnxruntime
        and hashlib release the GIL), joined on first use or by ready()."""
        self.info = read_info(folder, verify=False)
        self.max_len = int(self.info["max_len"])
        self.stride = int(self.info["stride"])
        self.max_question = int(self.info["max_question"])
        self.max_answer = int(self.info.get("max_answer_tokens", 30))
        self.tokens_read = 0  # tokens run through the model so far (benchmarks/squad.py's trade-off table)
        self._problem: ModelProblem | None = None
        self._loading = None
        if background:
            self._loading = threading.Thread(target=self._load, args=(folder, threads, file), daemon=True)
            self._loading.start()
        else:
            self._load(folder, threads, file)
            self.ready()

    def _load(self, folder: Path, threads: int, file: str) -> None:
        try:
            import onnxruntime as ort
            from tokenizers import Tokenizer

            read_info(folder)  # the checksums, this time
            options = ort.SessionOptions()
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
            options.log_severity_level = 3
            try:
                self.session = ort.InferenceSession(str(folder / file), options, providers=["CPUExecutionProvider"])
                self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
            except Exception as exc:  # onnxruntime raises its own classes for unreadable graphs
                raise ModelProblem(f"the reader model in {folder} cannot be loaded ({str(exc).splitlines()[0][:120]}); {FIX}") from None
            self.tokenizer.no_truncation()
            self.tokenizer.no_padding()
            self.cls = self.tokenizer.token_to_id("[CLS]")
            self.sep = self.tokenizer.token_to_id("[SEP]")
        except ModelProblem as problem:
            self._problem = problem
        except ImportError as exc:  # in a thread it would otherwise print a traceback and leave no session
            self._problem = ModelProblem(f"the reader cannot run: {exc}; reinstall qa (`bin/qa` installs what it needs)")

    def join(self) -> None:
        """Wait for a background load to end, whatever its outcome."""
        if self._loading is not None:
            self._loading.join()
            self._loading = None

    def ready(self) -> SpanReader:
        """Wait for the model to load; ModelProblem when it could not."""
        self.join()
        if self._problem is not None:
            raise self._problem
        return self

    def windows(self, question: str, passages: Sequence[str]):
        """(passage, ids, context offsets) windows: "[CLS] q [SEP] ctx [SEP]", as in training."""
        q_ids = self.tokenizer.encode(question, add_special_tokens=False).ids[: self.max_question]
        budget = self.max_len - len(q_ids) - 3
        step = max(1, budget - self.stride)
        head = [self.cls, *q_ids, self.sep]
        out = []
        for n, enc in enumerate(self.tokenizer.encode_batch(list(passages), add_special_tokens=False)):
            ids, offsets = enc.ids, enc.offsets
            at = 0
            while True:
                part = slice(at, at + budget)
                out.append((n, head + ids[part] + [self.sep], offsets[part]))
                if at + budget >= len(ids):
                    break
                at += step
        return out, len(head)

    def logits(self, windows: list) -> tuple[np.ndarray, np.ndarray]:
        width = max(len(ids) for _, ids, _ in windows)
        self.tokens_read += sum(len(ids) for _, ids, _ in windows)
        ids = np.zeros((len(windows), width), np.int64)
        mask = np.zeros_like(ids)
        types = np.zeros_like(ids)
        for r, (_, row, offsets) in enumerate(windows):
            ids[r, : len(row)] = row
            mask[r, : len(row)] = 1
            types[r, len(row) - len(offsets) - 1 : len(row)] = 1
        start, end = self.session.run(None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": types})
        return start, end

    def read_batch(self, question: str, passages: Sequence[str], top: int = 3) -> list[list[Span]]:
        """Each passage's best `top` spans (distinct, best first) with their scores."""
        found: list[list[Span]] = [[] for _ in passages]
        if not passages:
            return found
        self.ready()
        windows, first = self.windows(question, passages)
        start, end = self.logits(windows)
        for w, (n, row, offsets) in enumerate(windows):
            if not offsets:
                continue
            last = first + len(offsets)  # context tokens are row[first:last]
            s, e = start[w, : len(row)].astype(np.float64), end[w, : len(row)].astype(np.float64)
            null = float(s[0] + e[0])
            # Probabilities over the window's context and [CLS], the positions training scored.
            keep = np.r_[0, first:last]
            ps, pe = np.exp(s[keep] - s[keep].max()), np.exp(e[keep] - e[keep].max())
            ps, pe = ps / ps.sum(), pe / pe.sum()
            pairs = s[first:last, None] + e[None, first:last]
            i, j = np.indices(pairs.shape)
            pairs[(j < i) | (j - i >= self.max_answer)] = -np.inf
            # The best 4 * top pairs, best first: a partial sort of the (context x context) grid.
            m = min(4 * top, pairs.size)
            flat = np.argpartition(-pairs, m - 1, axis=None)[:m]
            flat = flat[np.argsort(-pairs.flat[flat], kind="stable")]
            text = passages[n]
            for k in flat:
                a, b = divmod(int(k), pairs.shape[1])
                if not np.isfinite(pairs[a, b]):
                    break
                lo, hi = whole_words(text, offsets[a][0], offsets[b][1])
                if hi <= lo:
                    continue
                found[n].append(Span(n, lo, hi, float(pairs[a, b]), null, float(ps[1 + a] * pe[1 + b])))
        for n, spans in enumerate(found):
            best: dict[tuple[int, int], Span] = {}
            for sp in spans:
                key = (sp.start, sp.end)
                if key not in best or sp.score > best[key].score:
                    best[key] = sp
            found[n] = sorted(best.values(), key=lambda sp: -sp.score)[:top]
        return found


_TRAILING = ",;:"
_INITIAL = re.compile(r"(?:^|(?<=[\s(]))[A-Z]$")  # a span ending "Lyndon B" stops at an initial ...
_REST_OF_NAME = re.compile(r"\.(?:\s*[A-Z]\.)*\s+[A-Z][\w'’-]*")  # ... whose name goes on: ". Johnson"


def whole_words(text: str, start: int, end: int) -> tuple[int, int]:
    """The span widened to whole words (a word piece never ends an answer) and trimmed of trailing
    separators and space."""
    while 0 < start < len(text) and text[start - 1].isalnum() and text[start].isalnum():
        start -= 1
    while 0 < end < len(text) and text[end].isalnum() and text[end - 1].isalnum():
        end += 1
    while end > start and (text[end - 1].isspace() or text[end - 1] in _TRAILING):
        end -= 1
    if _INITIAL.search(text, max(start, end - 2), end):  # never cut a name at an initial: "John F" -> "John F. Kennedy"
        rest = _REST_OF_NAME.match(text, end)
        if rest:
            end = rest.end()
    while start < end and text[start].isspace():
        start += 1
    return start, end


def load_calibration(info: dict, folder: Path = WEIGHTS) -> dict:
    """The confidence fitted for this model by training/fit_confidence.py: the candidate weights and
    bias, the top answer's scaling ("top": bias, logit), the threshold and how many passages to read."""
    fix = "run `python training/fit_confidence.py` to fit it, or restore it with `git checkout -- qa/reader/weights`"
    try:
        cal = json.loads((folder / "calibration.json").read_text(encoding="utf-8"))
        weights, bias, threshold = cal["weights"], float(cal["bias"]), float(cal["threshold"])
        top = cal.get("top", {"bias": 0.0, "logit": 1.0})
        top = {"bias": float(top["bias"]), "logit": float(top["logit"])}
        passages = int(cal.get("passages", 5))
        if not all(isinstance(w, (int, float)) for w in weights.values()) or passages < 1 or top["logit"] <= 0:
            raise TypeError
    except FileNotFoundError:
        raise ModelProblem(f"the reader's confidence is not fitted ({folder}/calibration.json is missing); {fix}") from None
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        raise ModelProblem(f"the reader's calibration.json is damaged; {fix}") from None
    if cal.get("reader_sha256") != info["files"]["reader.onnx"]["sha256"]:
        raise ModelProblem(f"the reader's calibration.json was fitted for another model; {fix}")
    return {"weights": weights, "bias": bias, "threshold": threshold, "top": top, "passages": passages}


def candidate_logit(cal: dict, features: dict) -> float:
    """A candidate's fitted logit: candidates are ranked by it."""
    return cal["bias"] + sum(w * features[name] for name, w in cal["weights"].items())


def top_confidence(cal: dict, logit: float) -> float:
    """The confidence qa prints for an answer of that logit, as fitted on top answers (monotone)."""
    return sigmoid(cal["top"]["bias"] + cal["top"]["logit"] * logit)
