"""The shared notions about text: the CJK class, the one language decision, Simplified script."""

from __future__ import annotations

import re

import pytest

from rag import text
from rag.text import FUNCTION_WORDS, detect_lang, has_cjk, to_simplified


pytestmark = pytest.mark.usefixtures("private_dictionary")


def test_cjk_class_is_ideographs_not_punctuation_or_latin():
    assert has_cjk("东") and has_cjk("東") and has_cjk("\u3400") and has_cjk("\uf900")
    assert not has_cjk("，。《》“”") and not has_cjk("ＡＢＣ abc 123") and not has_cjk("")


@pytest.mark.parametrize(
    "question, lang",
    [
        ("东盟的中心地位是什么？", "zh"),
        ("東盟的中心地位是什麼？", "zh"),
        ("What is ASEAN centrality?", "en"),
        ("How many members does 东盟 have?", "en"),  # mostly English words
        ("DOC是哪份文件的英文缩写？", "zh"),  # mostly Chinese
        ("COP27 全称", "zh"),  # as many Chinese characters as English words
        ("谁？", "zh"),
        ("12345?", "en"),
    ],
)
def test_detect_lang(question, lang):
    assert detect_lang(question) == lang


def test_to_simplified():
    assert to_simplified("東南亞國家聯盟") == "东南亚国家联盟"
    assert to_simplified("RCEP") == "RCEP"


def test_function_words_are_lower_case_grammar_words():
    assert {"the", "of", "does", "how", "which", "between"} <= FUNCTION_WORDS
    assert not {"china", "climate", "report", "members"} & FUNCTION_WORDS
    assert all(w == w.lower() for w in FUNCTION_WORDS)


def test_no_other_module_defines_its_own_cjk_class():
    """One CJK pattern: any module needing Chinese characters builds on rag.text.CJK."""
    from pathlib import Path

    root = Path(text.__file__).parent
    for path in root.glob("*.py"):
        if path.name == "text.py":
            continue
        source = path.read_text(encoding="utf-8")
        assert not re.search(r"\\u4e00|\\u3400|\u4e00-|\u3400-", source), path.name


@pytest.mark.parametrize(
    "question, lang",
    [("How many members does 东盟 have?", "en"), ("What is 亚太命运共同体？", "zh"), ("东盟 has how many members?", "en")],
)
def test_a_mixed_question_gets_one_language_from_every_consumer(question, lang):
    """Question preparation (which picks the not-found rules), query expansion and the dense
    query all follow the one decision."""
    from rag.expand import STOPWORDS, expand_query
    from rag.question import prepare
    from rag.retrieve import dense_query
    from rag.tokens import tokenize

    assert prepare(question).lang == lang

    tokens = expand_query(question, {})
    english_rules = not (STOPWORDS & set(tokens))  # English: stopwords dropped, dictionary added
    assert english_rules == (lang == "en")
    if lang == "en":
        assert "成员" in tokens  # CC-CEDICT's rendering of "members"
    else:
        assert tokens == tokenize(question)

    vocabulary = {"成员": 0, "成员国": 1, "东盟": 2}
    bridged = dense_query(question, tokens, vocabulary) != question
    assert bridged == (lang == "en")
