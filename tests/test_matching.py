"""rag.matching: the English words of a question beside the Chinese words of a passage they were bridged to."""

from __future__ import annotations

from rag.matching import bridges, matched_terms

from .conftest import REPORT

PAIRS = {"coc": {"南海行为准则"}, "ipef": {"印太经济框架"}}


def test_term_pairs_and_spelled_out_acronyms_are_bridged_to_their_chinese_terms():
    found = bridges("What does the Indo-Pacific Economic Framework say about the COC?", PAIRS)
    pairs = {(b.query, b.term) for b in found}
    assert ("COC", "南海行为准则") in pairs
    assert ("Indo-Pacific Economic Framework", "印太经济框架") in pairs
    for b in found:  # offsets point at the words in the question
        assert "What does the Indo-Pacific Economic Framework say about the COC?"[b.start : b.end] == b.query


def test_dictionary_renderings_the_expansion_used_are_bridged():
    pairs = {(b.query, b.term) for b in bridges("What is ASEAN centrality?", {})}
    assert ("ASEAN", "东盟") in pairs


def test_a_chinese_question_has_no_bridges():
    assert bridges("东盟的中心地位是什么？", PAIRS) == []


def test_spans_are_absolute_offsets_of_the_chinese_word_even_across_a_line_break():
    text = "前文。中国支持东盟\n中心地位，东盟方式。"
    start = 1000
    found = bridges("ASEAN centrality", {})
    terms = matched_terms(text, start, found)
    asean = [m for m in terms if m.query == "ASEAN" and m.passage == "东盟"]
    assert asean and [text[s - start : e - start] for s, e in asean[0].spans] == ["东盟", "东盟"]
    wrapped = matched_terms("印太经济\n框架", 0, bridges("Indo-Pacific Economic Framework", PAIRS))
    assert [(m.query, m.spans) for m in wrapped if m.passage == "印太经济框架"] == [
        ("Indo-Pacific Economic Framework", ((0, 7),))
    ]


def test_a_shorter_pair_inside_a_longer_one_is_shown_once():
    terms = matched_terms("落实南海行为准则。", 0, bridges("the Code of Conduct", PAIRS))
    # "Conduct" -> 行为 and "Code of Conduct" -> 行为准则 sit inside the longer pair's mark.
    assert [(m.query, m.passage) for m in terms] == [("Code of Conduct", "南海行为准则")]


def test_answers_carry_matched_terms_per_passage(hash_assistant):
    answer = hash_assistant.ask("What is ASEAN centrality?", k=3, mode="bm25")
    out = answer.to_dict()
    text = REPORT.read_text(encoding="utf-8")
    assert any(p["matched_terms"] for p in out["passages"])
    for p in out["passages"]:
        for m in p["matched_terms"]:
            assert m["query"] in "What is ASEAN centrality?"
            for s, e in m["spans"]:
                assert p["start"] <= s < e <= p["end"] and text[s:e].replace("\n", "") == m["passage"]
    zh = hash_assistant.ask("东盟的中心地位是什么？", k=2, mode="bm25").to_dict()
    assert all(p["matched_terms"] == [] for p in zh["passages"])


def test_a_name_is_shown_with_the_proper_noun_the_expansion_chose():
    # CC-CEDICT's only "trump" entry is a card term; the expansion gives a name its proper noun,
    # and the "matched" explanation says so rather than leaving the name out.
    found = [(b.query, b.term) for b in bridges("What did Trump say about the trade war?", {})]
    assert ("Trump", "特朗普") in found and ("Trump", "将牌") not in found
