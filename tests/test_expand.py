"""Query expansion: a question's tokens, plus the Chinese an English question needs."""

from __future__ import annotations

import pytest

from rag.bm25 import LexicalIndex
from rag.expand import expand_query
from rag.terms import extract_term_pairs
from rag.tokens import tokenize

from .conftest import PASSAGES



pytestmark = pytest.mark.usefixtures("private_dictionary")


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


def test_acronym_query_finds_the_passage_containing_it(index, pairs):
    assert top(index, expand_query("What is RCEP?", pairs)) == 1
    assert top(index, expand_query("COC磋商进展如何？", pairs)) == 3


def test_an_acronym_in_a_chinese_question_adds_the_reports_term(pairs):
    assert set(tokenize("南海行为准则")) <= set(expand_query("COC磋商进展如何？", pairs))


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


def test_dictionary_lets_english_questions_match_chinese_passages(index):
    toks = expand_query("How do China and the US talk about climate change?", {})
    assert "气候" in toks
    assert top(index, toks) == 4
    assert top(index, expand_query("Which alliance system does deterrence strengthen?", {})) == 2


def test_dictionary_keeps_US_apart_from_us():
    assert "美国" in expand_query("What did the US propose?", {})
    assert "我们" not in expand_query("What did the US propose?", {})


def test_dictionary_knows_place_names_glossed_with_a_description():
    assert "清迈" in expand_query("What does the report propose on the Chiang Mai Initiative?", {})


def test_options_turn_the_dictionary_and_pairs_off(pairs):
    q = "How do China and the US talk about climate change under the IPEF?"
    bare = expand_query(q, pairs, use_pairs=False, use_dictionary=False)
    assert not any("\u4e00" <= c <= "\u9fff" for t in bare for c in t)
    assert "框架" in expand_query(q, pairs, use_dictionary=False)
    assert "气候" in expand_query(q, pairs, use_pairs=False)


def test_empty_query_returns_nothing(pairs):
    assert expand_query("", pairs) == []
    assert expand_query("   ", pairs) == []


def test_sense_groups_hold_the_whole_chinese_terms_whose_tokens_expand_query_adds(pairs):
    from rag.expand import sense_groups

    def expansion_terms(q, pairs):
        return [t for g in sense_groups(q, pairs) for t in g.terms]

    q = "When did ASEAN agree to a comprehensive strategic partnership?"
    terms = expansion_terms(q, pairs)
    assert "东盟" in terms and all(any("\u4e00" <= c <= "\u9fff" for c in t) for t in terms)
    tokens = set(expand_query(q, pairs))
    assert all(set(tokenize(t)) <= tokens for t in terms)
    assert expansion_terms("东盟的中心地位是什么？", pairs) == []  # nothing to bridge
    assert expansion_terms("COC磋商进展如何？", pairs) == ["南海行为准则"]  # the report's own pair


def test_sense_groups_keep_each_english_word_with_its_own_renderings(pairs):
    from rag.expand import sense_groups

    groups = sense_groups("How do China and the US talk about climate change?", {})
    keys = [g.key for g in groups]
    assert "climate change" in keys and "US" in keys
    assert any("气候变化" in g.terms for g in groups if g.key == "climate change")
    assert all(1 <= len(g.terms) <= 3 for g in groups)
    # The tokens are the question's own and the groups' terms, in the same order as before.
    q = "What is the Indo-Pacific Economic Framework?"
    toks = expand_query(q, pairs)
    assert toks == expand_query(q, pairs, groups=sense_groups(q, pairs))
    assert sense_groups("东盟的作用是什么？", pairs) == []


def test_a_capitalised_name_gets_the_proper_noun_not_a_common_sense():
    # CC-CEDICT's "trump" is the card term 将牌; Trump the person is 特朗普 (pinyin Te4 lang3 pu3).
    toks = expand_query("What did Trump say about the trade war?", {})
    assert "特朗普" in toks and "将牌" not in toks
    assert "普京" in expand_query("What does the report say about Putin?", {})
    assert "习近平" in expand_query("When did Xi Jinping propose the initiative?", {})
    # A word whose common senses already hold a name keeps them as they are.
    assert "我国" in expand_query("How does the report see China?", {})


def test_sentence_initial_and_lower_case_words_are_not_forced_into_names():
    # A capital that only opens a sentence, or a question typed in lower case, says nothing.
    assert "将牌" in expand_query("Trump in card games: what does the report say?", {})
    assert "将牌" in expand_query("How is it played? Trump first, then the rest.", {})
    assert "特朗普" not in expand_query("what does the report say about the trump card?", {})


def test_the_words_naming_the_document_are_left_out_of_a_question_on_request():
    from rag.expand import STOPWORDS, without_document_words

    assert without_document_words("What does the report expect of Chinese companies?") == "What does expect of Chinese companies?"
    assert without_document_words("Over what span are the report's recommendations meant to run?") == \
        "Over what span are recommendations meant to run?"
    assert without_document_words("How did reporters react to this report?") == "How did reporters react to?"
    assert without_document_words("What is ASEAN's role?") == "What is ASEAN's role?"
    assert {"report", "reports"} <= STOPWORDS  # BM25 leaves them out too


def test_a_short_term_pair_that_is_an_english_word_needs_the_acronym_written_as_one():
    from rag.expand import sense_groups

    pairs = {"who": {"世界卫生组织"}, "ups": {"联合包裹服务公司"}, "ipef": {"印太经济框架"}}
    keys = lambda q: {g.key for g in sense_groups(q, pairs)}  # noqa: E731
    assert "who" not in keys("Who spoke for the army?")
    assert "ups" not in keys("What groups did he try to set up?")
    assert "who" in keys("When did the US leave the WHO?")
    # Not an English word: matched however it is written.
    assert "ipef" in keys("what is the ipef?")


def test_english_dates_are_written_as_the_reports_write_them():
    from rag.expand import english_dates

    assert english_dates("What happened in December 2025?") == ["2025年12月"]
    assert english_dates("the pressure at 5 a.m. on 11 July") == ["7月11日"]
    assert english_dates("On December 3, 2025, who spoke?") == ["2025年12月3日"]
    assert english_dates("the Oct 7 attack") == ["10月7日"]
    # "may" is a verb unless a day or a year goes with it; an abbreviation alone is not a month.
    assert english_dates("May I ask what they may do?") == [] and english_dates("in Mar") == []
    assert english_dates("in May 2024") == ["2024年5月"]


def test_a_lower_case_month_alone_is_a_word_not_a_date():
    from rag.expand import english_dates

    assert english_dates("Who will march on the capital?") == []
    assert english_dates("What did they decide in March?") == ["3月"]
