import pytest

from rag.errors import InvalidArgumentError
from rag.retrieve import fuse


def test_rrf_by_hand():
    # a: 1/(60+1) + 1/(60+2); b: 1/(60+2) + 1/(60+1); c: 1/(60+3); d: 1/(60+1)... only in list 2 at rank 3
    fused = dict(fuse([["a", "b", "c"], ["b", "a", "d"]]))
    assert fused["a"] == pytest.approx(1 / 61 + 1 / 62)
    assert fused["b"] == pytest.approx(1 / 62 + 1 / 61)
    assert fused["c"] == pytest.approx(1 / 63) and fused["d"] == pytest.approx(1 / 63)


def test_rrf_counts_a_duplicate_once_and_ranks_after_it_shift_up():
    fused = dict(fuse([["a", "a", "b"]]))
    assert fused == {"a": pytest.approx(1 / 61), "b": pytest.approx(1 / 62)}


def test_rrf_order_is_best_first():
    assert [x for x, _ in fuse([["x", "y"], ["y", "z"]])] == ["y", "x", "z"]


def test_search_rejects_bad_k_and_mode(hash_assistant):
    with pytest.raises(InvalidArgumentError):
        hash_assistant.ask("东盟", k=0)
    with pytest.raises(InvalidArgumentError):
        hash_assistant.ask("东盟", mode="magic")


def test_bridge_terms_keep_distinct_chinese_words_the_corpus_uses():
    from rag.retrieve import bridge_terms, dense_query

    tokens = ["ageing", "人口老龄化", "人口", "老龄化", "老龄", "银发族", "population", "人口老龄化"]
    vocab = {"人口老龄化", "人口", "老龄化", "老龄"}
    assert bridge_terms(tokens, vocab) == ["人口老龄化"]  # parts of a kept word and unknown words add nothing
    assert dense_query("What about ageing?", tokens, vocab) == "What about ageing? 人口老龄化"
    assert dense_query("人口老龄化怎么办？", tokens, vocab) == "人口老龄化怎么办？"  # Chinese questions are left alone
