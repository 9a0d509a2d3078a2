"""Deciding that the report does not answer a question.

Similarity scores do not separate unanswerable questions here: the dev set's unanswerable
questions are about the report's own topics (a later summit, a statistic it does not give), and
score as high as answerable ones (measured; see README). What does separate some of them is a
named thing the report never mentions. So a question is flagged when it names a place, person or
organisation (Chinese names by their part-of-speech tag; English names of two or more capitalised
words that CC-CEDICT translates), or a year, that appears nowhere in the corpus, in either language. This is
deliberately conservative: a false "not found" hides a real answer, which is worse than listing
the closest passages without the flag.

The second check is on the answer's type. A question that asks for a number ("多少次导弹试射",
"How many Chinese students …") or a date ("哪一年", "When did …") is answered only by a sentence
that states one; a number must also sit beside the thing counted (the question's head noun, in
Chinese or through CC-CEDICT). When none of the closest passages has such a sentence, the report
does not give the figure, however close its passages are in topic.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .text import ARTICLES, CJK, FUNCTION_WORDS

if TYPE_CHECKING:
    from .retrieve import Hit

_YEAR = re.compile(r"(?<!\d)(1[89]\d\d|20\d\d)(?!\d)")
_CN_NUMERAL = re.compile(r"^[一二三四五六七八九十两几百千万多]")
#: rjieba tags for places, persons, organisations (not nz: it also tags words like 英文).
_NAME_TAGS = {"ns", "nr", "nrt", "nrfg", "nt"}
_EN_NAME = re.compile(r"(?<![\w'])([A-Z][a-z]+(?:[ -][A-Z][a-z]+)*)")


#: How many of the best passages the answer-type check reads, and how many of each passage's
#: best-matching sentences it reads for a date (a number is tied to its head noun instead).
CHECK_PASSAGES = 3
DATE_SENTENCES = 2

_TIME_Q = re.compile(
    r"何时|什么时候|什么时间|哪一?年|哪个月|几月|哪一天|^\s*when\b|\bwhen (?:did|was|were|is|will|does|do|has|have)\b"
    r"|\b(?:which|what) (?:year|month|date)\b",
    re.I,
)
_QTY_ZH = re.compile(r"多少|多大|几(?=[个次名项家国位倍成条种])")
_SHARE_WORDS = re.compile(r"比例|比重|占比|百分之几|百分比|\b(?:share|percentage|proportion|fraction|per ?cent)\b", re.I)
_QTY_EN = re.compile(
    r"\bhow (?:many|much)\b|\bwhat (?:was|is|were|are|will be) the (?:total |overall |combined |annual )?"
    r"(?:value|number|amount|volume|size|level|share|percentage|proportion|rate|figure) of\b"
    r"|\bwhat (?:share|percentage|proportion|fraction) of\b",
    re.I,
)
#: Words of a quantity phrase that are not the thing counted ("the total number of").
_EN_SKIP = ARTICLES | {"total", "overall", "combined", "annual"}
#: Counters, not things counted ("how many times"): the figure alone answers them.
_EN_COUNTERS = {"times", "time", "people", "persons", "percent", "dollars", "years", "months", "days"}
# A figure: a number that is not a year (nor a recommendation's "6.5" label), or a Chinese numeral
# with a measure word (六大, 三次, 十万; not 三位一体).
_YEAR_LIKE = re.compile(r"(?<!\d)(?:1[89]|20)\d\d(?!\d)\s*年?")
# A lone 一 is left out: 一个/一项/一大 are mostly "a", not a count.
_FIGURE = re.compile(r"\d|(?:[二三四五六七八九十两百千万亿]|一[十百千万亿])[一二三四五六七八九十两百千万亿]*\s*(?:个|次|名|项|大|国|家|倍|成|亿|万|分之|条|种)")
_SHARE = re.compile(r"\d\s*[%％]|百分之|分之|[一二三四五六七八九]成|一半|半数|\d\s*/\s*\d")
# A date, or a period a "when" question can be answered with (1970年代, 21世纪, 冷战结束后, 奥巴马后期).
_DATE = re.compile(
    r"(?:1[89]|20)\d\d\s*年|\d{1,2}\s*月|年初|年底|年末|年中|上半年|下半年|[一二三四五六七八九十]+月"
    r"|年代|世纪|[初中后末]期|以来|期间|前夕|冷战"
)
_LABEL = re.compile(r"^\s*\d+\.\d+\s")
_ZH_FUNCTION = {"是", "有", "为", "约", "约为", "达", "共", "一共", "总共", "大约", "了", "进行", "的", "在", "占", "到", "达到"}


@dataclass(frozen=True)
class Expectation:
    """What kind of answer a question asks for: a "number", a "share" or a "date"; `head` is the
    thing counted as the question names it (None when the question does not name it)."""

    kind: str
    head: str | None = None


def expected_answer(question: str, lang: str) -> Expectation | None:
    """The answer type a question asks for, or None for an open question (why, how, what …)."""
    if lang == "zh":
        m = _QTY_ZH.search(question)
        if m:
            if _SHARE_WORDS.search(question):
                return Expectation("share")
            return Expectation("number", _zh_head(question, m))
    else:
        m = _QTY_EN.search(question)
        if m:
            if _SHARE_WORDS.search(m.group(0)):
                return Expectation("share")
            return Expectation("number", _en_head(question[m.end() :]))
    if _TIME_Q.search(question):
        return Expectation("date")
    return None


def _zh_head(question: str, m: re.Match) -> str | None:
    """The noun a Chinese count is about: the one after "多少次/几个", else the one before "多少"."""
    import rjieba

    after = re.match(rf"[个次名项家国位倍成条种]?([{CJK}]+)", question[m.end() :])
    if after and after.group(1):
        words = rjieba.tag(after.group(1))
        nouns = []
        for word, tag in words:
            if tag.startswith("n") or tag in ("vn", "j", "l"):
                nouns.append(word)
            else:
                break
        if nouns:
            return nouns[-1]
    before = re.search(rf"([{CJK}]+)$", question[: m.start()])
    if before:
        words = [w for w, _ in rjieba.tag(before.group(1))]
        while words and words[-1] in _ZH_FUNCTION:
            words.pop()
        if words and len(words[-1]) >= 2:
            return words[-1]
    return None


def _en_head(rest: str) -> str | None:
    """The noun an English count is about: the last word of the phrase after "how many" / "of"."""
    phrase = []
    for word in re.findall(r"[A-Za-z][A-Za-z'-]*|[^\sA-Za-z]", rest):
        low = word.lower()
        if low in _EN_SKIP:
            continue
        # A function word (a verb's auxiliary, a preposition, a conjunction) ends the phrase.
        if not word[0].isalpha() or low in FUNCTION_WORDS:
            break
        phrase.append(word)
    if not phrase or phrase[-1].lower() in _EN_COUNTERS:
        return None
    return phrase[-1]


def states(sentence: str, kind: str) -> bool:
    """Whether a sentence states an answer of this kind (a figure, a share, a date)."""
    text = _LABEL.sub("", sentence)
    if kind == "date":
        return bool(_DATE.search(text))
    if kind == "share":
        return bool(_SHARE.search(text))
    return bool(_FIGURE.search(_YEAR_LIKE.sub("", text)))


def _head_forms(head: str, lang: str) -> list[str] | None:
    """The strings that show a sentence names the head (None: the head cannot be judged)."""
    if lang == "zh":
        return [head]
    from .dictionary import translations

    forms = translations(head)
    return [head.lower(), *forms] if forms else None


def unstated(question: str, lang: str, hits: Sequence["Hit"]) -> str | None:
    """Why the best hits do not answer a number or date question (None when they may)."""
    want = expected_answer(question, lang)
    if want is None or not hits:
        return None
    forms = _head_forms(want.head, lang) if want.kind == "number" and want.head else None
    for hit in hits[:CHECK_PASSAGES]:
        p = hit.passage
        if p.kind in ("cover", "back"):
            continue
        spans = hit.sentences or p.sentences
        if want.kind == "date":
            spans = spans[:DATE_SENTENCES]
        for s, e in spans:
            sentence = p.text[s - p.start : e - p.start]
            if not states(sentence, want.kind):
                continue
            if forms is None:
                return None
            flat = _squash(sentence).lower()
            if any(f in flat for f in forms):
                return None
    if want.kind == "date":
        return "none of the closest passages gives a date for this"
    if want.kind == "share":
        return "none of the closest passages gives a share or percentage"
    if forms is not None:
        return f"none of the closest passages gives a figure for \u201c{want.head}\u201d"
    return "none of the closest passages gives a figure"


@dataclass(frozen=True)
class Grounding:
    """Names and years of a question that the corpus never mentions (empty: nothing to object)."""

    missing: tuple[str, ...]

    @property
    def not_found(self) -> bool:
        return bool(self.missing)


def _squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


class Grounder:
    """Checks questions against the corpus text (kept whitespace-free and lower-cased once)."""

    def __init__(self, corpus_texts: list[str]) -> None:
        joined = "\n".join(corpus_texts)
        self.flat = _squash(joined)
        self.lower = joined.lower()

    def __call__(self, question: str, lang: str) -> Grounding:
        return ground(question, self.flat, self.lower, lang)


def ground(question: str, flat: str, lower: str, lang: str) -> Grounding:
    """Which names and years of `question` (already Simplified) are absent from the corpus, given
    its text without whitespace (`flat`) and lower-cased (`lower`)."""
    missing: list[str] = []
    for year in _YEAR.findall(question):
        if year not in flat:
            missing.append(year)
    if lang == "zh":
        import rjieba

        for word, tag in rjieba.tag(question):
            if tag in _NAME_TAGS and len(word) >= 2 and not _CN_NUMERAL.match(word) and word not in flat:
                missing.append(word)
    else:
        from .dictionary import english_dictionary

        dictionary = english_dictionary()
        for m in _EN_NAME.finditer(question):
            words = [w for w in re.split(r"[ -]", m.group(1)) if w.lower() not in FUNCTION_WORDS]
            if not words or m.start() == 0 and len(words) == 1 and m.group(1).split()[0].lower() in FUNCTION_WORDS:
                continue
            # Single capitalised words are mostly months, demonyms and surnames the dictionary
            # renders differently from the report (Trump, America, June): only names of two or
            # more words are judged.
            if len(words) < 2:
                continue
            name = " ".join(words)
            if name.lower() in lower:
                continue
            translations = dictionary.get(name.lower()) if hasattr(dictionary, "get") else None
            # Only a name the dictionary knows can be judged absent; an unknown one is left alone.
            if translations and not any(_squash(t) in flat for t in translations):
                missing.append(name)
    return Grounding(tuple(dict.fromkeys(missing)))
