"""The Milvus store next to FAISS, in the same run: build, one report's upsert, query p50/p95.

    python benchmarks/milvus.py --uri /tmp/bench-milvus/milvus.db            # Milvus Lite, library only
    python benchmarks/milvus.py --uri /tmp/bench-milvus/milvus.db --drift    # + reports added one by one
    python benchmarks/milvus.py --uri http://host:19530 --synthetic 100000   # + 100k synthetic passages

Data: the reports of /work/shared/library (read in place), cut by the project's chunker into
passages and sentence units, tokenized by the project's tokenizer. Vectors are synthetic (random
unit vectors, dimension 384 like the model's): embedding ~20k units on 2 shared cores would take
longer than everything else, and speed does not depend on what the vectors mean. Dense questions
are indexed vectors plus noise; lexical questions are the dev gold questions' tokens.

FAISS side ("the FAISS path"): rag.index.make_faiss_index over all units (flat below 20k vectors,
HNSW above, as the product chooses) plus rag.lexical.LexicalIndex; an update rebuilds both from
the per-file data (what an update of the FAISS store does in memory). Milvus side: rag.store.milvus.
MilvusStore, one collection set per run (dropped at the end unless --keep).

`--drift` adds the reports one at a time, then checks the lexical top-10 against one BM25 built
over everything (length normalised per file, as the product), with and without the client's exact
rescoring: per-file means never change when other reports come, so the stored weights stay exact. `--synthetic N` repeats the library's passages under new sources up to N passages
(one vector each) and times both stores again: run it once, it takes minutes on Lite.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # this checkout's rag

from rag.chunking import ChunkSettings, Passage, indexed_text, split_passages  # noqa: E402
from rag.corpus import load_document  # noqa: E402
from rag.index import choose_index_type, make_faiss_index, unit_texts  # noqa: E402
from rag.bm25 import LexicalIndex
from rag.tokens import tokenize  # noqa: E402
from rag.store.milvus import MilvusStore  # noqa: E402
from rag.store import FileData  # noqa: E402

DIM = 384
DEPTH = 50  # rag.retrieve.CANDIDATES: what a hybrid question asks of each side
LIBRARY = Path("/work/shared/library")
GOLD = Path("/work/shared/eval/gold_dev.jsonl")


def unit(v: np.ndarray) -> np.ndarray:
    return (v / np.linalg.norm(v, axis=-1, keepdims=True)).astype(np.float32)


def load_library(rng: np.random.Generator) -> list[FileData]:
    settings = ChunkSettings()
    files = []
    for path in sorted(LIBRARY.rglob("*.md")):
        doc = load_document(path, LIBRARY)
        passages = split_passages(doc, settings)
        if not passages:
            continue
        _, owner = unit_texts(passages, settings)
        counts = [dict(Counter(tokenize(indexed_text(p, settings)))) for p in passages]
        vectors = unit(rng.normal(size=(len(owner), DIM)))
        files.append(FileData(doc.source, doc.sha256, passages, np.array(owner, np.int32), vectors, counts, {}))
    return files


def synthetic(library: list[FileData], n: int, rng: np.random.Generator) -> list[FileData]:
    """n passages: the library's passages and term counts again under new sources, one vector each."""
    pool = [(p, c) for fd in library for p, c in zip(fd.passages, fd.term_counts)]
    files, made, f = [], 0, 0
    while made < n:
        size = min(100, n - made)
        src = f"synthetic/s{f:05d}.md"
        ps, cs = [], []
        for j in range(size):
            p, c = pool[(made + j) % len(pool)]
            ps.append(Passage(f"{src}#{j + 1}", src, p.section, p.start, p.end, p.line_start, p.line_end, p.text, p.kind, p.sentences))
            cs.append(c)
        owner = np.array([[j, -1] for j in range(size)], np.int32)
        files.append(FileData(src, f"sha-{f}", ps, owner, unit(rng.normal(size=(size, DIM))), cs, {}))
        made += size
        f += 1
    return files


