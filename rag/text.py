"""What every part of rag agrees on about text: which characters are Chinese, which language a
question is in, how Traditional becomes Simplified, and which English words are function words.

One notion, one place: the CJK character class, the language decision and the function-word list
are used by question preparation, tokenisation, query expansion, retrieval, chunking and the
not-found check alike, so a mixed question such as "How many members does 东盟 have?" gets one
answer everywhere.
"""

from __future__ import annotations

import re
from functools import lru_cache

__all__ = [
    "CJK",
    "CJK_RE",
    "LATIN_WORD_RE",
    "ARTICLES",
    "FUNCTION_WORDS",
    "has_cjk",
    "count_cjk",
    "detect_lang",
    "to_simplified",
]

#: The CJK ideographs, as the body of a regex character class (``f"[{CJK}]"``): Extension A,
#: the Unified Ideographs and the Compatibility Ideographs. Punctuation is not in it; a module
#: that also needs CJK punctuation or full-width forms adds them to this class.
CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
CJK_RE = re.compile(f"[{CJK}]")
#: An English (Latin-script) word.
LATIN_WORD_RE = re.compile(r"[A-Za-z]+")

#: The English articles (a subset of :data:`FUNCTION_WORDS`).
ARTICLES = frozenset(("a", "an", "the"))

#: English function words: the closed classes that carry grammar rather than a topic —
#: articles and determiners, pronouns, prepositions (with "according"/"apart" of "according to",
#: "apart from"), conjunctions, auxiliary and modal verbs, wh-words, and quantifiers and degree
#: adverbs. Lower case. They never name what a question is about, so retrieval does not search
#: for them, acronym initials skip them and they end a noun phrase.
FUNCTION_WORDS = ARTICLES | frozenset(
    """about above according after again against all also am among and any apart are as at be
    because been before being below between both but by can could did do does doing down during
    each few for from further had has have having he her here hers him his how i if in into is it
    its itself just me more most much many my no nor not now of off on once only or other our ours
    out over own per same she should since so some such than that their theirs them then there
    these they this those through to too under until up us very was we were what when where which
    while who whom whose why will with would you your yours""".split()
)


def has_cjk(text: str) -> bool:
    """Whether ``text`` holds a CJK ideograph."""
    return CJK_RE.search(text) is not None


def count_cjk(text: str) -> int:
    return len(CJK_RE.findall(text))


def detect_lang(text: str) -> str:
    """``"zh"`` or ``"en"``: the one decision of a question's language, used everywhere.

    The rule: a question is Chinese when it has Chinese characters and at least as many of them
    as English words. A Chinese word is one to four characters, so a question counts as English
    only when its English words clearly outnumber its Chinese ones: "How many members does 东盟
    have?" (5 English words, 2 characters) is English, "COP27 全称" and "DOC是哪份文件的英文缩写？"
    are Chinese, and a question without Chinese characters is English.
    """
    cjk = count_cjk(text)
    return "zh" if cjk and cjk >= len(LATIN_WORD_RE.findall(text)) else "en"


@lru_cache(maxsize=1)
def _t2s():
    from opencc import OpenCC  # ~5 ms, only when first needed

    return OpenCC("t2s")


def to_simplified(text: str) -> str:
    """Traditional Chinese to Simplified (OpenCC t2s), so 繁體 text matches the report; text
    without CJK characters is returned as it is."""
    if not has_cjk(text):
        return text
    return _t2s().convert(text)
