"""rag.names: which words CC-CEDICT knows as names, and the spellings a corpus could use for them."""

from __future__ import annotations

import pytest

from rag import names


pytestmark = pytest.mark.usefixtures("private_dictionary")


def test_a_name_is_a_proper_noun_in_every_entry():
    table = names.proper_nouns()
    assert table["北京"].english == ("Beijing",)
    assert table["雅加达"].capital_of == ("Indonesia",)
    assert "万象" not in table  # also "every manifestation of nature"
    assert "要素" not in table and "中期" not in table  # common nouns
    assert "英文" not in table  # a language


def test_spellings_reach_other_renderings_and_the_country_of_a_capital():
    en, zh = names.chinese_spellings("华府")
    assert "Washington" in en and "华盛顿" in zh
    en, zh = names.chinese_spellings("科伦坡")
    assert "Sri Lanka" in en and "斯里兰卡" in zh
    en, zh = names.english_spellings("Phnom Penh")
    assert {"金边", "柬埔寨"} <= zh
    assert names.chinese_spellings("要素") == (set(), {"要素"})


def test_english_names_by_the_dictionary():
    assert names.is_english_name("Phnom Penh") and names.is_english_name("White House")
    assert not names.is_english_name("Party Congress")  # 党代会 is a common noun to CC-CEDICT
    assert not names.is_english_name("Antony Blinken")  # unknown: cannot be judged


def test_the_table_is_cached_and_read_back(dictionary_cache):
    names.proper_nouns.cache_clear()
    first = names.proper_nouns()
    assert list(dictionary_cache.glob("cedict-names-v*.json"))
    names.proper_nouns.cache_clear()
    assert names.proper_nouns() == first


def test_capitals_in_a_question_give_their_countries():
    assert {"印尼", "印度尼西亚"} <= set(names.capitals_in("Which maritime vision of Jakarta is on the list?"))
    assert {"斯里兰卡", "巴基斯坦"} <= set(names.capitals_in("科伦坡与伊斯兰堡当年遭遇了怎样的困局？"))
    assert "日本" in names.capitals_in("What pact among Beijing, Tokyo and Seoul?")
    assert names.capitals_in("How did ASEAN respond?") == [] and names.capitals_in("东盟如何回应？") == []


def test_names_carry_their_one_character_forms():
    table = names.proper_nouns()
    assert "日" in table["日本"].short and {"中", "华"} <= set(table["中国"].short)
    assert "美" in table["美国"].short and "巴" in table["巴基斯坦"].short
    assert names.short_forms(["美国", "日本", "要素"]) == {"美", "日"}


def test_a_single_word_is_a_name_when_it_names_a_country_or_is_an_acronym_of_one():
    assert names.is_own_name("Pakistan") and names.is_own_name("China") and names.is_own_name("ASEAN")
    assert not names.is_own_name("Chinese") and not names.is_own_name("Malaysian") and not names.is_own_name("Western")


def test_a_seat_of_government_stands_for_its_country():
    # 华府 is "the US federal government" to CC-CEDICT, not a capital "of" anything.
    en, zh = names.chinese_spellings("华府")
    assert "美国" in zh and "US" in en
    assert "美国" in names.english_spellings("Washington")[1]
    assert names.capitals_in("华府如何看待东盟？") == []  # retrieval's capital -> country bridge is unchanged


def test_a_name_of_one_character_forms_splits_into_its_parts():
    first, second = names.short_parts("中美")
    assert {"中", "中国"} <= first and {"美", "美国"} <= second
    assert names.short_parts("要素") == () and names.short_parts("美") == ()


def test_a_person_is_a_name_cc_cedict_gives_life_dates_for(dictionary_cache):
    table = names.proper_nouns()
    assert table["拜登"].person and table["林肯"].person  # "Joe Biden (1942-)", "Abraham Lincoln (1809-1865)"
    assert not table["北京"].person and not table["雅加达"].person
    # Read back from the cached table the same way.
    names.proper_nouns.cache_clear()
    again = names.proper_nouns()
    assert again["拜登"].person and not again["北京"].person
