"""`rag` on a library: the CISS report plus the 80 reports of /work/shared/library, indexed together.

    python benchmarks/library.py                      # ~10 min on an idle 2-core machine
    python benchmarks/library.py --library DIR --questions eval/gold_dev.jsonl

Prints, as Markdown:

* the full build from scratch (`rag index`, model already converted): wall and CPU time, passages,
  vectors, vectors/s, peak RSS, and where the time went (the update's own phase timings);
* adding one report to the built library (`rag index` again: only that report is embedded), next to
  indexing that report alone in an empty index (the target: the add takes at most twice as long);
* removing that report again;
* warm questions at library size through the Python API (every dev-set question, hybrid, k=5):
  p50 / p95, and that process's peak RSS.

The corpus is COPIED into a temporary folder outside the project (`rag` refuses links that leave the
corpus folder), indexes go to temporary folders, and the model cache is the user's (the model is
converted once there, as on any machine). Other processes on the 2-core machine slow every figure:
the load average is printed before and after, and CPU seconds next to wall seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REPORT = ROOT / "corpus" / "ciss-2022-asia-pacific-community-outlook.txt"


def run(cmd: list[str], env: dict[str, str]) -> dict:
    """Wall seconds, CPU seconds, peak RSS (MB), stdout and stderr of one child process."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out: list[str] = []
    err: list[str] = []
    readers = [threading.Thread(target=lambda s=s, k=k: k.append(s.read())) for s, k in ((proc.stdout, out), (proc.stderr, err))]
    for r in readers:
        r.start()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    for r in readers:
        r.join()
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{''.join(err)[-3000:]}")
    return {"wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "rss": usage.ru_maxrss // 1024,
            "out": "".join(out), "err": "".join(err)}


def rag_index(corpus: Path, index: Path, env: dict[str, str]) -> dict:
    r = run([sys.executable, "-m", "rag", "index", "--corpus", str(corpus), "--index-dir", str(index)], env)
    m = re.search(r"Indexed (\d+) passages \((\d+) vectors", r["out"])
    r["passages"], r["vectors"] = (int(m.group(1)), int(m.group(2))) if m else (0, 0)
    r["line"] = r["out"].strip().splitlines()[-1]
    return r


def make_corpus(folder: Path, library: Path, holdout: str | None) -> list[Path]:
    folder.mkdir(parents=True)
    shutil.copy(REPORT, folder / REPORT.name)
    shutil.copy(REPORT.with_name(REPORT.stem + ".meta.json"), folder)
    reports = sorted(p for p in library.glob("*.md") if p.name.lower() != "readme.md")
    for p in reports:
        if p.name != holdout:
            shutil.copy(p, folder / p.name)
    return reports


def warm_queries(corpus: Path, index: Path, questions: Path) -> dict:
    """p50/p95 of hybrid k=5 asks over every question, in a fresh process (peak RSS is that process's)."""
    code = f"""
import json, resource, statistics, time
from pathlib import Path
from rag.assistant import Assistant
a = Assistant(corpus_dir=Path({str(corpus)!r}), index_dir=Path({str(index)!r}), auto_build=False)
qs = [json.loads(l)["question"] for l in Path({str(questions)!r}).read_text(encoding="utf-8").splitlines() if l.strip()]
for q in qs[:5]:
    a.ask(q)
times = []
for q in qs:
    t = time.perf_counter(); a.ask(q, k=5); times.append((time.perf_counter() - t) * 1000)
times.sort()
print(json.dumps({{"n": len(times), "p50": statistics.median(times), "p95": times[int(0.95 * (len(times) - 1))],
                  "rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024, "passages": len(a.passages())}}))
"""
    r = run([sys.executable, "-c", code], env_for())
    return json.loads(r["out"].strip().splitlines()[-1])


def env_for(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("RAG_HOME", "RAG_CORPUS_DIR", "RAG_MODEL", "RAG_INDEX_DIR")}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra)
    return env


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--library", type=Path, default=Path("/work/shared/library"))
    ap.add_argument("--questions", type=Path, default=ROOT / "eval" / "gold_dev.jsonl")
    ap.add_argument("--holdout", default=None, help="The report added and removed (default: the largest).")
    ap.add_argument("--keep", type=Path, default=None, help="Work in this folder and keep it (default: a temp folder).")
    args = ap.parse_args()
    reports = sorted(p for p in args.library.glob("*.md") if p.name.lower() != "readme.md")
    holdout = args.holdout or max(reports, key=lambda p: p.stat().st_size).name
    work = args.keep or Path(tempfile.mkdtemp(prefix="rag-library-"))
    env = env_for()
    load_before = os.getloadavg()
    try:
        corpus = work / "library" / "corpus"
        make_corpus(corpus, args.library, holdout)
        index = work / "library-index"
        print(f"building {len(reports)} reports + the CISS report, holding out {holdout} …", file=sys.stderr, flush=True)
        full = rag_index(corpus, index, env)
        shutil.copy(args.library / holdout, corpus / holdout)
        add = rag_index(corpus, index, env)
        alone_corpus = work / "alone" / "corpus"
        alone_corpus.mkdir(parents=True)
        shutil.copy(args.library / holdout, alone_corpus / holdout)
        alone = rag_index(alone_corpus, work / "alone-index", env)
        (corpus / holdout).unlink()
        remove = rag_index(corpus, index, env)
        warm = warm_queries(corpus, index, args.questions)
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    load_after = os.getloadavg()

    commit = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    print(f"### rag on a library ({time.strftime('%Y-%m-%d %H:%M')}, commit {commit}, {os.cpu_count()} cores, "
          f"load average {load_before[0]:.1f} before / {load_after[0]:.1f} after)\n")
    print("| figure | wall | CPU | |\n|---|---|---|---|")
    print(f"| full build: {len(reports) - 1} + 1 reports, {full['passages']} passages, {full['vectors']} vectors | "
          f"{full['wall']:.1f} s | {full['cpu']:.1f} s | {full['vectors'] / full['wall']:.1f} vectors/s wall, "
          f"{full['vectors'] / full['cpu']:.1f} per CPU-s; peak RSS {full['rss']} MB; target ≤ 300 s |")
    print(f"| add one report ({holdout}) | {add['wall']:.1f} s | {add['cpu']:.1f} s | {add['line'].split(': ', 1)[-1]} |")
    print(f"| that report indexed alone | {alone['wall']:.1f} s | {alone['cpu']:.1f} s | add / alone = "
          f"{add['wall'] / alone['wall']:.2f} (target ≤ 2) |")
    print(f"| remove it again | {remove['wall']:.1f} s | {remove['cpu']:.1f} s | {remove['line'].split(': ', 1)[-1]} |")
    print(f"| warm question, hybrid k=5, {warm['n']} dev questions, {warm['passages']} passages | "
          f"p50 {warm['p50']:.1f} ms / p95 {warm['p95']:.1f} ms | | peak RSS {warm['rss']} MB |")
    print(f"\nFull build output: `{full['line']}`")
    return 0


if __name__ == "__main__":
    sys.exit(main())
