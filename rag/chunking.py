"""Passages: the units that are retrieved and cited, cut from the section tree.

Each recommendation is one passage; in the long parts, paragraphs are packed sentence by sentence
into passages of at most `max_chars` characters, and very short paragraphs are merged with the next
one. Every passage keeps its exact span in the file: `document.text[start:end] == text`.

Markdown links to web pages are kept whole (no sentence or passage ends inside one), and their
targets and citation markers (rag.markup) neither count toward `max_chars` nor reach the index:
a passage is as long as its words, not its URLs. A header (`front`) and link dumps (`links`) are
not cut into passages at all. Text without such links is cut exactly as before.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass

from bisect import bisect_right
from typing import Callable

from .corpus import Document
from .markup import hidden_prefix, link_spans, strip_hidden
from .sections import Paragraph, Section, parse_sections, walk
from .text import CJK

#: Bump when output changes (passage boundaries, sentence spans, indexed text): the index
#: records this number.
VERSION = 3

#: Paragraph kinds that are kept in the section tree but never become passages.
UNINDEXED_KINDS = ("front", "links")
#: Passage kinds cut from a report's cover page and back matter (title, publisher, address): citable,
#: but not the body text that states things.
MATTER_KINDS = ("cover", "back")
Size = Callable[[int, int], int]


def _raw_size(a: int, b: int) -> int:
    return b - a


def visible_size(text: str) -> Size:
    """Length of text[a:b] without link targets and citation markers (plain b - a when there are none)."""
    prefix = hidden_prefix(text)
    if prefix is None:
        return _raw_size
    return lambda a, b: (b - a) - (prefix[b] - prefix[a])


def _inside(links: list[tuple[int, int]], offset: int) -> bool:
    """Is `offset` strictly inside one of the (sorted, disjoint) link spans?"""
    i = bisect_right(links, (offset, float("inf"))) - 1
    return i >= 0 and links[i][0] < offset < links[i][1]

_SENTENCE = re.compile(r"[^。！？!?；;\r\n]*(?:[。！？!?；;]+[\"”’」』）)\]]*|(?=[\r\n])|$)")
_CLAUSE = re.compile(r"[^，,、：:]*(?:[，,、：:]+|$)")
_LINE_GAP = re.compile(r"[ \t\u3000]*(?:\r\n|\r|\n)[\s]*")
# Characters set without spaces between them: CJK ideographs, plus radicals, CJK punctuation,
# kana, full-width forms and curly quotes (a line break between two of them is no word gap).
_NO_SPACE = re.compile(f"[{CJK}\u2e80-\u33ff\u4dc0-\u4dff\uff00-\uffef“”‘’]")
_MARKUP = re.compile(r"\*\*|^#+\s*", re.M)


@dataclass(frozen=True)
class ChunkSettings:
    """How passages are cut and what text is embedded for them; hashed into the index manifest."""

    # Measured with `rag eval --compare` on the dev set (README, "Choices"): 450 beat 200/300/600,
    # and the section path in the embedded text hurt dense retrieval in both languages.
    max_chars: int = 450
    min_chars: int = 80
    section_in_text: bool = False
    version: int = 1

    @classmethod
    def with_overrides(cls, pairs: list[str]) -> "ChunkSettings":
        """Settings from `name=value` strings (e.g. `max_chars=300`, `section_in_text=true`)."""
        from .errors import InvalidArgumentError

        values: dict = {}
        fields = {f: type(getattr(cls(), f)) for f in cls.__dataclass_fields__}
        for pair in pairs:
            name, sep, raw = pair.partition("=")
            name = name.strip()
            if not sep or name not in fields or name == "version":
                raise InvalidArgumentError(f"bad chunking setting {pair!r}; use name=value with name one of "
                                           + ", ".join(f for f in fields if f != "version"))
            if fields[name] is bool:
                if raw.lower() not in ("true", "false", "1", "0", "yes", "no"):
                    raise InvalidArgumentError(f"{name} takes true or false, not {raw!r}")
                values[name] = raw.lower() in ("true", "1", "yes")
            else:
                try:
                    values[name] = int(raw)
                except ValueError:
                    raise InvalidArgumentError(f"{name} takes a whole number, not {raw!r}") from None
                if values[name] <= 0:
                    raise InvalidArgumentError(f"{name} must be positive")
        return cls(**values)

    def digest(self) -> str:
        """A short digest of the settings (what the index depends on in full: rag.index.dependencies)."""
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Passage:
    """A citable span of one corpus file, with its sentences (absolute spans) for highlighting."""

    id: str
    source: str
    section: tuple[str, ...]
    start: int
    end: int
    line_start: int
    line_end: int
    text: str
    kind: str
    sentences: tuple[tuple[int, int], ...]
    #: First and last page of a converted PDF the passage lies on (None for files without pages).
    pages: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        if self.pages is not None and not isinstance(self.pages, tuple):  # read back from JSON as a list
            object.__setattr__(self, "pages", tuple(self.pages))


def passage_to_dict(p: Passage) -> dict:
    """The JSON form of a passage, every field in declaration order (tuples as lists): what the
    index stores, and what `rag ask --json` and the HTTP API return for a passage or a hit."""
    return {
        "id": p.id,
        "source": p.source,
        "section": list(p.section),
        "start": p.start,
        "end": p.end,
        "line_start": p.line_start,
        "line_end": p.line_end,
        "text": p.text,
        "kind": p.kind,
        "sentences": [list(s) for s in p.sentences],
        "pages": list(p.pages) if p.pages else None,
    }


def passage_from_dict(d: dict) -> Passage:
    """The passage `passage_to_dict` wrote (extra keys, such as a hit's rank, are ignored)."""
    return Passage(
        id=d["id"],
        source=d["source"],
        section=tuple(d["section"]),
        start=d["start"],
        end=d["end"],
        line_start=d["line_start"],
        line_end=d["line_end"],
        text=d["text"],
        kind=d["kind"],
        sentences=tuple((int(s), int(e)) for s, e in d["sentences"]),
        pages=tuple(d["pages"]) if d.get("pages") else None,
    )


def sentence_spans(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """Sentences of text[start:end] as absolute spans, ended by 。！？；(and their closing quotes)."""
    spans = []
    for m in _SENTENCE.finditer(text, start, end):
        s, e = m.start(), m.end()
        while s < e and text[s].isspace():
            s += 1
        while e > s and text[e - 1].isspace():
            e -= 1
        if e > s:
            spans.append((s, e))
    links = link_spans(text, start, end)
    if links:  # a `?` or `;` inside a URL ends no sentence
        joined: list[tuple[int, int]] = []
        for s, e in spans:
            if joined and any(a < joined[-1][1] and s < b for a, b in links if a < s):
                joined[-1] = (joined[-1][0], e)
            else:
                joined.append((s, e))
        spans = joined
    return _merge_page_breaks(text, spans)


def _merge_page_breaks(text: str, spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """A sentence cut by a line break (page break) continues on the next line."""
    merged: list[tuple[int, int]] = []
    for s, e in spans:
        if merged and not re.search(r"[。！？!?；;][\"”’」』）)\]]*$", text[merged[-1][0] : merged[-1][1]]):
            merged[-1] = (merged[-1][0], e)
        else:
            merged.append((s, e))
    return merged


def _split_long(text: str, span: tuple[int, int], max_chars: int, size: Size = _raw_size) -> list[tuple[int, int]]:
    """Cut one over-long sentence at clause marks (never inside a link) so no piece is far above max_chars."""
    s, e = span
    if size(s, e) <= max_chars:
        return [span]
    links = link_spans(text, s, e)
    pieces: list[tuple[int, int]] = []
    cur = s
    for m in _CLAUSE.finditer(text, s, e):
        if m.end() == m.start() or (links and _inside(links, m.start())):
            continue
        if size(cur, m.end()) > max_chars and m.start() > cur:
            pieces.append((cur, m.start()))
            cur = m.start()
    pieces.append((cur, e))
    return [_trim(text, a, b) for a, b in pieces if text[a:b].strip()]


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    """A span without the whitespace (page breaks) at its ends."""
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _pack(spans: list[tuple[int, int]], max_chars: int, size: Size = _raw_size) -> list[list[tuple[int, int]]]:
    """Group consecutive sentences into pieces of at most max_chars (one sentence may exceed it)."""
    groups: list[list[tuple[int, int]]] = []
    for span in spans:
        if groups and size(groups[-1][0][0], span[1]) <= max_chars:
            groups[-1].append(span)
        else:
            groups.append([span])
    # Avoid a tiny tail: fold it into the previous piece when the result stays reasonable.
    if len(groups) > 1:
        tail = groups[-1]
        if size(tail[0][0], tail[-1][1]) < max_chars // 4 and size(groups[-2][0][0], tail[-1][1]) <= max_chars * 1.3:
            groups[-2].extend(groups.pop())
    return groups


def clean_text(text: str) -> str:
    """Text for embedding and BM25: page breaks and line breaks joined, Markdown marks, link targets
    and citation markers dropped."""
    text = strip_hidden(text)

    def join(m: re.Match) -> str:
        before = text[m.start() - 1] if m.start() else ""
        after = text[m.end()] if m.end() < len(text) else ""
        return "" if (_NO_SPACE.match(before) and _NO_SPACE.match(after)) else " "

    return _MARKUP.sub("", _LINE_GAP.sub(join, text)).strip()


def indexed_text(passage: Passage, settings: ChunkSettings) -> str:
    """What is embedded and indexed for a passage: optionally its section path, then its cleaned text."""
    body = clean_text(passage.text)
    # A recommendation's own title is its first clause, already in the body.
    path = passage.section[:-1] if passage.kind == "recommendation" else passage.section
    if settings.section_in_text and path:
        return " > ".join(path) + "\n" + body
    return body


def _units(
    section: Section, text: str, settings: ChunkSettings, size: Size = _raw_size
) -> list[tuple[list[tuple[int, int]], str]]:
    """(sentence spans, kind) for each passage of one section, before ids and lines are attached."""
    out: list[tuple[list[tuple[int, int]], str]] = []
    if not section.paragraphs:
        return out
    if all(p.kind == "recommendation" for p in section.paragraphs):
        spans = [sp for p in section.paragraphs for sp in sentence_spans(text, p.start, p.end)]
        return [(spans, "recommendation")] if spans else []
    carry: list[tuple[int, int]] = []
    barrier = 0  # passages before an unindexed paragraph take no text after it
    for p in section.paragraphs:
        if p.kind in UNINDEXED_KINDS:
            if carry:  # no passage runs across a paragraph that is not indexed
                out.append((carry, "prose"))
                carry = []
            barrier = len(out)
            continue
        if p.kind in MATTER_KINDS:
            out.append(([(p.start, p.end)], p.kind))
            continue
        spans = carry + [
            x for sp in sentence_spans(text, p.start, p.end) for x in _split_long(text, sp, settings.max_chars, size)
        ]
        carry = []
        if not spans:
            continue
        if size(spans[0][0], spans[-1][1]) < settings.min_chars:
            carry = spans
            continue
        out.extend((g, "prose") for g in _pack(spans, settings.max_chars, size))
    if carry:
        if len(out) > barrier and out[-1][1] == "prose":
            out[-1] = (out[-1][0] + carry, "prose")
        else:
            out.append((carry, "prose"))
    return out


def split_passages(doc: Document, settings: ChunkSettings = ChunkSettings()) -> list[Passage]:
    """Every passage of one document, in document order."""
    root = parse_sections(doc.text)
    size = visible_size(doc.text)
    passages: list[Passage] = []
    for section in walk(root):
        for spans, kind in _units(section, doc.text, settings, size):
            start, end = spans[0][0], spans[-1][1]
            passages.append(
                Passage(
                    id=f"{doc.source}#{len(passages) + 1}",
                    source=doc.source,
                    section=section.path,
                    start=start,
                    end=end,
                    line_start=doc.line_of(start),
                    line_end=doc.line_of(end - 1),
                    text=doc.text[start:end],
                    kind=kind,
                    sentences=tuple(spans),
                    pages=(doc.info.page_of(start), doc.info.page_of(end - 1)) if doc.info.page_starts else None,
                )
            )
    return passages


__all__ = ["ChunkSettings", "MATTER_KINDS", "Passage", "Paragraph", "split_passages", "indexed_text", "clean_text", "sentence_spans"]