class FaissPath:
    """The FAISS side, rebuilt in memory from per-file data (as a FAISS store update does)."""

    def __init__(self, files: list[FileData]) -> None:
        self.build(files)

    def build(self, files: list[FileData]) -> None:
        files = sorted(files, key=lambda f: f.source)
        self.ids = [p.id for fd in files for p in fd.passages]
        offsets = np.cumsum([0] + [len(fd.passages) for fd in files])
        self.unit_passage = np.concatenate([fd.unit_owner[:, 0] + off for fd, off in zip(files, offsets)])
        vectors = np.concatenate([fd.vectors for fd in files])
        self.index_type = choose_index_type(len(vectors))
        self.dense = make_faiss_index(vectors, self.index_type)
        docs = [[t for t, c in counts.items() for _ in range(c)] for fd in files for counts in fd.term_counts]
        self.lexical = LexicalIndex.build(docs, tokenizer=lambda toks: toks, groups=[fd.source for fd in files for _ in fd.passages])

    def search_dense(self, q: np.ndarray, depth: int) -> list[tuple[str, float]]:
        sims, rows = self.dense.search(q.reshape(1, -1), depth * 4)
        best: dict[int, float] = {}
        for s, r in zip(sims[0].tolist(), rows[0].tolist()):
            if r >= 0:
                p = int(self.unit_passage[r])
                best[p] = max(best.get(p, -2.0), s)
        return [(self.ids[p], best[p]) for p in sorted(best, key=lambda p: (-best[p], p))[:depth]]

    def search_lexical(self, tokens: list[str], depth: int) -> list[tuple[str, float]]:
        return [(self.ids[i], s) for i, s in self.lexical.search(tokens, depth)]


class Rows(list):
    """Table rows, each also printed to stderr as soon as it is measured."""

    def append(self, row) -> None:
        print("| " + " | ".join(row) + " |", file=sys.stderr, flush=True)
        super().append(row)


def timed(fn, *args):
    t = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - t, out


def pct(xs: list[float]) -> str:
    xs = sorted(xs)
    p95 = xs[min(len(xs) - 1, int(round(0.95 * (len(xs) - 1))))]
    return f"{statistics.median(xs) * 1000:.1f} / {p95 * 1000:.1f}"


