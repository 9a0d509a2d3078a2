"""Questions as users type them, made safe and comparable: validated, truncated, Simplified."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from . import config
from .errors import EmptyQuestionError
from .text import detect_lang, to_simplified

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")


@dataclass(frozen=True)
class Question:
    """The question as asked and the text the retrievers see."""

    original: str
    text: str
    lang: str  # "zh" or "en", as rag.text.detect_lang decides (the one rule for every consumer)
    notices: tuple[str, ...] = ()


def prepare(question: str, max_chars: int = config.MAX_QUESTION_CHARS) -> Question:
    """Validate and normalise a question; raise EmptyQuestionError when nothing is left to ask."""
    if not isinstance(question, str):
        raise EmptyQuestionError("the question must be text")
    notices = []
    text = _SURROGATE.sub("\ufffd", question)
    text = _CONTROL.sub(" ", text)
    text = unicodedata.normalize("NFKC", text) if any(ord(c) > 0xFF00 for c in text) else text
    text = " ".join(text.split())
    if not text:
        raise EmptyQuestionError("the question is empty; ask something, e.g. rag ask \"东盟的中心地位是什么？\"")
    if len(text) > max_chars:
        notices.append(f"question truncated from {len(text)} to {max_chars} characters")
        text = text[:max_chars]
    text = to_simplified(text)
    return Question(original=question, text=text, lang=detect_lang(text), notices=tuple(notices))
