"""The Python API, with the tiny hash encoder (fast) and, where answers matter, the real model."""

import json

import pytest

from rag.errors import EmptyQuestionError

from .conftest import ROOT


def test_answer_json_has_the_documented_fields(hash_assistant):
    out = hash_assistant.ask("东盟的中心地位", k=3, id="q1").to_dict()
    assert out["id"] == "q1" and len(out["passages"]) == 3
    assert out["not_found"] is False and out["not_found_reason"] is None  # the report is about this
    for rank, p in enumerate(out["passages"], start=1):
        assert p["rank"] == rank
        assert {"score", "source", "start", "end", "line_start", "line_end", "section", "text"} <= set(p)
        hl = p["highlight"]
        assert p["start"] <= hl["start"] < hl["end"] <= p["end"]
        assert p["text"][hl["start"] - p["start"] : hl["end"] - p["start"]] == hl["text"]
    json.dumps(out, ensure_ascii=False)


@pytest.mark.parametrize("mode", ["hybrid", "dense", "bm25"])
def test_traditional_and_simplified_questions_get_the_same_passages(hash_assistant, mode):
    simp = hash_assistant.ask("中国亚太战略的指导理念是什么？", mode=mode)
    trad = hash_assistant.ask("中國亞太戰略的指導理念是什麼？", mode=mode)
    assert [h.passage.id for h in simp.hits] == [h.passage.id for h in trad.hits]


def test_a_question_about_what_the_report_never_names_is_flagged_with_the_reason(hash_assistant):
    out = hash_assistant.ask("报告如何评价中美元首在旧金山的会晤？", k=3).to_dict()
    assert out["not_found"] is True and out["not_found_reason"] == "the report never mentions 旧金山"
    assert len(out["passages"]) == 3  # the closest passages are still shown


def test_empty_question_raises_a_library_error(hash_assistant):
    with pytest.raises(EmptyQuestionError):
        hash_assistant.ask(" \n ")


def test_every_mode_returns_k_distinct_passages(hash_assistant):
    for mode in ("hybrid", "dense", "bm25"):
        hits = hash_assistant.ask("RCEP 和 IPEF", k=7, mode=mode).hits
        assert len(hits) == 7 and len({h.passage.id for h in hits}) == 7


def test_real_model_answers_both_languages(real_assistant):
    zh = real_assistant.ask("东盟在地区合作中的中心地位是什么？", k=5)
    assert any("中心" in h.passage.text and "东盟" in h.passage.text for h in zh.hits[:3])
    en = real_assistant.ask("What does the report recommend on population ageing?", k=5)
    assert "人口老龄化" in en.hits[0].passage.text
    ipef = real_assistant.ask("What is the Indo-Pacific Economic Framework?", k=5)
    assert any("印太经济框架" in h.passage.text for h in ipef.hits[:3])
    text = (ROOT / "corpus/ciss-2022-asia-pacific-community-outlook.txt").read_bytes().decode()
    for h in zh.hits + en.hits:
        assert text[h.passage.start : h.passage.end] == h.passage.text


def test_an_english_question_is_expanded_once_for_the_search_and_the_matched_terms(hash_assistant, monkeypatch):
    """`rag.expand.sense_groups` runs once per question (it reads CC-CEDICT), and the answer is the
    one the search and `rag.matching.bridges` give when each computes it on its own."""
    import rag.expand
    import rag.matching
    from rag.abstain import CHECK_PASSAGES
    from rag.matching import bridges, matched_terms
    from rag.retrieve import search

    question = "What does the report say about the Code of Conduct in the South China Sea?"
    index = hash_assistant.index()
    alone = search(index, question, max(5, CHECK_PASSAGES), "hybrid", hash_assistant.query_encoder())[:5]
    found = bridges(question, index.term_pairs)
    alone_terms = [[m.to_dict() for m in matched_terms(h.passage.text, h.passage.start, found)] for h in alone]
    assert any(alone_terms), "the question must bridge to some passage's Chinese words for this test to mean anything"

    calls = []
    real = rag.expand.sense_groups

    def counting(*args, **kwargs):
        calls.append(args[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(rag.expand, "sense_groups", counting)
    monkeypatch.setattr(rag.matching, "sense_groups", counting)
    answer = hash_assistant.ask(question, k=5).to_dict()
    assert calls == [question]
    assert [p["id"] for p in answer["passages"]] == [h.passage.id for h in alone]
    assert [p["score"] for p in answer["passages"]] == [round(h.score, 6) for h in alone]
    assert [p["matched_terms"] for p in answer["passages"]] == alone_terms
