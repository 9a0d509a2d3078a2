"""Why a passage matched an English question: its words beside the Chinese words they were bridged to.

Retrieval already expands an English question with Chinese terms (the report's own bracket pairs,
initials of a spelled-out acronym, CC-CEDICT renderings; see `rag.expand.expand_query`). This
module says, for one hit, which of those Chinese words the passage holds and where:

    [{"query": "ageing", "passage": "老龄化", "spans": [[5012, 5015], ...]}]

with absolute character offsets into the document (like `start`/`end` of a passage). Only words
the retriever actually used count: a candidate rendering is kept when all its tokens are among the
tokens the expansion added to the question, so the page never claims a bridge the search did not take.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .dictionary import dictionary_word as _dict_word
from .dictionary import english_dictionary
from .dictionary import senses as _senses
from .expand import SenseGroup, expand_query, sense_groups
from .tokens import english_key as _en_key
from .text import has_cjk
from .tokens import tokenize

#: Longest English phrase looked up in the dictionary (as the expansion does), and longest
#: phrase whose initials may spell one of the report's acronyms.
_MAX_PHRASE_WORDS = 4
_MAX_NAME_WORDS = 10
_SMALL_WORDS = frozenset(("of", "the", "and", "on", "in", "for", "a", "an", "to", "with"))
_WORD = re.compile(r"[A-Za-z0-9]+")


@dataclass(frozen=True)
class MatchedTerm:
    """An English word or phrase of the question, a Chinese word of the passage it was bridged to,
    and where that word occurs in the passage (absolute document offsets, end exclusive)."""

    query: str
    passage: str
    spans: tuple[tuple[int, int], ...]

    def to_dict(self) -> dict:
        return {"query": self.query, "passage": self.passage, "spans": [list(s) for s in self.spans]}


@dataclass(frozen=True)
class Bridge:
    """One English span of the question (character offsets in the question) and a Chinese term."""

    query: str
    start: int
    end: int
    term: str


def _initials(words: list[str]) -> set[str]:
    low = [w.lower() for w in words]
    return {"".join(w[0] for w in low), "".join(w[0] for w in low if w not in _SMALL_WORDS)}


def _used(term: str, added: set[str]) -> bool:
    """Whether the expansion used `term`: all its tokens are among the tokens it added.

    Tokens are rjieba words plus character bigrams, so a term whose bigrams are not all there
    fails without being tokenized (most dictionary senses of a word fail this way)."""
    if len(term) > 1 and not all(term[i : i + 2] in added for i in range(len(term) - 1)):
        return False
    toks = [t for t in tokenize(term) if has_cjk(t)]
    return bool(toks) and all(t in added for t in toks)


def bridges(question: str, term_pairs: dict[str, set[str]], groups: list[SenseGroup] | None = None) -> list[Bridge]:
    """The (English span, Chinese term) pairs the lexical expansion of `question` used, in question order.

    `groups` is `rag.expand.sense_groups(question, term_pairs)` when the caller has it already (the
    search used the same groups: `rag.assistant` computes them once per question)."""
    words = list(_WORD.finditer(question))
    if not words:
        return []
    if groups is None:
        groups = sense_groups(question, term_pairs)
    expanded = expand_query(question, term_pairs, groups=groups)
    # The senses the expansion chose for each word or phrase (proper nouns for a name: Trump ->
    # 特朗普), ahead of the dictionary's other senses of it.
    chosen = {g.key: g.terms for g in groups}
    added = {t for t in set(expanded) - set(tokenize(question)) if has_cjk(t)}
    if not added:
        return []
    expanded = set(expanded)
    # Per word: its term-pair key part ("China's" -> china; the "s" after an apostrophe is dropped)
    # and whether the expansion kept it as a content word (English stopwords are left out).
    keys = []
    for w in words:
        apostrophe = w.start() > 0 and question[w.start() - 1] in "'’"
        keys.append("" if apostrophe and w.group().lower() == "s" else _en_key(w.group()))
    content = [bool(k) and k in expanded for k in keys]
    dictionary = english_dictionary()
    acronyms = {k: v for k, v in term_pairs.items() if len(k) >= 3 and k.isalpha()}
    out: list[Bridge] = []
    seen: set[tuple[int, int, str]] = set()

    def add(i: int, j: int, terms) -> None:
        s, e = words[i].start(), words[j - 1].end()
        for term in terms:
            if (s, e, term) not in seen and _used(term, added):
                seen.add((s, e, term))
                out.append(Bridge(question[s:e], s, e, term))

    for i in range(len(words)):
        for j in range(min(len(words), i + _MAX_NAME_WORDS), i, -1):
            key = " ".join(k for k in keys[i:j] if k)
            if key in term_pairs:
                add(i, j, sorted(term_pairs[key]))
            if j - i >= 2 and words[i].group()[0].isupper() and words[j - 1].group()[0].isupper():
                for initials in _initials([w.group() for w in words[i:j]]):
                    if len(initials) >= 3 and initials in acronyms:
                        add(i, j, sorted(acronyms[initials]))
            if j - i <= _MAX_PHRASE_WORDS and content[i] and content[j - 1]:
                phrase = " ".join(_dict_word(w.group()) for w in words[i:j])
                add(i, j, list(dict.fromkeys([*chosen.get(phrase, ()), *_senses(phrase, dictionary)])))
    out.sort(key=lambda b: (b.start, -(b.end - b.start)))
    return out


def _occurrences(text: str, term: str) -> list[tuple[int, int]]:
    """Where `term` occurs in `text`, allowing line breaks and spaces between its characters
    (the report wraps lines mid-word)."""
    pattern = r"\s*".join(re.escape(c) for c in term)
    return [(m.start(), m.end()) for m in re.finditer(pattern, text)]


def matched_terms(passage_text: str, passage_start: int, found: list[Bridge]) -> list[MatchedTerm]:
    """The bridges whose Chinese term the passage holds, with absolute spans.

    A bridge inside a longer one whose marks cover its own ("ageing" → 老龄化 inside
    "population ageing" → 人口老龄化) is left out: the reader sees the longer pair once.
    """
    hits: list[tuple[Bridge, tuple[tuple[int, int], ...]]] = []
    for b in found:
        spans = tuple((passage_start + s, passage_start + e) for s, e in _occurrences(passage_text, b.term))
        if spans:
            hits.append((b, spans))
    kept: list[MatchedTerm] = []
    for b, spans in hits:
        covered = any(
            o is not b and o.start <= b.start and b.end <= o.end
            and (o.end - o.start, len(o.term)) > (b.end - b.start, len(b.term))
            and all(any(a <= s and e <= z for a, z in ospans) for s, e in spans)
            for o, ospans in hits
        )
        if not covered and not any(m.query == b.query and m.passage == b.term for m in kept):
            kept.append(MatchedTerm(b.query, b.term, spans))
    return kept
