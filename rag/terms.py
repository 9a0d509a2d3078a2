"""The report's own bilingual terms: the English or acronym a Chinese term is paired with in
brackets, e.g. ``“印太经济框架”（IPEF）`` gives ``{"ipef": {"印太经济框架"}}``.

The index stores these pairs (``terms.json``); query expansion uses them to give an English
question, or an acronym in a Chinese one, the report's Chinese term.
"""

from __future__ import annotations

import re

from .text import CJK, CJK_RE
from .tokens import english_key, normalize

__all__ = ["VERSION", "extract_term_pairs"]

#: Bump when output changes (the index stores the pairs and records this number).
VERSION = 2

_OPEN_QUOTES = "“\"‘'《「『〈"
_CLOSE_QUOTES = "”\"’'》」』〉"
# Chinese (with quotes / book-title marks) immediately followed by a bracket.
_ZH_THEN_BRACKET_RE = re.compile(rf"([{CJK}{_OPEN_QUOTES}{_CLOSE_QUOTES}·]+)\s*\(([^()]*)\)")
# Latin words immediately followed by a bracket holding Chinese.
_EN_THEN_BRACKET_RE = re.compile(rf"([A-Za-z][A-Za-z0-9 .&'\-]*[A-Za-z0-9])\s*\(\s*([{CJK}]+)\s*\)")
_LATIN_TERM_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 .&'/\-]*$")
# Inside a bracket: "协商，Consultation；一致，Consensus".
_PAIR_IN_BRACKET_RE = re.compile(rf"^\s*([{CJK}]+)\s*[,:]\s*([A-Za-z][A-Za-z0-9 .&'\-]*?)\s*$")
# Leading parts of speech that are not part of a term: verbs, prepositions, adverbs,
# conjunctions, particles, pronouns ("通过东盟地区论坛" -> "东盟地区论坛").
_LEADING_POS = ("v", "p", "d", "c", "u", "r", "y", "e")
_MAX_TERM_CHARS = 16
_MAX_EN_WORDS = 8


def _trim_zh_term(run: str) -> str:
    """The Chinese term at the end of ``run`` (the text just before a bracket)."""
    run = run.rstrip()
    if run and run[-1] in _CLOSE_QUOTES:
        close = run[-1]
        body = run[:-1]
        # The matching opening mark (for ASCII quotes, the previous occurrence of the same char).
        openers = _OPEN_QUOTES[_CLOSE_QUOTES.index(close)] if close not in "\"'" else close
        start = max(body.rfind(o) for o in openers)
        inner = body[start + 1 :] if start >= 0 else body
        inner = "".join(CJK_RE.findall(inner)) if inner else ""
        if inner:
            return inner[-_MAX_TERM_CHARS * 2 :]
    # Unquoted: the CJK text after the last quote mark, minus leading verbs/prepositions/…
    tail = re.split(f"[{re.escape(_OPEN_QUOTES + _CLOSE_QUOTES)}·]", run)[-1]
    if not tail:
        return ""
    import rjieba  # loaded on first use

    tagged = [(w, pos) for w, pos in rjieba.tag(tail) if CJK_RE.search(w)]
    # Cut after the last particle 的/了 (a modifier ends there).
    for i in range(len(tagged) - 1, -1, -1):
        if tagged[i][0] in ("的", "了"):
            tagged = tagged[i + 1 :]
            break
    while len(tagged) > 1 and tagged[0][1].startswith(_LEADING_POS):
        tagged = tagged[1:]
    while len(tagged) > 1 and sum(len(w) for w, _ in tagged) > _MAX_TERM_CHARS:
        tagged = tagged[1:]
    return "".join(w for w, _ in tagged)


#: Words that end a clause's lead-in rather than start a term (verbs, prepositions, adverbs,
#: conjunctions: "卫星图像和|法新社", "解放军正式成立|战略支援部队"; not numerals: "美日印澳四方|安全合作").
_CUT_AFTER_POS = _LEADING_POS
_DATE_UNITS = "年月日号"  # a date unit ends a lead-in too ("…12月5日|正式退出…")
#: A tail kept after a cut is a name (one word the segmenter tags as an organisation, place, person
#: or other proper noun: 法新社) or at least this long: shorter common words (装备, 组织, 威慑) are
#: the head of a term, not the term.
_MIN_CUT_CHARS = 4
_NAME_POS = ("nt", "nz", "nr", "ns")


def _own_term(term: str, text: str) -> str:
    """``term`` without a lead-in the text shows is not part of it.

    The run before a bracket often starts mid-clause ("卫星图像和法新社（AFP）", "…解放军正式成立
    战略支援部队（PLASSF）"): the longest tail after a verb, preposition, conjunction, adverb or date
    unit that the text also uses on its own (more often than the whole run) is the term:
    "法新社" stands alone elsewhere, "改革委员会" of "国家发展和改革委员会" does not. Stripping a
    date's unit from a run that follows a digit ("2025年12月消费者价格指数" -> "月…" -> "消费者价格
    指数") as well cost lockbox half B, in the library, an English question's rank: not kept."""
    import rjieba  # loaded on first use

    words = [(w, pos) for w, pos in rjieba.tag(term)]
    whole = text.count(term)
    start = 0
    for i in range(1, len(words)):
        start += len(words[i - 1][0])
        if not (words[i - 1][1].startswith(_CUT_AFTER_POS) or words[i - 1][0] in _DATE_UNITS):
            continue
        tail = term[start:]
        named = i == len(words) - 1 and words[i][1] in _NAME_POS
        if (len(tail) >= _MIN_CUT_CHARS or named) and text.count(tail) > whole:
            return tail
    return term


def _add_pair(pairs: dict[str, set[str]], english: str, chinese: str) -> None:
    english = english.strip(" .-'")
    if not english or not chinese or not _LATIN_TERM_RE.match(english):
        return
    words = english.lower().split()
    key = " ".join(words[-_MAX_EN_WORDS:])
    if english_key(key):
        pairs.setdefault(key, set()).add(chinese)


def extract_term_pairs(text: str) -> dict[str, set[str]]:
    """Map lower-cased English words, phrases and acronyms to the Chinese terms the text pairs
    them with in brackets: ``印太经济框架 (IPEF)``, ``“集合威慑”（Integrated deterrence）``,
    ``《南海各方行为宣言》(DOC)``, ``Integrated deterrence（集合威慑）`` and, inside one bracket,
    ``（协商，Consultation；一致，Consensus）``. Chinese terms are returned in Simplified script."""
    pairs: dict[str, set[str]] = {}
    if not text:
        return pairs
    norm = normalize(text)
    for m in _ZH_THEN_BRACKET_RE.finditer(norm):
        before, inside = m.group(1), m.group(2).strip()
        if not inside:
            continue
        if CJK_RE.search(inside):
            for piece in re.split(r"[;]", inside):
                pm = _PAIR_IN_BRACKET_RE.match(piece)
                if pm:
                    _add_pair(pairs, pm.group(2), pm.group(1))
            continue
        if not re.search("[A-Za-z]", inside):
            continue
        term = _trim_zh_term(before)
        if term:
            term = _own_term(term, norm)
            _add_pair(pairs, inside, term)
    for m in _EN_THEN_BRACKET_RE.finditer(norm):
        _add_pair(pairs, m.group(1), m.group(2))
    return pairs
