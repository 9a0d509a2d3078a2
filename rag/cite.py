"""Citations: how a hit is shown and serialised, and how a citation is resolved back to the text."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from .chunking import Passage, passage_to_dict
from .corpus import Document
from .errors import CitationError
from .retrieve import Hit

_LINE_REF = re.compile(r"^(?P<source>.+?):L?(?P<a>\d+)(?:-L?(?P<b>\d+))?$")


def reference(p: Passage) -> str:
    """`corpus/<file>:L<start>-<end>`: the form a reader can open and check."""
    return f"{p.source}:L{p.line_start}-{p.line_end}"


def page_label(p: Passage) -> str:
    """`p. 3` or `pp. 3-4` for a passage of a converted PDF; empty for other files."""
    if not p.pages:
        return ""
    first, last = p.pages
    return f"p. {first}" if first == last else f"pp. {first}-{last}"


def page_fields(p: Passage) -> dict:
    """The JSON page fields of a passage of a converted PDF: `page` (where it starts) and `pages` [first, last]."""
    return {"page": p.pages[0], "pages": list(p.pages)} if p.pages else {}


def hit_to_dict(hit: Hit, title: str | None = None) -> dict:
    """The JSON form of a hit (the fields `rag ask --json` and the HTTP API return): its rank and
    score, the passage (`passage_to_dict`), the title of its document (its file name when it has
    none), the highlighted sentence, and `hidden`: the absolute spans of the text that are link
    targets or citation markers (`rag.markup.hidden_spans`), which a display may fold away; `text`
    itself is always exactly the cited characters of the file."""
    p = hit.passage
    out = {"rank": hit.rank, "score": round(hit.score, 6), **passage_to_dict(p), "title": title if title is not None else Path(p.source).name}
    out["hidden"] = hidden_at(p.text, p.start)
    out.update(page_fields(p))
    if hit.highlight:
        s, e = hit.highlight
        out["highlight"] = {"start": s, "end": e, "text": p.text[s - p.start : e - p.start]}
    return out


def hidden_at(text: str, start: int = 0) -> list[list[int]]:
    """The link targets and citation markers of a piece of a file (its text and absolute start) that
    a display folds (`rag.markup.hidden_spans`), as absolute `[start, end]` offsets: the `hidden`
    fields of the JSON."""
    from .markup import hidden_spans

    return [[start + s, start + e] for s, e in hidden_spans(text)]


#: A citation marker's label shown as itself when it is a short name (`sina`, `news.cn`), else the link's host.
_SHORT_NAME = re.compile(r"[^/\s]{1,20}")


@dataclass(frozen=True)
class Piece:
    """A run of a passage as a reader sees it, and the characters of the file it stands for.

    `kind` is `text` (shown as it is), `label` (a link's words, shown as they are; `url` is its
    target), or `fold` (a link target or citation marker folded away: `shown` is "" or, for a
    citation marker, its source's short name in brackets, `[sina]`; `url` the (first) target).
    """

    start: int
    end: int
    kind: str
    shown: str
    url: str | None = None


def marker_name(label: str, url: str) -> str:
    """The short name a folded citation marker is shown as: its label when that is a short name
    (`sina`, `163`, `news.cn`), else the host of its link (`www.` dropped)."""
    label = label.strip()
    if _SHORT_NAME.fullmatch(label) and not label.lower().startswith("http"):
        return label
    host = urlsplit(url).hostname or url
    return host[4:] if host.startswith("www.") else host


def folded(text: str, start: int = 0) -> list[Piece]:
    """A passage (its text and absolute start) as a reader is shown it: link targets and citation
    markers (`rag.markup.hidden_spans`, the `hidden` field of a hit) folded away, so that
    `[标题](https://…)` reads `标题` and `增长 [sina](https://…)。` reads `增长[sina]。`.

    The pieces cover the text end to end, in order, with the file's absolute offsets: a display
    can mark them (the highlight, matched words) by offset, and what is cited never changes.
    """
    from .markup import LINK, hidden_spans

    spans = hidden_spans(text)
    if not spans:
        return [Piece(start, start + len(text), "text", text)] if text else []
    links = list(LINK.finditer(text))
    labels = {(m.start("label"), m.end("label")): m.group("url") for m in links}
    out: list[Piece] = []

    def visible(a: int, b: int) -> None:
        if a < b:
            url = labels.get((a, b))
            out.append(Piece(start + a, start + b, "label" if url else "text", text[a:b], url))

    pos = 0
    for s, e in spans:
        visible(pos, s)
        inside = [m for m in links if s <= m.start() and m.end() <= e]  # whole links folded: citation markers
        target = next((m for m in links if m.start("url") - 2 >= s and m.end() <= e and m not in inside), None)
        shown = "".join(f"[{marker_name(m.group('label'), m.group('url'))}]" for m in inside)
        link = target or (inside[0] if inside else None)
        out.append(Piece(start + s, start + e, "fold", shown, link.group("url") if link else None))
        pos = e
    visible(pos, len(text))
    return out


def shown_text(text: str, start: int = 0) -> str:
    """What a reader is shown of a passage (`folded`, joined)."""
    return "".join(p.shown for p in folded(text, start))


@dataclass(frozen=True)
class Context:
    """A cited span with the lines around it, for `rag show`."""

    document: Document
    start: int
    end: int
    line_start: int
    line_end: int
    before: str
    text: str
    after: str
    section: tuple[str, ...]
    passage_ids: tuple[str, ...]


def context_to_dict(ctx: Context) -> dict:
    """The JSON of a cited span's context (`GET /passages/…`): `before` and `after`, the file's
    exact text, and what a display folds in each of the three pieces, as in a hit's `hidden`:
    `hidden` (the cited text), `before_hidden`, `after_hidden` (absolute offsets; `before` starts
    at `start - len(before)`, `after` at `end`)."""
    return {
        "before": ctx.before,
        "after": ctx.after,
        "hidden": hidden_at(ctx.text, ctx.start),
        "before_hidden": hidden_at(ctx.before, ctx.start - len(ctx.before)),
        "after_hidden": hidden_at(ctx.after, ctx.end),
    }


def shown_context(ctx: Context) -> tuple[str, str, str]:
    """(before, text, after) of a context as a reader is shown them (`shown_text` of each piece:
    link targets and citation markers folded, as in a hit): what `rag show` prints."""
    return (shown_text(ctx.before, ctx.start - len(ctx.before)), shown_text(ctx.text, ctx.start),
            shown_text(ctx.after, ctx.end))


def _within(doc: Document, start: int, end: int, lines: int) -> tuple[str, str]:
    first = max(1, doc.line_of(start) - lines)
    last_line = doc.line_of(max(start, end - 1)) + lines
    a = doc.line_starts[first - 1]
    b = doc.line_starts[last_line] if last_line < len(doc.line_starts) else len(doc.text)
    return doc.text[a:start], doc.text[end:b]


def _unknown_file(source: str, by_source: dict[str, Document]) -> CitationError:
    """A citation of a file the corpus does not hold: the closest few names, not all (a library has many)."""
    import difflib

    names = {Path(s).name: s for s in by_source}
    close = difflib.get_close_matches(source, sorted(by_source), n=3, cutoff=0.6)
    close += [names[n] for n in difflib.get_close_matches(Path(source).name, sorted(names), n=3, cutoff=0.6) if names[n] not in close]
    hint = f"; did you mean {', '.join(close[:3])}?" if close else ""
    return CitationError(f"{source!r} is not a file of the corpus{hint} (list them with: rag docs)")


def resolve(spec: str, docs: list[Document], passages: list[Passage], context_lines: int = 2) -> Context:
    """A passage id (`corpus/x.txt#12`) or a line reference (`corpus/x.txt:40`, `…:L40-42`), with context.

    Only files of the corpus can be shown: a reference to anything else is refused.
    """
    spec = spec.strip()
    by_source = {d.source: d for d in docs}
    for p in passages:
        if p.id == spec:
            doc = by_source[p.source]
            before, after = _within(doc, p.start, p.end, context_lines)
            return Context(doc, p.start, p.end, p.line_start, p.line_end, before, p.text, after, p.section, (p.id,))
    m = _LINE_REF.match(spec)
    if not m and "#" in spec:  # a passage id the index does not hold
        source = spec.rpartition("#")[0]
        if source not in by_source:
            raise _unknown_file(source, by_source)
        count = sum(p.source == source for p in passages)
        held = f"{source} has passages #1 to #{count}" if count else f"{source} has no indexed passage"
        raise CitationError(f"no passage {spec!r} in the index: {held}")
    if not m:
        raise CitationError(f"{spec!r} is neither a passage id (corpus/<file>#N) nor a line reference (corpus/<file>:L40)")
    source = m.group("source")
    # "./corpus/x.txt" names corpus/x.txt: Path drops "./" segments (a prefix, not leading "." and
    # "/" characters, which would turn ".hidden.md" into "hidden.md" and "../x" into "x").
    normal = Path(source).as_posix()
    doc = by_source.get(source) or by_source.get(normal)
    if doc is None:  # a bare file name
        names = {Path(s).name: d for s, d in by_source.items()}
        doc = names.get(normal) if "/" not in normal else None
    if doc is None:
        raise _unknown_file(source, by_source)
    a = int(m.group("a"))
    b = int(m.group("b") or a)
    n_lines = len(doc.line_starts)
    if a > b:
        raise CitationError(f"{spec!r} ends before it starts: write the first line first (…:L{b}-{a})")
    if not (1 <= a <= b <= n_lines):
        raise CitationError(f"{doc.source} has lines 1-{n_lines}; {spec!r} is outside them")
    start = doc.line_starts[a - 1]
    end = doc.line_starts[b] if b < n_lines else len(doc.text)
    text = doc.text[start:end].rstrip("\r\n")
    end = start + len(text)
    covering = [p for p in passages if p.source == doc.source and p.start < max(end, start + 1) and p.end > start]
    before, after = _within(doc, start, max(end, start), context_lines)
    section = covering[0].section if covering else ()
    return Context(doc, start, end, a, b, before, text, after, section, tuple(p.id for p in covering))
