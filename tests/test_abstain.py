from rag.abstain import Grounder

from .conftest import REPORT

CORPUS = REPORT.read_text(encoding="utf-8")


def test_a_place_the_report_never_names_is_flagged_in_both_languages():
    g = Grounder([CORPUS])
    zh = g("报告如何评价中美元首在旧金山的会晤？", "zh")
    assert zh.not_found and zh.missing == ("旧金山",)
    en = g("What does the report say about the summit in San Francisco?", "en")
    assert en.not_found and en.missing == ("San Francisco",)


def test_names_and_years_the_report_does_mention_are_not_flagged():
    g = Grounder([CORPUS])
    assert not g("拜登政府在巴厘岛会晤后做了什么？", "zh").not_found
    assert not g("What did Xi and Biden agree in Bali in November 2022?", "en").not_found
    assert not g("东南亚三国如何看待印太经济框架？", "zh").not_found  # a count, not a name
    assert not g("How did ASEAN respond during the Trump years?", "en").not_found


def test_a_year_outside_the_report_is_flagged():
    g = Grounder(["2022 年的报告。"])
    assert g("2031年会怎样？", "zh").missing == ("2031",)
    assert not g("2022年发生了什么？", "zh").not_found


def test_the_flag_reaches_the_answer(hash_assistant):
    answer = hash_assistant.ask("报告如何评价中美元首旧金山会晤？")
    assert answer.not_found and answer.hits  # the closest passages are still listed
    assert any("旧金山" in n for n in answer.notices)
    assert not hash_assistant.ask("东盟的中心地位是什么？").not_found