def questions(n: int) -> list[list[str]]:
    qs = [json.loads(line)["question"] for line in GOLD.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [tokenize(q) for q in qs[:n]]


def query_vectors(files: list[FileData], n: int, rng: np.random.Generator) -> list[np.ndarray]:
    allv = np.concatenate([fd.vectors for fd in files])
    picks = rng.choice(len(allv), size=n, replace=False)
    return [unit(allv[i] + rng.normal(scale=0.05, size=DIM)) for i in picks]


def compare(label: str, files: list[FileData], store: MilvusStore, faiss: FaissPath, qvecs, qtoks, rows: list) -> dict:
    """Query both sides; p50/p95 and agreement (top-10) between them."""
    t_first, _ = timed(store.search_dense, qvecs[0], DEPTH)
    md, fd_, ml, fl = [], [], [], []
    same_dense = same_lex = 0
    cands = []
    for q in qvecs:
        t, a = timed(store.search_dense, q, DEPTH)
        md.append(t)
        t, b = timed(faiss.search_dense, q, DEPTH)
        fd_.append(t)
        same_dense += [p for p, _ in a[:10]] == [p for p, _ in b[:10]]
    for toks in qtoks:
        t, a = timed(store.search_lexical, toks, DEPTH)
        ml.append(t)
        cands.append(store.last_lexical_candidates)
        t, b = timed(faiss.search_lexical, toks, DEPTH)
        fl.append(t)
        same_lex += [p for p, _ in a[:10]] == [p for p, _ in b[:10]] and np.allclose([s for _, s in a[:10]], [s for _, s in b[:10]], rtol=1e-4)
    rows.append((label, "dense query p50 / p95 (ms)", pct(fd_), pct(md), f"top-10 identical {same_dense}/{len(qvecs)}; Milvus first query {t_first:.2f} s"))
    rows.append((label, "BM25 query p50 / p95 (ms)", pct(fl), pct(ml), f"top-10 + scores identical {same_lex}/{len(qtoks)}; candidates rescored median {statistics.median(cands):.0f}"))
    return {"same_dense": same_dense, "same_lex": same_lex}


def run_size(label: str, files: list[FileData], args, rng, rows: list, tag: str) -> None:
    n_units = sum(len(fd.unit_owner) for fd in files)
    n_pass = sum(len(fd.passages) for fd in files)
    print(f"# {label}: {len(files)} files, {n_pass} passages, {n_units} vectors", file=sys.stderr, flush=True)
    t_faiss, faiss = timed(FaissPath, files)
    store = MilvusStore(Path(args.uri).parent, "bench-synthetic-384", {"bench": tag}, uri=args.uri, collection=f"bench_{tag}_{int(time.time())}")
    t_milvus, _ = timed(store.apply, files, [])
    rows.append((label, f"build ({len(files)} files, {n_pass} passages, {n_units} vectors)", f"{t_faiss:.1f} s ({faiss.index_type})", f"{t_milvus:.1f} s", ""))
    one = files[len(files) // 2]
    changed = FileData(one.source, one.sha256 + "-v2", one.passages, one.unit_owner, one.vectors, one.term_counts, {})
    t_f, _ = timed(faiss.build, [changed if f.source == one.source else f for f in files])
    t_m, _ = timed(store.apply, [changed], [])
    rows.append((label, f"upsert one report ({len(one.passages)} passages)", f"{t_f:.2f} s (full in-memory rebuild)", f"{t_m:.2f} s", ""))
    compare(label, files, store, faiss, query_vectors(files, args.queries, rng), questions(args.queries), rows)
    if not args.keep:
        for name in store.names.values():
            store._client.drop_collection(name)


def run_drift(files: list[FileData], args, rows: list) -> None:
    """Add reports one at a time; then exact rescoring vs the raw stored weights, against one BM25."""
    store = MilvusStore(Path(args.uri).parent, "bench-synthetic-384", {"bench": "drift"}, uri=args.uri, collection=f"bench_drift_{int(time.time())}")
    times = []
    for fd in files:
        t, _ = timed(store.apply, [fd], [])
        times.append(t)
    faiss = FaissPath(files)
    st = store._state()
    qtoks = questions(args.queries)
    exact = raw = 0
    cands = []
    for toks in qtoks:
        ref = faiss.search_lexical(toks, 10)
        got = store.search_lexical(toks, 10)
        cands.append(store.last_lexical_candidates)
        exact += [p for p, _ in got] == [p for p, _ in ref] and np.allclose([s for _, s in got], [s for _, s in ref], rtol=1e-4)
        q = store._lexical_query(st, toks, st.n_docs, st.df)
        props = store._propose(q, st.visible(), 10) if q else []
        raw += [h["entity"]["pid"] for h in props] == [p for p, _ in ref]
    refs = sorted(st.ref.values())
    rows.append(("library, added one by one", "upsert one report, median / max", "", f"{statistics.median(times):.2f} / {max(times):.2f} s", f"{len(files)} updates"))
    rows.append(("library, added one by one", "BM25 top-10 = one BM25 over everything", "", f"{exact}/{len(qtoks)} (exact rescoring)",
                 f"stored weights alone (Milvus' own ranking): {raw}/{len(qtoks)}; per-file mean lengths {refs[0]:.1f}-{refs[-1]:.1f} (library {st.avgdl:.1f}), never rewritten; candidates rescored median {statistics.median(cands):.0f}, max {max(cands)}"))
    if not args.keep:
        for name in store.names.values():
            store._client.drop_collection(name)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--uri", required=True, help="Milvus Lite path (…/milvus.db) or http(s)://host:19530")
    ap.add_argument("--queries", type=int, default=60)
    ap.add_argument("--drift", action="store_true", help="also add the reports one at a time and check BM25")
    ap.add_argument("--synthetic", type=int, default=0, help="also run at this many synthetic passages (e.g. 100000)")
    ap.add_argument("--keep", action="store_true", help="keep the collections")
    args = ap.parse_args()
    if "://" not in args.uri:
        Path(args.uri).parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    load0 = os.getloadavg()[0]
    t, files = timed(load_library, rng)
    print(f"# library: {len(files)} reports chunked + tokenized in {t:.1f} s", file=sys.stderr, flush=True)
    rows: list = Rows()
    run_size("library", files, args, rng, rows, "lib")
    if args.drift:
        run_drift(files, args, rows)
    if args.synthetic:
        run_size(f"{args.synthetic // 1000}k synthetic", synthetic(files, args.synthetic, rng), args, rng, rows, "syn")
    import milvus_lite
    import pymilvus

    print(f"\n### Milvus vs FAISS ({time.strftime('%Y-%m-%d %H:%M')}, `python benchmarks/milvus.py --uri {args.uri}"
          f"{' --drift' if args.drift else ''}{f' --synthetic {args.synthetic}' if args.synthetic else ''}`, "
          f"pymilvus {pymilvus.__version__}, milvus-lite {milvus_lite.__version__}, load average {load0:.1f} before / {os.getloadavg()[0]:.1f} after)\n")
    print("| data | figure | FAISS | Milvus | notes |\n|---|---|---|---|---|")
    for r in rows:
        print("| " + " | ".join(r) + " |")


if __name__ == "__main__":
    main()
