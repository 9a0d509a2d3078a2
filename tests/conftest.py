"""Shared fixtures: a tiny deterministic encoder, small corpora, and the real report."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
REPORT = ROOT / "corpus" / "ciss-2022-asia-pacific-community-outlook.txt"


class HashEncoder:
    """Bag of character bigrams hashed into 64 dimensions: deterministic, instant, offline."""

    name = "hash-bigram-64"
    dim = 64

    def _one(self, text: str) -> np.ndarray:
        v = np.zeros(self.dim, dtype=np.float32)
        for a, b in zip(text, text[1:]):
            v[int(hashlib.md5((a + b).encode()).hexdigest()[:8], 16) % self.dim] += 1.0
        n = np.linalg.norm(v)
        return v / n if n else v

    def encode_queries(self, texts):
        return np.stack([self._one(t) for t in texts]) if texts else np.zeros((0, self.dim), np.float32)

    def encode_passages(self, texts, progress=None):
        out = self.encode_queries(list(texts))
        if progress:
            progress(len(texts))
        return out


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch, tmp_path_factory):
    """No test writes to the project's indexes/ or the user's cache by accident."""
    monkeypatch.setenv("RAG_INDEX_DIR", str(tmp_path_factory.mktemp("default-indexes")))
    for var in ("RAG_CORPUS_DIR", "RAG_MODEL", "RAG_HOME", "RAG_QUERY_ENGINE"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def report_corpus(tmp_path) -> Path:
    """A corpus folder holding only the real report (and its metadata)."""
    d = tmp_path / "corpus"
    d.mkdir()
    shutil.copy(REPORT, d / REPORT.name)
    shutil.copy(REPORT.with_name(REPORT.stem + ".meta.json"), d)
    return d


@pytest.fixture
def hash_assistant(report_corpus, tmp_path):
    from rag.assistant import Assistant

    return Assistant(corpus_dir=report_corpus, index_dir=tmp_path / "indexes", encoder=HashEncoder(), on_notice=lambda m: None)


def built_hash_assistant(folder: Path):
    """An Assistant over a copy of the report in `folder`, hash encoder, index already built."""
    from rag.assistant import Assistant

    (folder / "corpus").mkdir()
    shutil.copy(REPORT, folder / "corpus" / REPORT.name)
    a = Assistant(corpus_dir=folder / "corpus", index_dir=folder / "indexes", encoder=HashEncoder(), on_notice=lambda m: None)
    a.index()
    return a


@pytest.fixture(scope="session")
def dictionary_cache(tmp_path_factory) -> Path:
    """One private folder per session for the CC-CEDICT tables (never the user's cache)."""
    return tmp_path_factory.mktemp("dictionary-cache")


@pytest.fixture(scope="session")
def real_env(tmp_path_factory):
    """Environment for the real default model: a session cache (converted once) and index dir."""
    cache = tmp_path_factory.mktemp("model-cache")
    index = tmp_path_factory.mktemp("real-index")
    return {"RAG_CACHE_DIR": str(cache), "RAG_INDEX_DIR": str(index)}


@pytest.fixture(scope="session")
def real_assistant(real_env):
    """The product as shipped: default model, the project's corpus, index built once per session."""
    from rag.assistant import Assistant

    with pytest.MonkeyPatch.context() as mp:
        for k, v in real_env.items():
            mp.setenv(k, v)
        a = Assistant(on_notice=lambda m: None)
        a.index()
        yield a
