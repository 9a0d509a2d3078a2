"""BM25 tokens: Chinese words and bigrams, Latin words, numbers; Traditional folded to Simplified."""

from __future__ import annotations

from rag.tokens import english_key, tokenize


def test_tokenize_keeps_acronyms_numbers_and_chinese_words():
    toks = tokenize("美国提出“印太经济框架”（IPEF），2022年增长5.1%。COP27 与 G20")
    assert "ipef" in toks and "cop27" in toks and "g20" in toks
    assert "2022" in toks and "5.1" in toks
    assert "美国" in toks and "框架" in toks
    # no punctuation or whitespace tokens
    assert all(t.strip() and any(c.isalnum() for c in t) for t in toks)


def test_tokenize_gives_words_and_overlapping_bigrams():
    toks = tokenize("气候变化")
    assert "气候变化" in toks  # the rjieba word
    assert {"气候", "候变", "变化"} <= set(toks)  # every character pair


def test_tokenize_lowercases_english_and_folds_acronym_plurals():
    toks = tokenize("The ASEAN Way and the 5Cs")
    assert "asean" in toks and "5c" in toks and "way" in toks
    assert all(t == t.lower() for t in toks)


def test_singular_and_plural_give_the_same_token():
    assert tokenize("alliances countries") == tokenize("alliance country")


def test_tokenize_traditional_equals_simplified():
    assert tokenize("東南亞國家聯盟與區域經濟一體化") == tokenize("东南亚国家联盟与区域经济一体化")


def test_tokenize_joins_words_broken_across_lines():
    assert tokenize("华盛\n顿政客") == tokenize("华盛顿政客")


def test_full_width_latin_and_possessives_are_normalised():
    assert tokenize("ＲＣＥＰ's members") == tokenize("RCEP members")


def test_tokenize_empty_and_punctuation_only():
    assert tokenize("") == []
    assert tokenize("，。！？  ——") == []


def test_english_key_is_the_phrase_as_tokens_see_it():
    assert english_key("Out-competes") == english_key("out compete")
    assert english_key("印太经济框架") == ""


def test_english_words_are_stemmed_not_mangled():
    # The hand-written plural folding turned "news" into "new" and "series" into "sery".
    assert tokenize("news") != tokenize("new")
    assert tokenize("series") == tokenize("serie") != ["sery"]
    assert tokenize("strengthening strengthened") == tokenize("strengthen strengthen")
    assert tokenize("IPEF COP27 5.1") == ["ipef", "cop27", "5.1"]  # acronyms and numbers kept whole
