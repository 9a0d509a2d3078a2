"""The report's bilingual bracket terms."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag.terms import extract_term_pairs

CORPUS = Path(__file__).resolve().parent.parent / "corpus" / "ciss-2022-asia-pacific-community-outlook.txt"

PASSAGES = [
    "2022年，美国提出“印太经济框架”（IPEF），试图在供应链、清洁能源等领域拉拢东盟国家。",
    "《区域全面经济伙伴关系协定》(RCEP)于2022年1月1日正式生效，区域内贸易更加便利。",
    "美国防长提出“集合威慑”（Integrated deterrence）的概念，强化同盟体系。",
    "中国与东盟国家全面有效落实《南海各方行为宣言》(DOC)，争取早日达成“南海行为准则”(COC)。",
]


@pytest.fixture(scope="module")
def pairs() -> dict[str, set[str]]:
    return extract_term_pairs("\n".join(PASSAGES))


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
    assert extract_term_pairs("") == {}


def test_term_pairs_of_the_report():
    got = extract_term_pairs(CORPUS.read_text(encoding="utf-8"))
    assert got["ipef"] == {"印太经济框架"}
    assert got["coc"] == {"南海行为准则"}
    assert got["doc"] == {"南海各方行为宣言"}
    assert got["rcep"] == {"区域全面经济伙伴关系协定"}
    assert got["integrated deterrence"] == {"集合威慑"}
    assert got["apec"] == {"亚太经合组织"}


def test_term_pairs_lose_a_lead_in_the_text_uses_the_term_without():
    # The run before the bracket starts mid-clause; the text names the term alone elsewhere.
    text = "卫星图像和法新社（AFP）报道。法新社称……解放军正式成立战略支援部队（PLASSF）。战略支援部队……"
    got = extract_term_pairs(text)
    assert got["afp"] == {"法新社"}
    assert got["plassf"] == {"战略支援部队"}


def test_term_pairs_keep_a_whole_name_whose_tail_is_not_used_alone():
    # 改革委员会 never stands alone here: the conjunction inside the name does not cut it.
    assert extract_term_pairs("国家发展和改革委员会（NDRC）发布。")["ndrc"] == {"国家发展和改革委员会"}
    # A short common word is the head of a term, not the term, even where the text uses it alone.
    got = extract_term_pairs("印太集合威慑（Integrated deterrence）。威慑，威慑。")
    assert got["integrated deterrence"] == {"印太集合威慑"}
