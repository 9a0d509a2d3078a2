"""A question's BM25 tokens, with the Chinese an English question needs to meet a Chinese report.

:func:`expand_query` tokenizes a question; an acronym or English phrase in it, or a name whose
initials spell one of the report's acronyms ("Indo-Pacific Economic Framework" -> IPEF), pulls
in the paired Chinese term (:mod:`rag.terms`), and an English question (:func:`rag.text.detect_lang`)
also pulls in the three most frequent Chinese words that CC-CEDICT (:mod:`rag.dictionary`) gives
for each of its phrases or content words.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from .dictionary import MAX_GLOSS_WORDS, dictionary_word, english_dictionary, lemmas, name_senses, senses
from .text import FUNCTION_WORDS, LATIN_WORD_RE, detect_lang
from .tokens import POSSESSIVE_RE, english_key, latin_token, tokenize

__all__ = ["expand_query", "english_dates", "sense_groups", "SenseGroup", "DICT_CANDIDATES", "STOPWORDS", "DOCUMENT_WORDS", "STATING_WORDS",
           "without_document_words"]

#: Chinese words added for one English word or phrase of an English question.
DICT_CANDIDATES = 3

#: Whether a word written as a name gets CC-CEDICT's proper nouns (:func:`_dictionary_terms`).
NAME_SENSES = True

#: The words a question names the document itself with ("What does the report recommend?").
DOCUMENT_WORDS = frozenset("report reports".split())
#: The words a question reports the document's stating with ("what does the report say").
STATING_WORDS = frozenset("say says said".split())
#: English words an English question is not searched for: function words, and the words a
#: question uses for the document itself and its stating ("what does the report say about"); not
#: content words such as numerals or "way"/"kind", which can be what a question is about (dropping
#: "report"/"say" too cost dev English R@5 0.96 -> 0.92, measured).
STOPWORDS = FUNCTION_WORDS | DOCUMENT_WORDS | STATING_WORDS
_STOP_TOKENS = STOPWORDS | {latin_token(w) for w in STOPWORDS}
_WORD_RE = re.compile(r"[A-Za-z0-9]+")
_MAX_ACRONYM_SPAN = 10
_DOCUMENT_REF = re.compile(
    r"\b(?:(?:the|this|that|its) )?(?:" + "|".join(sorted(DOCUMENT_WORDS)) + r")(?:'s|’s)?\b", re.I)


#: The English months, in order, and their abbreviations: the month words `english_dates` reads.
_MONTHS = ("january", "february", "march", "april", "may", "june", "july", "august", "september",
           "october", "november", "december")
_MONTH_ABBREVIATIONS = ("jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec")
_MONTH = "(" + "|".join(_MONTHS + _MONTH_ABBREVIATIONS) + r")\.?"
# "3 December 2025", "December 3, 2025", "December 2025", "3 December", "December 3".
_DATE_RE = re.compile(
    rf"\b(?:(\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?{_MONTH}|{_MONTH}\s+(\d{{1,2}})(?:st|nd|rd|th)?\b(?!\d)|{_MONTH})"
    rf"(?:,?\s+(\d{{4}}))?\b", re.I)


def english_dates(question: str) -> list[str]:
    """The dates an English question names, written as Chinese reports write them: "December
    2025" -> 2025年12月, "3 December" -> 12月3日, "December 3, 2025" -> 2025年12月3日. CC-CEDICT
    renders a month as 十二月 (or the lunar 腊月), which these reports never write. "May" is read as
    a month only next to a day or a year (it is also a verb)."""
    out: list[str] = []
    for m in _DATE_RE.finditer(question):
        day1, mon1, mon2, day2, mon3, year = m.groups()
        name = (mon1 or mon2 or mon3).lower().rstrip(".")
        day = day1 or day2
        if mon3 and not year and not mon3[0].isupper():
            continue  # "march" alone is a verb; "March" alone a month
        if name == "may" and not (day or year) or (mon3 and not year and name in _MONTH_ABBREVIATIONS):
            continue  # "may" is a verb unless a day or a year goes with it; "Mar" alone is no month
        month = next(i for i, full in enumerate(_MONTHS, 1) if full.startswith(name[:3]))
        if day and not 1 <= int(day) <= 31:
            continue
        text = f"{year}年" if year else ""
        text += f"{month}月" + (f"{int(day)}日" if day else "")
        if text not in out:
            out.append(text)
    return out


def without_document_words(question: str) -> str:
    """An English question without the words it names the document with ("What does the report
    recommend for X?" -> "What does recommend for X?"). In a library "the report" names no one
    report, and embedded it draws the question toward every report's passages about itself (their
    scope, their limits): `rag.retrieve` embeds an English question of a library without them."""
    return re.sub(r" (?=[?.!,;:])", "", " ".join(_DOCUMENT_REF.sub(" ", question).split()))


@dataclass(frozen=True)
class SenseGroup:
    """An English word or phrase of a question and the Chinese terms added for it (alternatives)."""

    key: str
    terms: tuple[str, ...]


def _rank_candidates(words: Iterable[str]) -> list[str]:
    """Dictionary candidates, most frequent Chinese word first (rjieba's word frequencies), ties
    in dictionary order."""
    import rjieba

    cands = list(dict.fromkeys(words))
    pos = {w: i for i, w in enumerate(cands)}
    freq = {w: (rjieba.suggest_freq(w) if rjieba.has_word(w) else 0) for w in cands}
    return sorted(cands, key=lambda w: (-freq[w], pos[w]))


def _dictionary_terms(
    words: list[str], dictionary: Mapping[str, list[str]], per_key: int, names: list[bool] | None = None
) -> list[SenseGroup]:
    """Chinese words for an English word sequence, one group per phrase or word: the longest
    phrase match first (up to four words, not all stopwords), else the single word if it is not
    a stopword.

    ``names[i]`` marks a word written as a name (see :func:`_name_flags`): a phrase or word made
    only of such words gets CC-CEDICT's proper nouns for it ("Trump" -> 特朗普, not the card
    term 将牌) when its common senses hold none of them; common senses that already hold a name
    ("China": 中国, 我国, 中华) are kept as they are."""
    out: list[SenseGroup] = []
    flags = names or [False] * len(words)
    i = 0
    n = len(words)

    def choose(j: int, key: str, common: list[str]) -> list[str]:
        if not all(flags[i:j]):
            return common
        names = name_senses(key, dictionary)
        # Common senses that already hold a name ("China": 中国, 我国) are kept as they rank.
        if not names or any(w in names for w in common):
            return common
        return names

    while i < n:
        matched = 0
        for size in range(min(MAX_GLOSS_WORDS, n - i), 1, -1):
            head = words[i : i + size - 1]
            if all(w in STOPWORDS for w in words[i : i + size]):
                continue
            for last in lemmas(words[i + size - 1]):
                key = " ".join([*head, last])
                hits = choose(i + size, key, dictionary.get(key) or [])
                if hits:
                    out.append(SenseGroup(" ".join(words[i : i + size]), tuple(_rank_candidates(hits)[:per_key])))
                    matched = size
                    break
            if matched:
                break
        if matched:
            i += matched
            continue
        w = words[i]
        if w not in STOPWORDS and not w.isdigit():
            hits = choose(i + 1, w, senses(w, dictionary))
            if hits:
                out.append(SenseGroup(w, tuple(_rank_candidates(hits)[:per_key])))
        i += 1
    return out


def _spelled_out_acronyms(question: str, term_pairs: dict[str, set[str]]) -> list[SenseGroup]:
    """Chinese terms for acronyms the question spells out: "Indo-Pacific Economic Framework"
    has the initials of the report's "IPEF", so it gets the term paired with IPEF. Initials are
    taken with and without function words ("Code of Conduct" -> COC, "Free Trade Area of the
    Asia-Pacific" -> FTAAP); only acronyms of three or more letters count."""
    acronyms = {k: v for k, v in term_pairs.items() if len(k) >= 3 and k.isalpha()}
    if not acronyms:
        return []
    words = LATIN_WORD_RE.findall(POSSESSIVE_RE.sub("", unicodedata.normalize("NFKC", question)))
    low = [w.lower() for w in words]
    # A spelled-out name is capitalized ("Code of Conduct", not "concept of China"), unless the
    # whole question is typed in lower case.
    cased = any(w != lw for w, lw in zip(words, low))
    name_word = [lw not in FUNCTION_WORDS and (not cased or w[0].isupper()) for w, lw in zip(words, low)]
    out: list[SenseGroup] = []
    for i in range(len(words)):
        if not name_word[i]:
            continue
        for j in range(i + 2, min(len(words), i + _MAX_ACRONYM_SPAN) + 1):
            if not name_word[j - 1]:
                if low[j - 1] in FUNCTION_WORDS:
                    continue
                break
            span = low[i:j]
            for initials in {
                "".join(w[0] for w in span),
                "".join(w[0] for w in span if w not in FUNCTION_WORDS),
            }:
                if len(initials) >= 3 and initials in acronyms:
                    out.append(SenseGroup(" ".join(words[i:j]), tuple(sorted(acronyms[initials]))))
    return out


#: A term pair whose English side is one word this short (an acronym, most often: WHO, UPS, PLA)
#: and also an English word CC-CEDICT knows (who, up) pairs with a question's word only where the
#: question writes it as an acronym or a name
#: (`_written_as_names`): "Who spoke …" is not the WHO, "set up" not UPS (`english_key` reads
#: "ups" as "up"). Term pairs are harvested from every report of a library, so such keys abound.
SHORT_KEY = 5


def _written_as_names(text: str) -> set[str]:
    """The `english_key` forms of the question's words written in capitals (WHO, AI), with a
    capital after the first letter (eVTOL, McKinsey) or as names (:func:`_name_flags`: "the Quad")."""
    text = POSSESSIVE_RE.sub("", unicodedata.normalize("NFKC", text))
    words = _WORD_RE.findall(text)
    flags = _name_flags(text)
    return {english_key(w) for w, name in zip(words, flags)
            if name or (len(w) >= 2 and w.isupper()) or (any(c.isupper() for c in w[1:]))}


def _latin_words(text: str) -> list[str]:
    text = POSSESSIVE_RE.sub("", unicodedata.normalize("NFKC", text))
    return [dictionary_word(w) for w in _WORD_RE.findall(text)]


_SENTENCE_END_RE = re.compile(r"[.?!:;\"“”()\[\]\n]\s*$|^\W*$")


def _name_flags(text: str) -> list[bool]:
    """For each word of :func:`_latin_words`: whether it is written as a name, capitalised where
    a sentence does not make it so (not the first word of the question or of a sentence, or
    after a colon, bracket or quote). A question typed all in lower case or all in capitals
    has no such words."""
    text = POSSESSIVE_RE.sub("", unicodedata.normalize("NFKC", text))
    matches = list(_WORD_RE.finditer(text))
    letters = [c for c in text if c.isalpha() and c.isascii()]
    if not any(c.isupper() for c in letters) or all(c.isupper() for c in letters):
        return [False] * len(matches)
    flags = []
    for m in matches:
        w = m.group()
        initial = bool(_SENTENCE_END_RE.search(text[: m.start()]))
        flags.append(w[0].isupper() and not w.isupper() and not initial and w.lower() not in FUNCTION_WORDS)
    return flags


def sense_groups(
    question: str,
    term_pairs: dict[str, set[str]],
    *,
    use_pairs: bool = True,
    use_dictionary: bool = True,
    per_key: int = DICT_CANDIDATES,
) -> list[SenseGroup]:
    """The Chinese an English word or phrase of ``question`` brings in, one group per word or
    phrase, in the order :func:`expand_query` adds them: the report's term pairs whose English key
    occurs in it, the terms of acronyms it spells out, and (English questions only) up to
    ``per_key`` CC-CEDICT renderings of each phrase or content word, the most frequent first.

    A group's renderings are alternatives for one word: the dense side's bridge terms are taken
    from them whole, and the `hybrid-synonyms` measurement weighs them as one BM25 term
    (:meth:`rag.bm25.LexicalIndex.group_weights`)."""
    if not question or not question.strip() or not re.search("[A-Za-z]", question):
        return []
    chinese = detect_lang(question) == "zh"
    out: list[SenseGroup] = []
    if use_pairs and term_pairs:
        # Keys and question are compared in the same normalized form ("Out-competes" ~ "out-compete").
        key_text = f" {english_key(question)} "
        written = _written_as_names(question)
        for key, terms in term_pairs.items():
            norm_key = english_key(key)
            if norm_key and f" {norm_key} " in key_text and (
                    " " in norm_key or len(norm_key) > SHORT_KEY or norm_key in written
                    or not senses(dictionary_word(norm_key), english_dictionary())):
                out.append(SenseGroup(key, tuple(sorted(terms))))
        out.extend(_spelled_out_acronyms(question, term_pairs))
    if use_dictionary and not chinese and per_key > 0:
        flags = _name_flags(question) if NAME_SENSES else None
        out.extend(_dictionary_terms(_latin_words(question), english_dictionary(), per_key, flags))
    return out


def expand_query(
    question: str,
    term_pairs: dict[str, set[str]],
    *,
    use_pairs: bool = True,
    use_dictionary: bool = True,
    per_key: int = DICT_CANDIDATES,
    groups: list[SenseGroup] | None = None,
) -> list[str]:
    """BM25 tokens for a question.

    A Chinese question is tokenized; if it holds an acronym or English phrase that ``term_pairs``
    knows (``COC``), the paired Chinese term is added too. An English question gets its own
    tokens (lower-case, :data:`STOPWORDS` removed), the Chinese terms from ``term_pairs`` whose
    English key occurs in it, and, for each of its phrases or content words, up to ``per_key``
    Chinese words from CC-CEDICT (the most frequent first): the tokens of :func:`sense_groups`
    (pass ``groups`` when already computed). The keyword options exist for measuring variants;
    the defaults are the measured best.
    """
    if not question or not question.strip():
        return []
    chinese = detect_lang(question) == "zh"
    tokens = [t for t in tokenize(question) if chinese or t not in _STOP_TOKENS]
    if groups is None:
        groups = sense_groups(question, term_pairs, use_pairs=use_pairs, use_dictionary=use_dictionary, per_key=per_key)
    for group in groups:
        for term in group.terms:
            tokens.extend(tokenize(term))
    return tokens
