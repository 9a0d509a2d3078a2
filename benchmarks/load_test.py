"""Bounded load run against `rag serve` on 127.0.0.1 with the real default model.

    python benchmarks/load_test.py                      # starts `rag serve` on a free loopback port
    python benchmarks/load_test.py --clients 16 --total 5000 --bad 0.02 --out load.json
    python benchmarks/load_test.py --url http://127.0.0.1:8000   # an already running server

Questions are the gold set's (eval/gold_dev.jsonl, Chinese and English, shuffled), asked with
POST /ask (k = 5, mostly hybrid, some dense and bm25); about 2% are bad requests (empty question,
k = 0, k = 10 000, unknown mode, malformed JSON, a 100 KB body, an unknown passage) that must get a
4xx. Each good answer is compared with the answer the same server gave to the same question when
asked alone before the run, so a concurrency bug shows up as a mismatch, not just as an error.

Reports throughput, latency percentiles, status counts, dropped requests (connection errors or
timeouts) and mismatches. Only loopback addresses are used.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlparse

import httpx

ROOT = Path(__file__).resolve().parent.parent
GOLD = ROOT / "eval" / "gold_dev.jsonl"
MODES = ["hybrid"] * 8 + ["dense", "bm25"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(port: int, workers: int | None) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "rag", "serve", "--host", "127.0.0.1", "--port", str(port)]
    if workers:
        cmd += ["--workers", str(workers)]
    return subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def wait_ready(url: str, proc: subprocess.Popen | None, timeout: float) -> dict:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            raise SystemExit(f"rag serve exited with {proc.returncode}: {proc.stderr.read()}")
        try:
            r = httpx.get(url + "/healthz", timeout=2)
            if r.status_code == 200:
                return r.json()
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    raise SystemExit(f"rag serve did not answer /healthz within {timeout:.0f} s")


def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def bad_requests() -> list[tuple[str, str, dict]]:
    return [
        ("empty question", "/ask", {"json": {"question": "   "}}),
        ("k=0", "/ask", {"json": {"question": "东盟", "k": 0}}),
        ("k=10000", "/ask", {"json": {"question": "东盟", "k": 10_000}}),
        ("unknown mode", "/ask", {"json": {"question": "ASEAN", "mode": "magic"}}),
        ("malformed json", "/ask", {"content": b'{"question": "ASEAN"', "headers": {"content-type": "application/json"}}),
        ("huge body", "/ask", {"json": {"question": "x" * 100_000}}),
        ("unknown passage", "/passages/corpus/none.txt%231", {}),
    ]


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    i = min(len(values) - 1, max(0, round(q / 100 * (len(values) - 1))))
    return values[i]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--total", type=int, default=5000)
    ap.add_argument("--bad", type=float, default=0.02, help="fraction of bad requests")
    ap.add_argument("--k", type=int, default=5)
    ap.add_argument("--url", help="an already running server (loopback only); default: start rag serve")
    ap.add_argument("--workers", type=int, help="rag serve --workers")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--timeout", type=float, default=60.0, help="per request, seconds")
    ap.add_argument("--out", type=Path, help="also write the figures as JSON here")
    args = ap.parse_args()

    proc = None
    if args.url:
        url = args.url.rstrip("/")
        if urlparse(url).hostname not in ("127.0.0.1", "localhost", "::1"):
            raise SystemExit("only loopback servers are load-tested")
    else:
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        proc = start_server(port, args.workers)
    try:
        t_start = time.perf_counter()
        health = wait_ready(url, proc, timeout=600)
        startup = time.perf_counter() - t_start
        print(f"server ready in {startup:.1f} s: {health}", flush=True)
        rss_before = rss_mb(proc.pid) if proc else None

        gold = [json.loads(line) for line in GOLD.read_text(encoding="utf-8").splitlines() if line.strip()]
        rng = random.Random(args.seed)
        bad = bad_requests()
        n_bad = round(args.total * args.bad)
        jobs: list[tuple] = [("good", gold[i % len(gold)], MODES[rng.randrange(len(MODES))]) for i in range(args.total - n_bad)]
        jobs += [("bad", bad[i % len(bad)], None) for i in range(n_bad)]
        rng.shuffle(jobs)

        # Reference answers, one question at a time, for the mismatch check.
        reference: dict[tuple[str, str], list[str]] = {}
        with httpx.Client(base_url=url, timeout=args.timeout) as c:
            for g in gold:
                for mode in sorted(set(MODES)):
                    r = c.post("/ask", json={"question": g["question"], "k": args.k, "mode": mode})
                    r.raise_for_status()
                    reference[(g["question"], mode)] = [p["id"] for p in r.json()["passages"]]
        print(f"reference answers: {len(reference)}", flush=True)

        lock = threading.Lock()
        cursor = iter(jobs)
        latencies: list[float] = []
        all_latencies: list[float] = []
        statuses: Counter = Counter()
        bad_statuses: Counter = Counter()
        dropped: Counter = Counter()
        mismatches: list[str] = []
        unexpected: list[str] = []

        def client() -> None:
            with httpx.Client(base_url=url, timeout=args.timeout) as c:
                while True:
                    with lock:
                        job = next(cursor, None)
                    if job is None:
                        return
                    kind, item, mode = job
                    t0 = time.perf_counter()
                    try:
                        if kind == "good":
                            r = c.post("/ask", json={"question": item["question"], "k": args.k, "mode": mode, "id": item["id"]})
                        else:
                            name, path, kw = item
                            r = c.get(path) if path.startswith("/passages") else c.post(path, **kw)
                    except httpx.HTTPError as exc:
                        with lock:
                            dropped[type(exc).__name__] += 1
                        continue
                    dt = time.perf_counter() - t0
                    with lock:
                        statuses[r.status_code] += 1
                        all_latencies.append(dt)
                        if kind == "good":
                            latencies.append(dt)
                            if r.status_code != 200:
                                unexpected.append(f"{item['id']}: {r.status_code} {r.text[:200]}")
                            elif [p["id"] for p in r.json()["passages"]] != reference[(item["question"], mode)]:
                                mismatches.append(item["id"])
                        else:
                            bad_statuses[(item[0], r.status_code)] += 1
                            if not 400 <= r.status_code < 500 or "error" not in r.json():
                                unexpected.append(f"{item[0]}: {r.status_code} {r.text[:200]}")

        threads = [threading.Thread(target=client) for _ in range(args.clients)]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - t0
        rss_after = rss_mb(proc.pid) if proc else None
        if proc is not None and proc.poll() is not None:
            unexpected.append(f"server died with exit code {proc.returncode}")

        n5xx = sum(v for s, v in statuses.items() if s >= 500)
        n4xx = sum(v for s, v in statuses.items() if 400 <= s < 500)
        figures = {
            "clients": args.clients,
            "requests": len(jobs),
            "good_requests": len(jobs) - n_bad,
            "bad_requests": n_bad,
            "elapsed_s": round(elapsed, 2),
            "throughput_rps": round(sum(statuses.values()) / elapsed, 1),
            "latency_ms_good": {
                "p50": round(1000 * percentile(latencies, 50), 1),
                "p90": round(1000 * percentile(latencies, 90), 1),
                "p99": round(1000 * percentile(latencies, 99), 1),
                "max": round(1000 * max(latencies), 1) if latencies else None,
                "mean": round(1000 * statistics.fmean(latencies), 1) if latencies else None,
            },
            "latency_ms_all": {"p50": round(1000 * percentile(all_latencies, 50), 1), "p99": round(1000 * percentile(all_latencies, 99), 1)},
            "status_counts": {str(k): v for k, v in sorted(statuses.items())},
            "4xx": n4xx,
            "5xx": n5xx,
            "dropped": sum(dropped.values()),
            "dropped_by_kind": dict(dropped),
            "mismatched_answers": len(mismatches),
            "unexpected": unexpected[:20],
            "bad_request_statuses": {f"{n} -> {s}": v for (n, s), v in sorted(bad_statuses.items())},
            "server": {"startup_s": round(startup, 1), "rss_mb_before": rss_before, "rss_mb_after": rss_after, **health},
            "cpus": os.cpu_count(),
        }
        print(json.dumps(figures, ensure_ascii=False, indent=1))
        if args.out:
            args.out.write_text(json.dumps(figures, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
        ok = n5xx == 0 and not dropped and not mismatches and not unexpected
        print("PASS" if ok else "FAIL", flush=True)
        sys.exit(0 if ok else 1)
    finally:
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


if __name__ == "__main__":
    main()
