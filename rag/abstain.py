"""Deciding that the report does not answer a question.

Similarity scores do not separate unanswerable questions here: the dev set's unanswerable
questions are about the report's own topics (a later summit, a statistic it does not give), and
score as high as answerable ones (measured; see README). What does separate some of them is a
named thing the report never mentions. So a question is flagged when it is about a name that
appears nowhere in the corpus in any spelling, or a year or month of a year the corpus never
mentions (`Grounder`). A name is a name by evidence, not by a part-of-speech guess: a CC-CEDICT
proper noun (`rag.names`). This is deliberately conservative: a false "not found" hides a real
answer, which is worse than listing the closest passages without the flag.

The second check is on the answer's type. A question that asks for a number ("多少次导弹试射",
"How many Chinese students …") or a date ("哪一年", "When did …") is answered only by a sentence
that states one; a number must also sit beside the thing counted (the question's head noun, in
Chinese or through CC-CEDICT). When none of the closest passages has such a sentence, the report
does not give the figure, however close its passages are in topic. A date must also sit in a
sentence that speaks of what the question dates (`Grounder.events`: its rare nouns and verbs), and
a question asking who holds an office ("Who is the current Secretary-General of ASEAN?") needs a
person named in the best sentences (`asked_for`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

from .expand import DOCUMENT_WORDS, STATING_WORDS
from .text import ARTICLES, CJK, FUNCTION_WORDS, has_cjk

if TYPE_CHECKING:
    from .retrieve import Hit

_MONTH_NAMES = ("january", "february", "march", "april", "may", "june", "july", "august", "september",
                "october", "november", "december")
_YEAR = re.compile(r"(?<!\d)(1[89]\d\d|20\d\d)(?!\d)")


#: How many of the best passages the answer-type check reads, and how many of each passage's
#: best-matching sentences it reads for a date (a number is tied to its head noun instead).
CHECK_PASSAGES = 3
DATE_SENTENCES = 2

_TIME_Q = re.compile(
    r"何时|什么时候|什么时间|哪一?年|哪个月|几月|^\s*when\b|\bwhen (?:did|was|were|is|will|does|do|has|have)\b"
    r"|\b(?:which|what) (?:year|month)\b",
    re.I,
)
# Questions that want a day of the month, not just a year or a month.
_DAY_Q = re.compile(r"哪一?天|哪一?日|几月几[日号]|几号|\b(?:which|what) (?:day|date)\b|\bon what day\b", re.I)
# 哪几个/哪几项 asks which ones, not how many.
_QTY_ZH = re.compile(r"多少|多大|(?<!哪)几(?=[个次名项家国位倍成条种])")
_SHARE_WORDS = re.compile(r"比例|比重|占比|百分之几|百分比|\b(?:share|percentage|proportion|fraction|per ?cent)\b", re.I)
# "How many/much …", and "what is the <measure> of …" where the measure is a noun whose value is a
# quantity (with up to two modifiers before it: "the total annual value of").
_QTY_EN = re.compile(
    r"\bhow (?:many|much|large|big)\b|\bwhat (?:was|is|were|are|will be) the (?:[a-z]+ ){0,2}?"
    r"(?:value|number|amount|volume|size|share|percentage|proportion|rate|figure|total|sum|count|cost|price) of\b"
    r"|\bwhat (?:share|percentage|proportion|fraction) of\b",
    re.I,
)
#: Copulas: in "how large is <X>" the thing measured is X (in "how much did X grow" it is not X).
_EN_AUXILIARIES = {"is", "are", "was", "were"}
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
# A date: a year, a month, a part of a year, a decade or a century (1970年代, 21世纪). Words that
# only place an event relative to another (以来, 期间, 中期, 前夕) are not dates: nearly every
# sentence of a report has one.
_DATE = re.compile(
    r"(?:1[89]|20)\d\d\s*年|\d{1,2}\s*月|年初|年底|年末|年中|上半年|下半年|[一二三四五六七八九十]+月"
    r"|\d+\s*年代|[一二三四五六七八九十]+年代|\d+\s*世纪|[一二三四五六七八九十]+世纪"
)
# A day of a month: 16日, 1月1号, 11月16日, "16 November", "November 16".
_DAY = re.compile(
    r"\d{1,2}\s*[日号]|[一二三四五六七八九十]+[日号]"
    r"|\b\d{1,2}\s+(?:" + "|".join(_MONTH_NAMES) + r")\b|\b(?:" + "|".join(_MONTH_NAMES) + r")\s+\d{1,2}\b",
    re.I,
)
_LABEL = re.compile(r"^\s*\d+\.\d+\s")
# A question that asks for a year or a month, not a time in general.
_CALENDAR_Q = re.compile(r"哪一?年|哪个月|几月|\b(?:which|what) (?:year|month)\b", re.I)
_NUMERIC_DATE = re.compile(r"(?<!\d)(?:1[89]|20)\d\d\s*([-./])\s*(?:0?[1-9]|1[0-2])\s*\1\s*(?:0?[1-9]|[12]\d|3[01])(?!\d)")
# A time of day: it answers "when" and "什么时间" as a date does.
_CLOCK = re.compile(
    r"凌晨|清晨|早晨|上午|中午|下午|傍晚|晚上|晚间|深夜|午夜|夜间|北京时间|当地时间|\d{1,2}\s*[时点]|\d{1,2}:\d\d"
    r"|\b(?:midnight|dawn|morning|afternoon|evening|night|noon)\b|\b\d{1,2}\s*[ap]\.?m\b",
    re.I,
)
#: Titles of office (a general class: the holder of one is a person): "who is the <title>",
#: "which <title>", "<title>是谁".
_TITLES_EN = (r"(?:president|vice[- ]president|prime minister|premier|(?:foreign |defen[cs]e )?minister"
              r"|secretary(?:[- ]general)?|chair(?:man|woman|person)?|ambassador|envoy|spokes(?:person|man|woman)"
              r"|king|queen|chancellor|governor|mayor|commander|director(?:[- ]general)?)")
_TITLES_ZH = "总统|副总统|总理|首相|部长|外长|防长|秘书长|主席|领导人|大使|特使|发言人|国王|总督|州长|市长|司令|首脑|国务卿"
_PERSON_EN = re.compile(
    rf"\bwho (?:is|was|are|were|will be) (?:the )?(?:\w+ ){{0,3}}?{_TITLES_EN}\b|\bwhich (?:\w+ ){{0,2}}?{_TITLES_EN}\b", re.I
)
_PERSON_ZH = re.compile(rf"(?:{_TITLES_ZH})(?:是谁|为何人)|(?:谁|哪位)(?:是|担任|出任)[{CJK}]{{0,8}}?(?:{_TITLES_ZH})")
_TITLE_ZH = re.compile(_TITLES_ZH)
#: Function words between the thing counted and 多少 (copulas, approximators, particles): 约为多少.
_ZH_FUNCTION = {"是", "有", "为", "约", "约为", "达", "共", "一共", "总共", "大约", "了", "进行", "的", "在", "占", "到", "达到"}


@dataclass(frozen=True)
class Expectation:
    """What kind of answer a question asks for: a "number", a "share" or a "date"; `head` is the
    thing counted as the question names it (None when the question does not name it)."""

    kind: str
    head: str | None = None


@lru_cache(maxsize=512)
def expected_answer(question: str, lang: str) -> Expectation | None:
    """The answer type a question asks for that a sentence states as a figure or a date ("number",
    "share", "date", "day"), or None for an open question (why, how, what …). Cached: the ranking's
    answer-type boost and the not-found checks each ask it of the same question."""
    if lang == "zh":
        m = _QTY_ZH.search(question)
        if m:
            if _SHARE_WORDS.search(question):
                return Expectation("share")
            return Expectation("number", _zh_head(question, m))
    else:
        m = _QTY_EN.search(question)
        if m:
            if _SHARE_WORDS.search(question[m.start() : m.end() + 12]):
                return Expectation("share")
            return Expectation("number", _en_head(question[m.end() :], count=m.group(0).lower() == "how many"))
        measure = _en_measure(question)
        if measure:
            return measure
    if _DAY_Q.search(question):
        return Expectation("day")
    if _TIME_Q.search(question):
        return Expectation("date")
    return None


@lru_cache(maxsize=512)
def asked_for(question: str, lang: str) -> Expectation | None:
    """What the not-found check looks for in the best sentences: `expected_answer`, or a "person"
    when the question asks who holds an office ("Who is the current Secretary-General of ASEAN?",
    "…的中国国防部长是谁？"; `head` is the office as the question writes it). A count or a share
    comes first ("How many ministers …"); the office-holder before a date ("Which president
    chaired the 2022 summit?" asks for a person, not a year). The ranking does not read persons."""
    want = expected_answer(question, lang)
    if want is not None and want.kind in ("number", "share"):
        return want
    m = (_PERSON_ZH if lang == "zh" else _PERSON_EN).search(question)
    if m:
        title = re.search(_TITLES_ZH if lang == "zh" else _TITLES_EN, m.group(0), re.I)
        return Expectation("person", title.group(0) if title else None)
    return want


# "What was/is [the] <noun phrase>" ending the clause: the phrase is what is asked for.
_WHAT_IS = re.compile(r"\bwhat (?:was|is|were|are|will be) (?:the )?((?:[a-z][a-z-]* ){0,2}[a-z][a-z-]*)\s*(\bof\b|\bin\b|\bfor\b|\bamong\b|\bat\b|\bduring\b|[?,.]|$)", re.I)
#: Chinese suffixes of a quantity noun (a general class read off the word's rendering, not a list
#: of English words): 率 rate (投票率), 额 sum (贸易额), 量 quantity (产量), 数 number (人数), 值 value
#: (总值), 价 price, 费 fee.
_QUANTITY_SUFFIX = ("率", "额", "量", "数", "值", "价", "费")


def _en_measure(question: str) -> Expectation | None:
    """The figure "What was voter turnout in …" asks for: the noun phrase after "what was/is" is a
    quantity when CC-CEDICT's first rendering of it (the last two words, else the last word) is a
    quantity noun by its Chinese suffix (voter turnout -> 参选率, death toll -> 死亡人数). The thing
    counted is that noun, or what follows "of" ("the death toll of the floods": floods), as for
    "what is the <measure> of". None otherwise ("What was the outcome" -> 结果: not a quantity)."""
    from .dictionary import translations

    m = _WHAT_IS.search(question)
    if not m:
        return None
    words = m.group(1).split()
    if any(w.lower() in FUNCTION_WORDS for w in words):
        return None
    for n in (2, 1):
        if len(words) >= n:
            phrase = " ".join(words[-n:])
            forms = translations(phrase)
            if forms:
                if not forms[0].endswith(_QUANTITY_SUFFIX):
                    return None
                if m.group(2).lower() == "of":
                    return Expectation("number", _en_head(question[m.end() :]))
                return Expectation("number", phrase)
    return None


def _zh_head(question: str, m: re.Match) -> str | None:
    """The noun a Chinese count is about: the one after "多少次/几个", else the one before "多少"."""
    import rjieba

    # "多少亿欧元的商业合同": the unit before 的 measures the noun after it, which is the head.
    unit = re.match(rf"[{CJK}]{{0,5}}?的([{CJK}]+)", question[m.end() :])
    if unit:
        words = [w for w in rjieba.cut(unit.group(1)) if len(w) >= 2]
        if words:
            return words[-1]
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


def _en_head(rest: str, count: bool = False) -> str | None:
    """The noun an English count is about: the last word of the phrase after "how many" / "of".

    After "how many" (`count`) the phrase ends at its first plural noun, the thing counted: in "How
    many people took part in …" the words after "people" are its verb, not what is counted; after
    a counter ("people", "times") the verb says what is counted ("How many people died": died). After
    a copula, a phrase ending in an -ing word is a subject and its progressive verb ("how much was
    the rebar worker earning"): what is measured is the verb's object, which the question does not
    name, so there is no head to judge."""
    phrase = []
    # A word may hold digits ("P-8A"): only a figure or a mark by itself ends the phrase.
    words = re.findall(r"[A-Za-z][A-Za-z0-9'-]*|[^\sA-Za-z]", rest)
    # "How large is <subject> …": the thing measured is the subject after the copula.
    copula = bool(words) and words[0].lower() in _EN_AUXILIARIES
    if copula:
        words = words[1:]
    for i, word in enumerate(words):
        low = word.lower()
        if low in _EN_SKIP:
            continue
        # A function word (a verb's auxiliary, a preposition, a conjunction) ends the phrase; an
        # acronym that spells one ("US", as `rag.dictionary` files it) does not.
        if not word[0].isalpha() or (low in FUNCTION_WORDS and not (len(word) > 1 and word.isupper())):
            break
        phrase.append(word)
        if count and _plural(word):
            # "How many people died": a counter's verb says what is counted (deaths).
            after = words[i + 1] if i + 1 < len(words) else ""
            if low in _EN_COUNTERS and after[:1].isalpha() and after.lower() not in FUNCTION_WORDS:
                return after
            break
    if not phrase or phrase[-1].lower() in _EN_COUNTERS:
        return None
    if copula and len(phrase) >= 2 and phrase[-1].lower().endswith("ing"):
        return None
    return phrase[-1]


#: English plurals not formed with -s (a closed class of the language, not words of a question).
_IRREGULAR_PLURALS = {"people": "person", "men": "man", "women": "woman", "children": "child", "feet": "foot",
                      "mice": "mouse", "teeth": "tooth"}


def _plural(word: str) -> bool:
    """Whether an English word is a plural noun form: -s (not -ss, -us, -is; not an acronym such
    as US) or an irregular plural."""
    low = word.lower()
    if low in _IRREGULAR_PLURALS:
        return True
    return len(low) > 3 and not word.isupper() and low.endswith("s") and not low.endswith(("ss", "us", "is"))


def states(sentence: str, kind: str) -> bool:
    """Whether a sentence states an answer of this kind (a figure, a share, a date)."""
    text = _LABEL.sub("", sentence)
    if kind == "person":
        return _names_person(text)
    if kind == "date":
        return bool(_DATE.search(text))
    if kind == "day":
        return bool(_DAY.search(text))
    if kind == "share":
        return bool(_SHARE.search(text))
    return bool(_FIGURE.search(_YEAR_LIKE.sub("", text)))


def _names_person(sentence: str) -> bool:
    """Whether a sentence names a person: a name CC-CEDICT gives life dates for (拜登, 习近平), or a
    word the segmenter takes for a person's name next to a title (总统尹锡悦, 国务卿布林肯); in
    text without Chinese, two capitalised words."""
    if not has_cjk(sentence):
        return re.search(r"\b[A-Z][a-z]+ [A-Z][a-z]+", sentence) is not None
    import rjieba

    from .names import proper_nouns

    table = proper_nouns()
    words = rjieba.tag(_squash(sentence))
    for i, (word, tag) in enumerate(words):
        if len(word) >= 2 and word in table and table[word].person:
            return True
        if tag.startswith("nr") and 2 <= len(word) <= 4:
            near = (words[i - 1][0] if i else "") + "|" + (words[i + 1][0] if i + 1 < len(words) else "")
            if _TITLE_ZH.search(near):
                return True
    return False


def _head_forms(head: str, lang: str) -> list[str] | None:
    """The strings that show a sentence names the head (None: the head cannot be judged)."""
    if lang == "zh":
        return [head]
    from .dictionary import translations

    from .dictionary import lemmas

    forms = translations(head)
    # An irregular plural is looked up by its singular (women -> woman: 妇女, 女性).
    singular = _IRREGULAR_PLURALS.get(head.lower())
    if singular:
        forms = [*forms, *translations(singular)]
    # A unit or a thing Chinese names with one character (tons -> 吨, ships -> 船): prose writes
    # 3万吨, 两艘船, which no two-character rendering (公吨, 船只) matches.
    chars = _single_characters()
    forms = [*forms, *(c for w in (*lemmas(head.lower()), singular or "") for c in chars.get(w, ()))]
    return [head.lower(), *dict.fromkeys(forms)] if forms else None


@lru_cache(maxsize=1)
def _single_characters() -> dict[str, tuple[str, ...]]:
    """English word -> the one-character CC-CEDICT headwords whose whole sense is that word
    ("ton" -> 吨, "ship" -> 船, 舶): the characters `rag.dictionary` leaves out as too ambiguous
    to search with, which still show that a sentence names a thing counted."""
    import gzip

    from .dictionary import _cedict_path

    path = _cedict_path()
    out: dict[str, list[str]] = {}
    if path is None:
        return {}
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        for line in fh:
            parts = line.split(" ", 3)
            if len(parts) < 4 or len(parts[1]) != 1 or not parts[2].startswith("[") or parts[2][1:2].isupper():
                continue
            char = parts[1]
            gloss = parts[3].strip().strip("/")
            for sense in gloss.split("/"):
                sense = re.sub(r"\([^)]*\)", "", sense).strip().lower()
                if re.fullmatch(r"[a-z]+", sense):
                    out.setdefault(sense, []).append(char)
    return {w: tuple(dict.fromkeys(cs)) for w, cs in out.items()}


def unstated(
    question: str, lang: str, hits: Sequence["Hit"], about: Sequence["Name"] = (),
    documents: frozenset[str] | None = None, events: Sequence[frozenset[str]] = (),
) -> str | None:
    """Why the best hits do not answer a number or date question (None when they may).

    `about` are the names the question is about (`Grounder.about`): a figure or a date answers
    only in a passage that speaks of every one of them, in any spelling ("How large is Sri Lanka's
    external debt?" is not answered by a passage on another country's debt). `documents`
    (`Grounding.documents`), when given, are the only documents whose passages may answer.
    The best passages are the best of the report's body: a cover or back-matter passage (title,
    publisher) never states an answer and takes no place among them."""
    want = asked_for(question, lang)
    if want is None or not hits:
        return None
    forms = _head_forms(want.head, lang) if want.kind in ("number", "person") and want.head else None
    best = [h for h in hits if h.passage.kind not in ("cover", "back")][:CHECK_PASSAGES]
    if documents is not None:
        best = [h for h in best if h.passage.source in documents]
    if about:
        best = [h for h in best if all(name.mentioned_in(h.passage.text) for name in about)]
    sentences = []
    for hit in best:
        p = hit.passage
        spans = hit.sentences or p.sentences
        if want.kind in ("date", "day", "person"):
            spans = spans[:DATE_SENTENCES]
        sentences += [p.text[s - p.start : e - p.start] for s, e in spans]
    # Where the best sentences speak of the office asked about, the one that does must name its
    # holder; where none does, any person named will do.
    if want.kind == "person" and forms and not any(f in _squash(t).lower() for t in sentences for f in forms):
        forms = None
    # "When / 什么时间 / 何时" may ask for a time of day ("深夜至凌晨"); "which year" may not.
    clock = want.kind == "date" and not _CALENDAR_Q.search(question)
    for sentence in sentences:
        text = _LABEL.sub("", sentence)
        stated = states(sentence, want.kind) or (clock and _CLOCK.search(text))
        # A date written in figures (2025-09-03, 2025.9.3, 2025/9/3) states a year, a month and a day.
        if not (stated or (want.kind in ("date", "day") and _NUMERIC_DATE.search(text))):
            continue
        # A date answers only in a sentence that speaks of what the question dates.
        if events and not any(f in _squash(sentence).lower() for forms_ in events for f in forms_):
            continue
        if forms is None:
            return None
        flat = _squash(sentence).lower()
        if any(f in flat for f in forms):
            return None
    passages = "the closest passages"
    if documents is not None:
        named = [*(name.shown for name in about), *dict.fromkeys(_YEAR.findall(question))]
        passages += " from a document that mentions " + ", ".join(named)
    elif about:
        passages += " about " + ", ".join(name.shown for name in about)
    if want.kind == "person":
        return f"none of {passages} names the {want.head or 'person'} asked for"
    if want.kind == "date":
        return f"none of {passages} gives a date for this"
    if want.kind == "day":
        return f"none of {passages} gives the day"
    if want.kind == "share":
        return f"none of {passages} gives a share or percentage"
    if forms is not None:
        return f"none of {passages} gives a figure for \u201c{want.head}\u201d"
    return f"none of {passages} gives a figure"


@dataclass(frozen=True)
class Name:
    """A name a question is about, with every spelling a passage could use for it: English,
    Chinese (Simplified) and the one-character forms of its Chinese spellings (美 for 美国, 华 for
    中国) that prose writes in compounds (中美, 访华)."""

    shown: str
    english: frozenset[str]
    chinese: frozenset[str]
    short: frozenset[str] = frozenset()
    #: For a name made of one-character forms (中美), what names each part: 中美 is also spoken
    #: of by a passage on 中国 and 美国.
    parts: tuple[frozenset[str], ...] = ()

    def mentioned_in(self, text: str) -> bool:
        """Whether a passage speaks of this name, in any spelling, short forms included."""
        from .question import to_simplified

        return self._in(_squash(to_simplified(text)), " ".join(text.split()).lower(), short=True)

    def mentioned_in_doc(self, flat: str, lower: str) -> bool:
        """Whether a document (whitespace-free Simplified, and lower-cased) names it in full."""
        return self._in(flat, lower, short=False)

    def _in(self, flat: str, lower: str, short: bool) -> bool:
        if any(w in flat for w in (self.chinese | self.short if short else self.chinese) if w):
            return True
        if short and self.parts and all(any(w in flat for w in part) for part in self.parts):
            return True
        return any(_word_in(n.lower(), lower) for n in self.english)


def _word_in(word: str, lower: str) -> bool:
    """Whether a lower-case word or phrase occurs in lower-cased text as a whole word (a plain
    substring test first: the regex only runs where the text has it)."""
    return word in lower and re.search(rf"(?<![a-z]){re.escape(word)}(?![a-z])", lower) is not None


@dataclass(frozen=True)
class Grounding:
    """What the corpus says of a question's names and dates: those it never mentions (`missing`),
    those it mentions but never in one document (`apart`), and the names the question is about
    with their spellings (`about`, for the answer-type check). Nothing missing or apart: nothing
    to object."""

    missing: tuple[str, ...]
    apart: tuple[str, ...] = ()
    about: tuple["Name", ...] = ()
    #: For a question that asks for a figure or a date, in a corpus of several documents: the
    #: sources of those that mention every name the question is about (in full, not by a
    #: one-character form) and every year and month of a year it names; only their passages can
    #: state its figure or date. None: any passage may (one document, a question with no name or
    #: year, or one that asks for no figure or date).
    documents: frozenset[str] | None = None
    #: For a question that asks for a date: what it dates, as the words a sentence could use
    #: (each a set of spellings), rare in the corpus (`Grounder.events`). Empty: not judged.
    events: tuple[frozenset[str], ...] = ()

    @property
    def not_found(self) -> bool:
        return bool(self.missing or self.apart)

    @property
    def reason(self) -> str | None:
        if self.missing:
            return "the report never mentions " + ", ".join(self.missing)
        if self.apart:
            return "no document mentions " + ", ".join(self.apart) + " together"
        return None


def _month_in(year: str, month: str, flat: str, lower: str, bare_months: frozenset[str]) -> bool:
    """Whether a text (whitespace-free, and lower-cased) mentions a month of a year: 2022年8月,
    "august 2022", or that month without its year ("5月，…" may be that very month)."""
    return f"{year}年{month}月" in flat or f"{_MONTHS[int(month) - 1]} {year}" in lower or month in bare_months


def _squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


_MONTHS = _MONTH_NAMES
_EN_MONTH_YEAR = re.compile(r"\b(" + "|".join(_MONTHS) + r")\s+(?:\d{1,2},?\s+)?((?:19|20)\d\d)\b", re.I)
_ZH_MONTH_YEAR = re.compile(r"((?:19|20)\d\d)年(\d{1,2})月")
_ZH_BARE_MONTH = re.compile(r"(?<![年\d])(\d{1,2})月")
#: Sentence ends, to count a corpus's sentences.
_SENTENCE_END = re.compile(r"[。！？；]")
#: A word in more than this share of a corpus's sentences does not show what a sentence is about.
COMMON_SHARE = 0.1
#: An English word with more CC-CEDICT renderings than this is a general word ("take" has 14,
#: "place" 19; "railway" 1, "consensus" 1): a question dating only such words is not judged.
GENERAL_SENSES = 10
#: Words that frame a question about the report rather than say what it asks ("according to the
#: report", "does the report say"): the class of words that name the source, not the matter.
_EN_FRAME_WORDS = DOCUMENT_WORDS | STATING_WORDS | frozenset("mention mentions mentioned".split())
#: Words that name a date or a span of time: in "on what date did …" they are what is asked, not
#: what is dated (a Chinese question's date words are left out by `_DATE` the same way).
_DATE_WORDS = frozenset({"date", "dates", "day", "days", "year", "years", "month", "months", "time", "times"})
#: Calendar words are dates, not names (CC-CEDICT spells 六月 "June" with a capital): the date
#: checks judge them.
_CALENDAR = frozenset((*_MONTHS, "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"))
# A capitalised English run: "Phnom Penh", "Indo-Pacific Economic Framework", "Xi'an".
_EN_RUN = re.compile(r"(?<![\w'])([A-Z][\w'’.-]*(?:\s+(?:of|the|and|de|du)?\s*[A-Z][\w'’.-]*)*)")
# Whose view a question asks about, not what it asks about: "according to X", "in X's view",
# "from X's perspective", "in the eyes of X", "as X sees it"; 据X, 在X看来, X认为, X眼中.
# The framing's first word may open the question ("According to ASEAN, …"): its first letter
# is matched in either case; the name itself must be capitalised.
_EN_FRAMING = re.compile(
    r"\b[Aa]ccording to (?:the )?[A-Z][\w'’.-]*(?:\s+[A-Z][\w'’.-]*)*"
    r"|\b(?:[Ii]n|[Ff]rom|[Bb]y) [A-Z][\w'’.-]*(?:\s+[A-Z][\w'’.-]*)*['’]s? (?:view|eyes|opinion|words|assessment|judg(?:e)?ment|perspective|reading|standpoint|telling|account)\b"
    r"|\b[Ii]n the (?:view|eyes|opinion|words|judg(?:e)?ment) of (?:the )?[A-Z][\w'’.-]*(?:\s+[A-Z][\w'’.-]*)*"
    r"|\b[Aa]s [A-Z][\w'’.-]*(?:\s+[A-Z][\w'’.-]*)* (?:sees|saw|puts|put|tells|told) it\b"
)
_ZH_FRAMING = re.compile(rf"据[{CJK}]{{2,8}}?(?:称|说|所说|表示|报道|统计)|在[{CJK}]{{2,8}}?看来|[{CJK}]{{2,8}}?(?:认为|眼中|看来)")
# A numeral first is a count, whatever CC-CEDICT makes of the word (哪三国: three countries, not
# the Three Kingdoms).
_POSSESSIVE = re.compile(r"['’]s?$")
_ZH_COUNT = re.compile(r"^[一二三四五六七八九十两几百千万多]")
#: Sentence-opening words of a question, capitalised only by position.
_EN_OPENERS = frozenset("""what which who whom whose when where why how does did do is are was were the in on at
    according apart by for from to of and or as after before during under with this that these those
    can could should would will has have had""".split())


def _straddled(text: str, start: int, end: int) -> bool:
    """Whether a word the segmenter cut could as well be cut otherwise: its first or last
    character forms a word with the character outside it, and what it keeps still forms a word (中美元首
    cut 中/美元/首: 元首 is a word and so is 中美, so 美元 is not read as a name the question is
    about). A reading that would leave a character alone is not another cut: in 中国是在哪一年, 国是
    is a word too, but 中 would stand alone, so 中国 is a name the question is about."""
    import rjieba

    def word(s: str) -> bool:
        return len(s) >= 2 and has_cjk(s) and rjieba.has_word(s)

    left, right = text[max(start - 1, 0) : start + 1], text[end - 1 : end + 1]
    if start > 0 and has_cjk(left[:1]) and rjieba.has_word(left):
        # The rest of the word, alone or with the character after it, must be a word.
        if word(text[start + 1 : end]) or (end < len(text) and word(text[start + 1 : end + 1])):
            return True
    if end < len(text) and has_cjk(right[-1:]) and rjieba.has_word(right):
        if word(text[start : end - 1]) or (start > 0 and word(text[start - 1 : end - 1])):
            return True
    return False


class Grounder:
    """Checks questions against the corpus text (kept whitespace-free and lower-cased once).

    A question is flagged when it is *about* a name the corpus never mentions in any spelling, or a
    year, or a month of a year, that it never mentions. A name is a name by evidence: a CC-CEDICT
    proper noun (`rag.names`), in Chinese or English; its spellings are the Simplified form (the
    question is converted already), its English names and their other Chinese renderings, the
    country a capital city stands for, and the report's own bilingual term pairs. The corpus is
    compared without whitespace, so a word broken across a page ("华盛\n\n顿") still counts. A name
    inside a framing ("according to ASEAN", "在华盛顿看来") is whose view is asked, not what the
    question is about, and is not judged.
    """

    def __init__(
        self, corpus_texts: list[str], term_pairs: dict[str, set[str]] | None = None, sources: list[str] | None = None
    ) -> None:
        from .question import to_simplified

        #: Per document, whitespace-free Simplified text and lower-cased text with single spaces.
        self.docs = [(_squash(to_simplified(t)), " ".join(t.split()).lower()) for t in corpus_texts]
        #: Each document's source (a passage's `source`), in the order of `docs`; None: not known.
        self.sources = list(sources) if sources is not None else None
        self.flat = "".join(flat for flat, _ in self.docs)
        self.lower = " ".join(low for _, low in self.docs)
        self.term_keys = {k.lower() for k in (term_pairs or {})}
        #: Months the corpus names without a year ("5月，…"): read once, not per question.
        self.bare_months = frozenset(_ZH_BARE_MONTH.findall(self.flat))
        #: Sentences of the corpus (at least one), for how common a word is (`events`).
        self.sentences = max(1, len(_SENTENCE_END.findall(self.flat)) + len(re.findall(r"[.!?](?:\s|$)", self.lower)))
        self.doc_bare_months = [frozenset(_ZH_BARE_MONTH.findall(flat)) for flat, _ in self.docs]

    def __call__(self, question: str, lang: str) -> Grounding:
        names, about = self._read_names(question, lang)
        missing = [*self._dates(question), *names]
        apart = () if missing else self._apart(question, tuple(about))
        # Only a question that asks for a figure or a date reads them (`unstated`).
        typed = not (missing or apart) and asked_for(question, lang) is not None
        documents = self._documents(question, tuple(about)) if typed else None
        want = asked_for(question, lang) if typed else None
        events = self.events(question, lang, about) if want is not None and want.kind in ("date", "day") else ()
        return Grounding(tuple(dict.fromkeys(missing)), apart, tuple(about), documents, events)

    def events(self, question: str, lang: str, about: Sequence[Name] = ()) -> tuple[frozenset[str], ...]:
        """The words of a question that say what it dates, each as the spellings a sentence could
        use (an English word through CC-CEDICT; a word with no rendering is left out): its content
        words (nouns and verbs) that are not a name it is about nor a date, and that are rare in
        the corpus (in at most COMMON_SHARE of its sentences: 中国, 合作 are in a third of a
        report's sentences and show nothing)."""
        import rjieba

        from .dictionary import translations

        named = {w.lower() for name in about for w in (name.shown, *name.english, *name.chinese)}
        # The words of a name ("East Asia Summit") are the name, not what is dated.
        named |= {w.lower() for name in about for w in re.findall(r"[A-Za-z0-9'-]+", name.shown)}
        out: list[frozenset[str]] = []
        if lang == "zh":
            for word, tag in rjieba.tag(_squash(question)):
                if len(word) < 2 or word in named or not (tag[:1] in ("n", "v") or tag == "eng") or _DATE.search(word):
                    continue
                # 申请加入 is also spoken of by a sentence that says 加入.
                forms = frozenset({word.lower(), *(w.lower() for w in rjieba.cut_for_search(word) if len(w) >= 2)})
                if not self._common(forms):
                    out.append(forms)
        else:
            words = [w.lower() for w in re.findall(r"[A-Za-z][A-Za-z'-]*", question)]
            # A word is also spoken of by a rendering of a phrase it is part of ("Secretary of
            # State" -> 国务卿).
            phrased: dict[int, set[str]] = {}
            specific = False
            for n in (3, 2):
                for i in range(len(words) - n + 1):
                    rendered = translations(" ".join(words[i : i + n]))
                    for j in range(i, i + n):
                        phrased.setdefault(j, set()).update(rendered)
            for i, low in enumerate(words):
                if low in FUNCTION_WORDS or low in named or low in _CALENDAR or low in _EN_FRAME_WORDS:
                    continue
                # Words of the asking, not of what is dated: the word a "how" asks about ("How old
                # was X when he died": old), and the words of a date ("on what date").
                if low in _DATE_WORDS or (i and words[i - 1] == "how"):
                    continue
                own = translations(low)
                rendered = [*own, *phrased.get(i, ())]
                if not rendered:
                    continue
                forms = frozenset({low, *rendered})
                if not self._common(forms):
                    out.append(forms)
                    specific = specific or len(own) <= GENERAL_SENSES
            # Words CC-CEDICT renders many ways ("take place", "visit") may show a sentence speaks
            # of the event, but alone they do not say which event is dated: not judged.
            if not specific:
                return ()
        return tuple(dict.fromkeys(out))

    def _common(self, forms: frozenset[str]) -> bool:
        """Whether a word's most frequent spelling occurs more often than COMMON_SHARE of the corpus's sentences."""
        count = max((self.flat.count(f) if has_cjk(f) else self.lower.count(f)) for f in forms)
        return count > COMMON_SHARE * self.sentences

    def dated(self, question: str) -> frozenset[str] | None:
        """The sources of the documents that mention every year and month of a year the question
        names (2022, "November 2022", 2022年8月), for ranking a library (`rag.retrieve.undated_last`):
        a question about a year's events is about the reports that speak of that year. None when
        that narrows nothing: one document, no sources, no year named, or no document or every
        document mentions them all."""
        found = self._documents(question, ())
        return found if found and len(found) < len(self.sources) else None

    def _documents(self, question: str, about: tuple[Name, ...]) -> frozenset[str] | None:
        """The sources of the documents that mention every name, year and month of a year of the
        question (None when that cannot narrow anything: one document, no sources, or no name or
        year). A figure in a passage of another document is about something else: a report on a
        typhoon gives a death toll, not the one of "Pakistan's 2022 floods"."""
        years, months = self._when(question)
        if self.sources is None or len(self.docs) < 2 or not (about or years):
            return None
        return frozenset(
            source for i, source in enumerate(self.sources) if self._mentions_all(i, about, years, months)
        )

    def _apart(self, question: str, about: tuple[Name, ...]) -> tuple[str, ...]:
        """The names, years and months of a year of a question when the corpus mentions each of
        them but no one document mentions them all: no passage can then speak of what the
        question joins (the 2023 summit in a city that only another report names)."""
        years, months = self._when(question)
        if len(self.docs) < 2 or len(about) + len(years) < 2:
            return ()
        if any(self._mentions_all(i, about, years, months) for i in range(len(self.docs))):
            return ()
        dated = {year for year, _, _ in months}
        return (*(name.shown for name in about), *(y for y in years if y not in dated), *(shown for _, _, shown in months))

    def _when(self, question: str) -> tuple[list[str], list[tuple[str, str, str]]]:
        """The years a question names, and its months of a year as (year, month number, shown)."""
        years = list(dict.fromkeys(_YEAR.findall(question)))
        return years, self._months(question)

    def _mentions_all(self, i: int, about: tuple[Name, ...], years: list[str], months) -> bool:
        """Whether document i mentions every one of these names, years and months of a year."""
        flat, lower = self.docs[i]
        return (
            all(y in flat for y in years)
            and all(_month_in(year, month, flat, lower, self.doc_bare_months[i]) for year, month, _ in months)
            and all(name.mentioned_in_doc(flat, lower) for name in about)
        )

    # -- dates ---------------------------------------------------------------------------------
    def _dates(self, question: str) -> list[str]:
        out = [y for y in _YEAR.findall(question) if y not in self.flat]
        for year, month, shown in self._months(question):
            # Judged per document: a month named without its year ("5月，…") may be that very
            # month only in a document that names the year.
            if year not in out and not any(
                year in flat and _month_in(year, month, flat, lower, self.doc_bare_months[i])
                for i, (flat, lower) in enumerate(self.docs)
            ):
                out.append(shown)
        return out

    @staticmethod
    def _months(question: str) -> list[tuple[str, str, str]]:
        """The months of a year a question names: (year, month number, as the question writes it)."""
        months = [(y, str(_MONTHS.index(m.lower()) + 1), f"{m} {y}") for m, y in _EN_MONTH_YEAR.findall(question)]
        months += [(y, str(int(m)), f"{y}年{m}月") for y, m in _ZH_MONTH_YEAR.findall(_squash(question)) if 1 <= int(m) <= 12]
        return months

    # -- names ---------------------------------------------------------------------------------
    def _present(self, english: set[str], chinese: set[str]) -> bool:
        if any(_squash(w) in self.flat for w in chinese if w):
            return True
        for name in english:
            low = name.lower()
            if low in self.term_keys or _word_in(low, self.lower):
                return True
        return False

    def about(self, question: str, lang: str) -> list[Name]:
        """The names a question is about, with every spelling a passage could use: the Chinese
        proper nouns, English phrases of two or more capitalised words that are names, and single
        English words that are a name's own English name ("Pakistan"), each only when the corpus
        mentions it somewhere. Names in a framing ("according to ASEAN") are whose view is asked
        and are left out."""
        return self._read_names(question, lang)[1]

    def _names(self, question: str, lang: str) -> list[str]:
        return self._read_names(question, lang)[0]

    def _read_names(self, question: str, lang: str) -> tuple[list[str], list[Name]]:
        """(names the corpus never mentions, names the question is about that it does mention)."""
        from .names import short_forms, short_parts

        missing: list[str] = []
        about: list[Name] = []
        for shown, english, chinese, judged in self._candidates(question, lang):
            present = (lang == "zh" and shown in self.flat) or self._present(english, chinese)
            if not present:
                if judged:
                    missing.append(shown)
            # A name the corpus never spells out cannot be asked of its passages (a demonym
            # CC-CEDICT renders as a people, "Chinese" -> 中国籍, or a name the report writes
            # otherwise): only names the corpus does mention say what a passage must speak of.
            elif all(n.shown != shown for n in about):
                parts = short_parts(shown) if lang == "zh" else ()
                about.append(Name(shown, frozenset(english), frozenset(chinese), frozenset(short_forms(chinese)), parts))
        return missing, about

    def _candidates(self, question: str, lang: str):
        """(shown, English spellings, Chinese spellings, judged absent when missing) for each name of
        the question outside a framing. Single capitalised English words are never judged absent:
        mostly a demonym or an adjective ("Malaysian industrial capability"), a language, or a
        name the report writes another way ("America" for 美国, "Bandung" as the 万 of 雅万高铁),
        which no dictionary lookup can settle; the ones that are a name's own English name still
        say what a passage must speak of."""
        from .names import chinese_spellings, english_spellings, is_english_name, is_own_name, proper_nouns

        if lang == "zh":
            import rjieba

            table = proper_nouns()
            about = _ZH_FRAMING.sub("，", question)
            for word, start, end in rjieba.tokenize(about):
                if len(word) >= 2 and word in table and not _ZH_COUNT.match(word) and not _straddled(about, start, end):
                    yield (word, *chinese_spellings(word), True)
            return
        about = _EN_FRAMING.sub(",", question)
        for run in _EN_RUN.findall(about):
            words = run.split()
            while words and words[0].lower() in _EN_OPENERS:
                words = words[1:]
            i = 0
            while i < len(words):
                for j in range(min(len(words), i + 4), i, -1):
                    phrase = _POSSESSIVE.sub("", " ".join(words[i:j])).strip(".,'’")
                    if not phrase[:1].isupper() or phrase.lower() in _CALENDAR:
                        continue
                    if j > i + 1 and is_english_name(phrase):
                        yield (phrase, *english_spellings(phrase), True)
                    elif j == i + 1 and is_own_name(phrase):
                        yield (phrase, *english_spellings(phrase), False)
                    else:
                        continue
                    i = j
                    break
                else:
                    i += 1
