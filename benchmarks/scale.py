"""How the dense index types scale: FAISS Flat, HNSW and IVF-PQ on 10k, 100k and 1M synthetic vectors.

    python benchmarks/scale.py                       # 10k, 100k, 1M: ~12 min on 2 cores, peak ~7 GB RAM
    python benchmarks/scale.py --sizes 10000,100000  # ~1 min

Each index is built by ``rag.index.make_faiss_index`` (the product's own settings) in a fresh
process over the same vectors, and reports: build seconds, the index's own size, the process's peak
RSS (the float32 vectors themselves are n x 384 x 4 bytes: 15 MB, 154 MB, 1.5 GB), the latency of
one question at a time (p50 / p95; ``rag`` asks one at a time) and recall@10 against exact search
(Flat's answers). A BM25 row per size uses ``rag.bm25.LexicalIndex`` on random token lists.

The data: dimension 384 like the model's, L2-normalised, drawn around n/1000 random centres (each
vector's cosine to its centre ~0.75), because real embeddings are clustered and ANN indexes do
better on clustered data than on isotropic noise; ``--data random`` gives plain random unit vectors
(the hard case). Questions are fresh draws from the same distribution, not indexed vectors.

OpenMP threads sleep when idle (OMP_WAIT_POLICY=passive, as rag sets for torch), so that a busy
machine does not make spinning threads collapse the build timings; searches are one question at a
time, which FAISS runs on one thread. HNSW is searched with efSearch 128, 256 (the product's) and
512: a query-time setting, so one build serves all three. ``--fast`` builds HNSW at 1M with efConstruction 40 instead
of the product's 80 (about half the build time), and the table says so.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # this checkout's rag, whatever else is installed
DIM = 384
K = 10


def _rss_mb() -> tuple[float, float]:
    """(current, peak) resident set size of this process in MB."""
    cur = peak = 0.0
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                cur = int(line.split()[1]) / 1024
            elif line.startswith("VmHWM:"):
                peak = int(line.split()[1]) / 1024
    return cur, peak


def make_data(n: int, nq: int, kind: str, out: Path, seed: int = 0) -> None:
    import numpy as np

    rng = np.random.default_rng(seed)

    def draw(m: int, centres) -> np.ndarray:
        x = np.empty((m, DIM), dtype=np.float32)
        step = 100_000
        for i in range(0, m, step):
            j = min(m, i + step)
            block = rng.standard_normal((j - i, DIM), dtype=np.float32)
            if centres is not None:
                block *= np.float32(0.88 / np.sqrt(DIM))  # noise norm ~0.88: cosine to centre ~0.75
                block += centres[rng.integers(0, len(centres), j - i)]
            block /= np.linalg.norm(block, axis=1, keepdims=True)
            x[i:j] = block
        return x

    centres = None
    if kind == "clustered":
        centres = rng.standard_normal((max(10, n // 1000), DIM), dtype=np.float32)
        centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    np.save(out / "vectors.npy", draw(n, centres))
    np.save(out / "queries.npy", draw(nq, centres))


def _latency(index, queries, truth=None) -> tuple[dict, "np.ndarray"]:
    """One question at a time: p50/p95 ms, recall@10 against `truth`, and the answers."""
    import numpy as np

    times = []
    found = np.empty((len(queries), K), dtype=np.int64)
    for i in range(len(queries)):
        t = time.perf_counter()
        _, ids = index.search(queries[i : i + 1], K)
        times.append(time.perf_counter() - t)
        found[i] = ids[0]
    ms = np.array(times) * 1000
    recall = 1.0 if truth is None else float(np.mean([len(set(found[i]) & set(truth[i])) / K for i in range(len(queries))]))
    return {"p50_ms": float(np.percentile(ms, 50)), "p95_ms": float(np.percentile(ms, 95)), "recall": recall}, found


def child_dense(kind: str, data: Path, ef_construction: int | None) -> list[dict]:
    import numpy as np

    import faiss
    from rag.index import make_faiss_index

    vectors = np.load(data / "vectors.npy")
    queries = np.load(data / "queries.npy")
    t0 = time.perf_counter()
    if kind == "hnsw" and ef_construction:
        # The product's HNSW with a lower efConstruction (a build-time knob only).
        index = faiss.IndexHNSWFlat(DIM, 32, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = ef_construction
        index.hnsw.efSearch = make_faiss_index(vectors[:1000], "hnsw").hnsw.efSearch
        index.add(vectors)
    else:
        index = make_faiss_index(vectors, kind)
    build = time.perf_counter() - t0
    truth = None if kind == "flat" else np.load(data / "truth.npy")
    result, found = _latency(index, queries, truth)
    if kind == "flat":
        np.save(data / "truth.npy", found)
    _, peak = _rss_mb()  # before serialising, which copies the index
    size_mb = (vectors.nbytes if kind == "flat" else len(faiss.serialize_index(index))) / 2**20
    base = {"build_s": build, "index_mb": size_mb, "peak_rss_mb": peak, "queries": len(queries)}
    rows = [{**base, **result}]
    if kind == "hnsw":  # efSearch is a query-time knob: what less or more of it gives
        product = index.hnsw.efSearch
        rows[0]["variant"] = f"efSearch {product}, rag's"
        for ef in sorted({128, 256, 512} - {product}):
            index.hnsw.efSearch = ef
            rows.append({**base, **_latency(index, queries, truth)[0], "variant": f"efSearch {ef}"})
        rows.sort(key=lambda r: int(r["variant"].split()[1].rstrip(",")))
    return rows


def child_bm25(n: int, nq: int, seed: int = 0) -> dict:
    """BM25 over n random 'passages' of 40-80 tokens from a 50k-word Zipf vocabulary."""
    import numpy as np

    from rag.bm25 import LexicalIndex

    rng = np.random.default_rng(seed)
    vocab = 50_000
    lengths = rng.integers(40, 81, n)
    words = rng.zipf(1.2, int(lengths.sum())) % vocab
    docs, pos = [], 0
    names = [f"w{i}" for i in range(vocab)]
    for length in lengths:
        docs.append([names[w] for w in words[pos : pos + length]])
        pos += length
    t0 = time.perf_counter()
    index = LexicalIndex.build(docs, tokenizer=lambda d: d)
    build = time.perf_counter() - t0
    del docs
    qwords = rng.zipf(1.2, (nq, 8)) % vocab
    times = []
    for q in qwords:
        toks = [names[w] for w in q]
        t = time.perf_counter()
        index.search(toks, 50)
        times.append(time.perf_counter() - t)
    ms = np.array(times) * 1000
    size = (index.indptr.nbytes + index.doc_ids.nbytes + index.scores.nbytes) / 2**20
    _, peak = _rss_mb()
    return {"build_s": build, "index_mb": size, "peak_rss_mb": peak, "p50_ms": float(np.percentile(ms, 50)),
            "p95_ms": float(np.percentile(ms, 95)), "recall": None, "queries": nq}


def run_child(args: list[str]):
    env = dict(os.environ)
    env.setdefault("OMP_WAIT_POLICY", "passive")
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    out = subprocess.run([sys.executable, __file__, "--child", *args], env=env, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def fmt_n(n: int) -> str:
    return f"{n // 1_000_000}M" if n >= 1_000_000 and n % 1_000_000 == 0 else f"{n // 1000}k"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument("--kinds", default="flat,hnsw,ivfpq")
    ap.add_argument("--data", choices=("clustered", "random"), default="clustered")
    ap.add_argument("--queries", type=int, default=500, help="questions per size (200 at 1M and above)")
    ap.add_argument("--no-bm25", action="store_true")
    ap.add_argument("--fast", action="store_true", help="HNSW at 1M with efConstruction 40 instead of the product's 80")
    ap.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.child:
        what = args.child[0]
        if what == "data":
            make_data(int(args.child[1]), int(args.child[2]), args.child[3], Path(args.child[4]))
            result = {}
        elif what == "bm25":
            result = child_bm25(int(args.child[1]), int(args.child[2]))
        else:
            ef = int(args.child[2]) if len(args.child) > 2 and args.child[2] != "0" else None
            result = child_dense(what, Path(args.child[1]), ef)
        print(json.dumps(result))
        return 0

    sizes = [int(s) for s in args.sizes.split(",")]
    kinds = args.kinds.split(",")
    if "flat" not in kinds:
        kinds.insert(0, "flat")  # the exact answers recall is measured against
    from rag.index import choose_index_type

    t_start = time.perf_counter()
    rows = []
    for n in sizes:
        nq = args.queries if n < 1_000_000 else min(args.queries, 200)
        with tempfile.TemporaryDirectory(prefix=f"rag-scale-{n}-") as tmp:
            data = Path(tmp)
            t = time.perf_counter()
            run_child(["data", str(n), str(nq), args.data, tmp])
            print(f"[{time.perf_counter() - t_start:6.0f} s] {fmt_n(n)}: data in {time.perf_counter() - t:.0f} s", file=sys.stderr, flush=True)
            for kind in kinds:
                ef = 40 if kind == "hnsw" and n >= 1_000_000 and args.fast else 0
                for r in run_child([kind, str(data), str(ef)]):
                    label = ", ".join(x for x in (f"efConstruction {ef}" if ef else "", r.get("variant", "")) if x)
                    r.update(n=n, kind=kind + (f" ({label})" if label else ""))
                    rows.append(r)
                    print(f"[{time.perf_counter() - t_start:6.0f} s] {fmt_n(n)} {r['kind']}: build {r['build_s']:.1f} s, "
                          f"p50 {r['p50_ms']:.2f} ms, recall@10 {r['recall']:.3f}", file=sys.stderr, flush=True)
        if not args.no_bm25 and n <= 1_000_000:
            r = run_child(["bm25", str(n), str(nq)])
            r.update(n=n, kind="BM25 (rag.bm25, random tokens)")
            rows.append(r)
            print(f"[{time.perf_counter() - t_start:6.0f} s] {fmt_n(n)} bm25: build {r['build_s']:.1f} s", file=sys.stderr, flush=True)

    load = os.getloadavg()
    print(f"\n## Index scale ({time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} cores, load average {load[0]:.1f}; "
          f"{args.data} unit vectors, dim {DIM}; one question at a time, k={K}; total {time.perf_counter() - t_start:.0f} s)\n")
    print("| n | index | build s | index MB | peak RSS MB | query p50 ms | query p95 ms | recall@10 vs exact | questions | auto picks |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        auto = choose_index_type(r["n"]) if not r["kind"].startswith("BM25") else ""
        rec = "–" if r["recall"] is None else f"{r['recall']:.3f}"
        print(f"| {fmt_n(r['n'])} | {r['kind']} | {r['build_s']:.1f} | {r['index_mb']:.0f} | {r['peak_rss_mb']:.0f} | "
              f"{r['p50_ms']:.2f} | {r['p95_ms']:.2f} | {rec} | {r['queries']} | {auto} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
