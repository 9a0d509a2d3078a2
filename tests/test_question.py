import pytest

from rag.errors import EmptyQuestionError
from rag.question import prepare


@pytest.mark.parametrize("q", ["", "   ", "\n\t", "\x00\x01"])
def test_empty_questions_are_refused(q):
    with pytest.raises(EmptyQuestionError):
        prepare(q)


def test_traditional_chinese_is_converted_to_simplified():
    q = prepare("東盟在地區合作中的中心地位是什麼？")
    assert q.text.startswith("东盟在地区合作中的中心地位是什么") and q.lang == "zh"


def test_overlong_questions_are_truncated_with_a_notice():
    q = prepare("亚太" * 60_000)
    assert len(q.text) == 2000 and "truncated" in q.notices[0]


def test_lone_surrogates_and_control_characters_do_not_break_anything():
    q = prepare("What about \ud800 RCEP\x07?")
    assert "RCEP" in q.text and "\ud800" not in q.text and "\x07" not in q.text
    assert q.lang == "en"
