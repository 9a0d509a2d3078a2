"""Deciding that the report does not answer a question.

Similarity scores do not separate unanswerable questions here: the dev set's unanswerable
questions are about the report's own topics (a later summit, a statistic it does not give), and
score as high as answerable ones (measured; see README). What does separate some of them is a
named thing the report never mentions. So a question is flagged when it names a place, person or
organisation (Chinese names by their part-of-speech tag; English names of two or more capitalised
words that CC-CEDICT translates), or a year, that appears nowhere in the corpus, in either language. This is
deliberately conservative: a false "not found" hides a real answer, which is worse than listing
the closest passages without the flag.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_YEAR = re.compile(r"(?<!\d)(1[89]\d\d|20\d\d)(?!\d)")
_CN_NUMERAL = re.compile(r"^[一二三四五六七八九十两几百千万多]")
#: rjieba tags for places, persons, organisations (not nz: it also tags words like 英文).
_NAME_TAGS = {"ns", "nr", "nrt", "nrfg", "nt"}
_EN_NAME = re.compile(r"(?<![\w'])([A-Z][a-z]+(?:[ -][A-Z][a-z]+)*)")
_EN_NOT_NAMES = {
    "What", "Which", "Who", "Whom", "Whose", "When", "Where", "Why", "How", "Does", "Did", "Do", "Is",
    "Are", "Was", "Were", "The", "In", "On", "At", "According", "Apart", "By", "For", "From", "To",
    "Of", "And", "Or", "As", "After", "Before", "During", "Under", "With", "This", "That", "These",
}


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
        from .lexical import english_dictionary

        dictionary = english_dictionary()
        for m in _EN_NAME.finditer(question):
            words = [w for w in re.split(r"[ -]", m.group(1)) if w not in _EN_NOT_NAMES]
            if not words or m.start() == 0 and len(words) == 1 and m.group(1).split()[0] in _EN_NOT_NAMES:
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
