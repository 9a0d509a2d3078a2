"""Same answers on both stores: the gold questions through the whole pipeline (Python API, hybrid,
k = 10) on the FAISS store and on a Milvus store filled from it (same passages and vectors).

    python benchmarks/milvus_equality.py --corpus /tmp/libcorpus --index-dir /tmp/milvus-lib/indexes \\
        --uri /tmp/milvus-lib/milvus.db

The FAISS index under --index-dir is built if needed; `rag index --store milvus` then copies its
passages and vectors into Milvus (nothing is embedded twice). Prints the share of questions with
the same top-10 (ids, in order), R@5 / MRR@10 per set and language on both stores, and the time
per question. Only aggregate figures are printed (lockbox half B is held out).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rag.assistant import Assistant  # noqa: E402
from rag.evaluate import evaluate, headlines, load_gold  # noqa: E402


class Recorder:
    """An assistant whose answers' top-k ids are kept, per question."""

    def __init__(self, inner, tops: dict):
        self.inner, self.tops = inner, tops

    def __getattr__(self, attr):
        return getattr(self.inner, attr)

    def ask(self, question, **kw):
        answer = self.inner.ask(question, **kw)
        self.tops[question] = [h.passage.id for h in answer.hits]
        return answer


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", type=Path, default=ROOT / "corpus")
    ap.add_argument("--index-dir", type=Path, required=True)
    ap.add_argument("--uri", required=True, help="Milvus URI (a .db path = Milvus Lite)")
    ap.add_argument("--gold", type=Path, nargs="*", default=[ROOT / "eval" / "gold_dev.jsonl", ROOT / "eval" / "gold_lockbox.jsonl"])
    args = ap.parse_args()

    quiet = lambda m: None  # noqa: E731
    faiss = Assistant(corpus_dir=args.corpus, index_dir=args.index_dir, on_notice=quiet)
    t0 = time.perf_counter()
    faiss.index()
    t_faiss = time.perf_counter() - t0
    milvus = Assistant(corpus_dir=args.corpus, index_dir=args.index_dir, store="milvus", milvus_uri=args.uri, on_notice=quiet)
    t0 = time.perf_counter()
    milvus.index()
    t_milvus = time.perf_counter() - t0
    update = milvus.last_update.line() if milvus.last_update else "up to date"
    cases = load_gold(args.gold)
    tops: dict[str, dict[str, list[str]]] = {"faiss": {}, "milvus": {}}
    reports = {}
    for name, a in (("faiss", faiss), ("milvus", milvus)):
        reports[name] = evaluate(Recorder(a, tops[name]), cases, k=10, mode="hybrid")
    same = sum(tops["faiss"][q] == tops["milvus"][q] for q in tops["faiss"])
    n = len(tops["faiss"])
    m = faiss.index().manifest
    print(f"### FAISS vs Milvus, same questions ({time.strftime('%Y-%m-%d %H:%M')}, corpus {args.corpus}, "
          f"{len(m.corpus)} files, {m.passages} passages, {m.units} vectors; Milvus {args.uri})\n")
    print(f"- index: FAISS ready in {t_faiss:.1f} s; Milvus in {t_milvus:.1f} s ({update})")
    print(f"- same top-10 (ids in order): {same}/{n} = {100 * same / n:.1f} %")
    for name, r in reports.items():
        lat = [x.latency_ms for x in r.results]
        print(f"- {name}: overall R@5 {r.overall.recall_5:.3f}, MRR@10 {r.overall.mrr_10:.3f}; "
              f"not found flagged {sum(x.not_found for x in r.results)}; question p50 {statistics.median(lat):.0f} ms")
    print("\n| set | store | n | zh R@5 | zh MRR@10 | en R@5 | en MRR@10 |\n|---|---|---|---|---|---|---|")
    rows = {name: {h.set: h for h in headlines(r)} for name, r in reports.items()}
    for s in rows["faiss"]:
        for name in rows:
            h = rows[name][s]
            f = lambda x: "–" if x is None else f"{x:.3f}"  # noqa: E731
            print(f"| {s} | {name} | {h.n} | {f(h.zh_recall_5)} | {f(h.zh_mrr_10)} | {f(h.en_recall_5)} | {f(h.en_mrr_10)} |")
    equal = all(
        tuple(None if x is None else round(x, 2) for x in (h.zh_recall_5, h.zh_mrr_10, h.en_recall_5, h.en_mrr_10))
        == tuple(None if x is None else round(x, 2) for x in (g.zh_recall_5, g.zh_mrr_10, g.en_recall_5, g.en_mrr_10))
        for s, h in rows["faiss"].items() for g in [rows["milvus"][s]]
    )
    print(f"\nR@5 / MRR@10 identical to two decimals on every set: {'yes' if equal else 'NO'}")


if __name__ == "__main__":
    main()
