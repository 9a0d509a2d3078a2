"""The BM25 index: search, persistence without pickle, damage reported as damage."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

from rag.bm25 import LexicalIndex
from rag.errors import IndexCorruptError, IndexMissingError
from rag.tokens import tokenize

from .conftest import PASSAGES



@pytest.fixture(scope="module")
def index() -> LexicalIndex:
    return LexicalIndex.build(PASSAGES)


def test_the_passage_holding_the_words_ranks_first(index):
    assert index.search(tokenize("RCEP 生效"), 3)[0][0] == 1
    assert index.search(tokenize("气候变化"), 3)[0][0] == 4


def test_postings_list_the_passages_holding_a_token(index):
    assert index.postings("东盟").tolist() == [0, 3]
    assert index.postings("不存在").tolist() == []


def test_empty_queries_and_k_zero_find_nothing(index):
    assert index.search([], 5) == []
    assert index.search(tokenize("，。"), 5) == []
    assert index.search(["完全不存在的词"], 5) == []
    assert index.search(tokenize("气候"), 0) == []


def test_search_results_are_positive_best_first_and_at_most_k(index):
    hits = index.search(tokenize("东盟国家 经济 区域 2022"), 3)
    assert 0 < len(hits) <= 3
    scores = [s for _, s in hits]
    assert all(s > 0 for s in scores)
    assert scores == sorted(scores, reverse=True)
    assert all(isinstance(p, int) and 0 <= p < len(PASSAGES) for p, _ in hits)


def test_empty_index():
    empty = LexicalIndex.build([])
    assert len(empty) == 0
    assert empty.search(["气候"], 5) == []


def test_save_load_round_trip_gives_identical_results(index, tmp_path):
    index.save(tmp_path)
    loaded = LexicalIndex.load(tmp_path)
    for q in ["RCEP", "報告如何描述氣候變化？", "集合威慑", "東盟 南海 行为准则"]:
        toks = tokenize(q)
        assert loaded.search(toks, 10) == index.search(toks, 10)
    assert loaded.vocab == index.vocab


def test_saved_files_are_npz_and_json_without_pickle(index, tmp_path):
    index.save(tmp_path)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["bm25.json", "bm25.npz"]
    json.loads((tmp_path / "bm25.json").read_text(encoding="utf-8"))
    with np.load(tmp_path / "bm25.npz", allow_pickle=False) as z:
        for name in z.files:
            assert z[name].dtype != object
    # every member is a plain .npy array, none a pickled object
    with zipfile.ZipFile(tmp_path / "bm25.npz") as zf:
        assert sorted(zf.namelist()) == ["doc_ids.npy", "indptr.npy", "scores.npy"]


def test_load_missing_and_damaged(index, tmp_path):
    with pytest.raises(IndexMissingError):
        LexicalIndex.load(tmp_path / "nothing-here")
    index.save(tmp_path)
    (tmp_path / "bm25.npz").write_bytes(b"not a zip file")
    with pytest.raises(IndexCorruptError):
        LexicalIndex.load(tmp_path)
    index.save(tmp_path)
    meta = json.loads((tmp_path / "bm25.json").read_text(encoding="utf-8"))
    meta["terms"] = meta["terms"][:-1]
    (tmp_path / "bm25.json").write_text(json.dumps(meta), encoding="utf-8")
    with pytest.raises(IndexCorruptError):
        LexicalIndex.load(tmp_path)


def _damaged_meta(meta: dict) -> list:
    return [
        "{not json",
        json.dumps([1, 2, 3]),
        json.dumps({k: v for k, v in meta.items() if k != "terms"}),
        json.dumps({**meta, "n_docs": "many"}),
        json.dumps({**meta, "n_docs": None}),
        json.dumps({**meta, "terms": 7}),
        json.dumps({**meta, "version": 99}),
    ]


def test_every_kind_of_damage_is_reported_as_a_damaged_index(index, tmp_path):
    index.save(tmp_path)
    arrays = (tmp_path / "bm25.npz").read_bytes()
    meta = json.loads((tmp_path / "bm25.json").read_text(encoding="utf-8"))
    good_meta = json.dumps(meta)
    for cut in (0, 10, 100, len(arrays) // 2, len(arrays) - 30, len(arrays) - 1):
        (tmp_path / "bm25.npz").write_bytes(arrays[:cut])
        with pytest.raises(IndexCorruptError):
            LexicalIndex.load(tmp_path)
    (tmp_path / "bm25.npz").write_bytes(arrays)
    for text in _damaged_meta(meta):
        (tmp_path / "bm25.json").write_text(text, encoding="utf-8")
        with pytest.raises(IndexCorruptError):
            LexicalIndex.load(tmp_path)
    (tmp_path / "bm25.json").write_bytes(b"\xff\xfe garbage")
    with pytest.raises(IndexCorruptError):
        LexicalIndex.load(tmp_path)
    (tmp_path / "bm25.json").write_text(good_meta, encoding="utf-8")
    assert LexicalIndex.load(tmp_path).search(tokenize("气候"), 1)[0][0] == 4


def test_a_bug_is_not_reported_as_damage(index, tmp_path, monkeypatch):
    """Only what damaged files raise means "damaged": a programming error surfaces as itself."""
    index.save(tmp_path)

    def broken(*args, **kwargs):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(np, "load", broken)
    with pytest.raises(ZeroDivisionError):
        LexicalIndex.load(tmp_path)


def test_bm25_scores_equal_the_bm25s_reference_on_the_report():
    """Our numpy BM25 (fast to load, no scipy) must score exactly as bm25s does (k1 1.5, b 0.75)."""
    import bm25s  # a test dependency (pyproject [test]): the reference implementation
    from rag.chunking import ChunkSettings, indexed_text, split_passages
    from rag.corpus import load_document

    from .conftest import REPORT

    texts = [indexed_text(p, ChunkSettings()) for p in split_passages(load_document(REPORT, REPORT.parent))]
    ours = LexicalIndex.build(texts)
    ref = bm25s.BM25(k1=1.5, b=0.75)
    ref.index([tokenize(t) for t in texts], show_progress=False)
    for q in ["东盟在地区合作中的中心地位", "人口老龄化 人口老龄化", "IPEF 印太经济框架", "RCEP 东盟 东盟 东盟"]:
        qt = tokenize(q)
        np.testing.assert_allclose(ours.score(qt), ref.get_scores(qt), rtol=1e-5, atol=1e-5)


def test_length_is_normalised_per_file_when_groups_are_given():
    long_file = ["东盟 峰会 " + "合作 " * 80, "南海 行为准则 " + "磋商 " * 80]
    short_file = ["东盟 天气", "峰会 城市", "预报 天气"]
    texts = long_file + short_file
    groups = ["a"] * 2 + ["b"] * 3
    plain = LexicalIndex.build(texts)
    grouped = LexicalIndex.build(texts, groups=groups)
    query = ["东盟"]
    # Against the corpus-wide mean, the long file's passage is "long" and ranks below a short one
    # with the same word once; against its own file's mean it is ordinary and they score alike.
    assert [p for p, _ in plain.search(query, 2)] == [2, 0]
    top = grouped.search(query, 2)
    assert [p for p, _ in top] == [0, 2] and abs(top[0][1] - top[1][1]) < 0.01
    assert grouped.params["length_norm"] == "per-file" and plain.params["length_norm"] == "corpus"
    # One file: exactly the corpus-wide normalisation.
    one = LexicalIndex.build(texts, groups=["x"] * len(texts))
    assert np.array_equal(one.scores, plain.scores) and np.array_equal(one.doc_ids, plain.doc_ids)


def test_the_renderings_of_one_word_count_as_one_term():
    # "security" -> 安全 (common: most passages) or 安保 (rare: one passage of another report).
    texts = ["地区安全形势", "安全合作", "经济安全", "能源安全", "安全对话", "球场安保人员", "天气晴朗"]
    index = LexicalIndex.build(texts)
    query = tokenize("安全 安保")
    assert index.search(query, 1)[0][0] == 5  # alone, the rare sense is the most telling word
    weights = index.group_weights([(("安全", "安保"), query)])
    assert 0 < weights["安保"] < weights["安全"] < 1  # the rarer sense is scaled down most
    # One term's IDF: that of the passages holding either rendering.
    assert index.doc_freq(["安全", "安保"]) == 6
    assert weights["安保"] == pytest.approx(index.idf(6) / index.idf(1))
    scores = index.score(query, weights)
    assert scores[5] <= max(scores[:5])
    assert index.search(query, 1, weights)[0][0] != 5
    assert index.group_weights([(("不存在",), ["不存在"])]) == {}  # a group no passage holds changes nothing


def test_search_in_ranks_one_files_passages_as_an_index_of_that_file_alone():
    # File a: 合作 in every passage (its own recurring word); file b: 合作 in one passage of three.
    a = ["东盟 合作 峰会", "南海 合作 磋商", "合作 机制 东盟 东盟", "经济 合作"]
    b = ["城市 天气 预报", "天气 合作", "城市 交通"]
    library = LexicalIndex.build(a + b, tokenizer=str.split, groups=["a"] * 4 + ["b"] * 3)
    alone = LexicalIndex.build(a, tokenizer=str.split, groups=["a"] * 4)
    for query in (["合作", "东盟"], ["南海", "合作", "合作"], ["经济"], ["天气"]):
        got = library.search_in(query, 10, (0, 4))
        want = alone.search(query, 10)
        assert [p for p, _ in got] == [p for p, _ in want], query
        np.testing.assert_allclose([s for _, s in got], [s for _, s in want], rtol=1e-5)
    # Positions are the library's; only the file's own passages; k and weights as in `search`.
    assert sorted(p for p, _ in library.search_in(["天气"], 10, (4, 7))) == [4, 5]
    assert len(library.search_in(["合作", "东盟"], 2, (0, 4))) == 2
    assert library.search_in([], 5, (0, 4)) == [] and library.search_in(["合作"], 0, (0, 4)) == []
    half = library.search_in(["经济"], 1, (0, 4), {"经济": 0.5})[0][1]
    assert half == pytest.approx(0.5 * library.search_in(["经济"], 1, (0, 4))[0][1])
