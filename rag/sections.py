"""A file's section tree, from its own headings.

Two kinds of file, told apart by their headings:

* Ranked reports converted from paged documents (the CISS report): a heading that names a part
  (`第X部分`, `第X章`, `第X篇`) marks them. Headings are recognised by what they say, not only by
  their `#` count (the conversion used `#`, `##` and `###` inconsistently): `第X部分` is a part,
  `（一）`/`(一)` an area, a paragraph opening `1.1` inside an area a numbered recommendation.
  Paragraphs cut by page breaks are joined; short unpunctuated lines before the first and after
  the last paragraph are cover and back matter.
* Any other Markdown: `#`…`######` (and setext) headings give the levels, wherever the lines sit
  (no blank line is needed around a heading); a lone `#` heading is the title only when it opens
  the file (further down it is a section); a line that is only bold text (`**结论：**`) heads a
  subsection of the heading above it; a list is one paragraph, like any block of lines between
  blank lines; fenced code is kept whole.
  A `key: value` header at the top (`版次:`/`日期:`/`主题:`/`来源:`) is one `front` paragraph, and
  paragraphs that are mostly links (reference lists) are `links`: both stay in the tree, and
  neither is cut into passages (see rag.markup).

Every span is an offset pair into the decoded file text; nothing is re-found by searching.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .markup import front_matter, is_link_dump

_BLOCK = re.compile(r"[^\r\n]*\S[^\r\n]*(?:(?:\r\n|\r|\n)[^\r\n]*\S[^\r\n]*)*")
_MD_HEADING = re.compile(r"^\s{0,3}(#{1,6})\s*(.*?)\s*#*\s*$")
_BOLD_LINE = re.compile(r"^\s*\*\*(.+?)\*\*\s*$")
_PART = re.compile(r"^第[一二三四五六七八九十百\d]+(部分|章|篇)")
_AREA = re.compile(r"^[（(][一二三四五六七八九十]+[)）]")
_RECOMMENDATION = re.compile(r"^\s*(\d{1,2}\.\d{1,2})[ \t\u3000]+\S")
_SENTENCE_PUNCT = re.compile(r"[。，、；：！？,;:!?]")
_COMPLETE = re.compile(r"[。！？!?；;…:：.]['\"”’」』）)\]》]*\s*$")
_LINKISH = re.compile(r"<?(?:https?://|mailto:|www\.)\S+|\S+@\S+\.\w+|\]\(")
_CLAUSE_END = re.compile(r"[，。；：！？,;:!?]")

#: Bump when output changes (the section tree, paragraph spans): the index records this number.
VERSION = 3

#: Levels of the report's structure.
TITLE, PART, AREA, RECOMMENDATION = 0, 1, 2, 3
MATTER_MAX_CHARS = 120


@dataclass(frozen=True)
class Paragraph:
    """A paragraph of body text: one or more blocks joined across page breaks."""

    start: int
    end: int
    kind: str  # "prose", "recommendation", "cover", "back", "front" (a header) or "links" (a link dump)


@dataclass
class Section:
    """A heading and the paragraphs under it; `path` lists titles from the top."""

    title: str
    level: int
    path: tuple[str, ...]
    heading: tuple[int, int] | None
    paragraphs: list[Paragraph] = field(default_factory=list)
    children: list["Section"] = field(default_factory=list)


@dataclass(frozen=True)
class _Block:
    start: int
    end: int
    text: str


def _blocks(text: str) -> list[_Block]:
    return [_Block(m.start(), m.end(), m.group()) for m in _BLOCK.finditer(text)]


def _heading(block: _Block) -> tuple[str, int | None, int] | None:
    """(title, level or None when only its marks tell, number of `#`) if the block is a heading."""
    if "\n" in block.text or "\r" in block.text:
        return None
    line = block.text.strip().lstrip("\ufeff")  # a byte-order mark before the first heading
    md = _MD_HEADING.match(line)
    hashes = 0
    if md:
        hashes = len(md.group(1))
        line = md.group(2)
    bold = _BOLD_LINE.match(line)
    if bold:
        line = bold.group(1)
    title = line.strip().strip("*").strip()
    if _PART.match(title) and len(title) <= 60:
        return title, PART, hashes
    if _AREA.match(title) and len(title) <= 40 and not _SENTENCE_PUNCT.search(title[4:]):
        return title, AREA, hashes
    if md:
        return (title, None, hashes) if title else None
    if bold and len(title) <= 60:
        return title, None, hashes
    return None


def _is_matter(block: _Block) -> bool:
    """Cover-page and back-matter lines: short, with no sentence punctuation at all."""
    return len(block.text) <= MATTER_MAX_CHARS and not _SENTENCE_PUNCT.search(_LINKISH.sub(" ", block.text))


def is_complete(text: str) -> bool:
    """Does a paragraph end a sentence? If not, a page break cut it and the next block continues it."""
    return bool(_COMPLETE.search(text))


def recommendation_title(text: str) -> str:
    """`1.1 充分利用现有双多边对话机制`: the number and the first clause of a recommendation."""
    m = _CLAUSE_END.search(text)
    head = text[: m.start()] if m else text
    head = " ".join(head.split())
    return head if len(head) <= 40 else head[:40] + "…"


def parse_sections(text: str) -> Section:
    """The section tree of one file; the root holds the title and the opening text."""
    blocks = _blocks(text)
    if is_ranked(blocks):
        return _parse_ranked(blocks)
    return _parse_markdown(text)


def is_ranked(blocks: list[_Block]) -> bool:
    """Does a heading of the file name a part (第X部分/章/篇)? Then its headings' words rank them."""
    for b in blocks:
        head = _heading(b)
        if head is not None and head[1] == PART and b.text.lstrip().startswith(("#", "*")):
            return True
    return False


def _open_section(stack: list[Section], title: str, level: int, heading: tuple[int, int] | None) -> None:
    """A new section of `level` under the nearest open section of a lower level; it becomes the
    innermost open one (`stack` holds the open sections, the root first)."""
    while len(stack) > 1 and stack[-1].level >= level:
        stack.pop()
    parent = stack[-1]
    sec = Section(title=title, level=level, path=parent.path + (title,), heading=heading)
    parent.children.append(sec)
    stack.append(sec)


def _parse_ranked(blocks: list[_Block]) -> Section:
    """The tree of a ranked report (see the module docstring)."""
    prose_idx = [i for i, b in enumerate(blocks) if _heading(b) is None and not _is_matter(b)]
    first_prose = prose_idx[0] if prose_idx else len(blocks)
    last_prose = prose_idx[-1] if prose_idx else -1

    root = Section(title="", level=TITLE, path=(), heading=None)
    stack = [root]
    back: Section | None = None
    pending: list[_Block] = []  # blocks of the paragraph being built
    pending_kind = "prose"

    def flush() -> None:
        nonlocal pending
        if pending:
            stack[-1].paragraphs.append(Paragraph(pending[0].start, pending[-1].end, pending_kind))
            pending = []

    matter_run = False  # the previous block was cover or back matter
    for i, block in enumerate(blocks):
        head = _heading(block)
        if head is not None:
            title, level, hashes = head
            flush()
            matter_run = False
            if level is None:
                hashes = hashes or 2  # a bold line without `#` ranks like `##`
                level = TITLE if (not root.title and i < first_prose) else max(PART, min(hashes - 1, AREA))
            if level == TITLE and not root.title:
                root.title, root.path, root.heading = title, (title,), (block.start, block.end)
                continue
            _open_section(stack, title, max(level, PART), (block.start, block.end))
            continue
        if _is_matter(block) and (i < first_prose or i > last_prose):
            flush()
            if i < first_prose:
                kind, target = "cover", root
            else:
                if back is None:
                    del stack[1:]
                    _open_section(stack, "封底 Back matter", PART, None)
                    back = stack[-1]
                kind, target = "back", back
            paras = target.paragraphs
            if matter_run and paras and paras[-1].kind == kind:  # a heading between ends the run
                paras[-1] = Paragraph(paras[-1].start, block.end, kind)
            else:
                paras.append(Paragraph(block.start, block.end, kind))
            matter_run = True
            continue
        # Body text: continue a paragraph cut by a page break, else start a new one.
        matter_run = False
        if pending and not is_complete(pending[-1].text):
            pending.append(block)
            continue
        flush()
        rec = _RECOMMENDATION.match(block.text)
        if rec and stack[-1].level >= AREA:
            _open_section(stack, recommendation_title(block.text), RECOMMENDATION, None)
            pending_kind = "recommendation"
        else:
            pending_kind = "recommendation" if stack[-1].level == RECOMMENDATION else "prose"
        pending = [block]
    flush()
    return root


_ATX = re.compile(r"^\ufeff? {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
_SETEXT_UNDER = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_LIST_ITEM = re.compile(r"^[ \t]*(?:[-*+•]|\d{1,3}[.)、])[ \t]+\S")
_BOLD_HEADING = re.compile(r"^[ \t]*\*\*([^*\r\n]{1,60}?)[：:]?\*\*[ \t]*[：:]?[ \t]*$")
_MD_LINE = re.compile(r"([^\r\n]*)(?:\r\n|\r|\n|$)")


def _parse_markdown(text: str) -> Section:
    """The tree of a Markdown file from its own headings (see the module docstring)."""
    root = Section(title="", level=TITLE, path=(), heading=None)
    front = front_matter(text)
    pos = 0
    if front is not None:
        root.paragraphs.append(Paragraph(front.start, front.end, "front"))
        pos = front.end
    lines = [(m.start(), m.end(1)) for m in _MD_LINE.finditer(text, pos) if m.end() > m.start()]
    atx: list[tuple[int, int]] = []  # `#` headings outside fenced code
    fence: str | None = None
    for a, b in lines:
        line = text[a:b]
        if fence is not None:
            fence = None if line.strip().startswith(fence) else fence
        elif _FENCE.match(line):
            fence = _FENCE.match(line).group(1)[0] * 3
        elif _ATX.match(line) and (_ATX.match(line).group(2) or "").strip().strip("*").strip():
            atx.append((a, b))
    # A lone top-level heading opening the file (only the header and blank lines before it) is its
    # title. One further down is a section: were it the title, the root's paragraphs would lie on
    # both sides of it and a passage packed from them would span the heading line.
    h1 = [(a, b) for a, b in atx if len(_ATX.match(text[a:b]).group(1)) == 1]
    first_line = next(((a, b) for a, b in lines if text[a:b].strip()), None)
    title_at = h1[0] if len(h1) == 1 and first_line == h1[0] else None
    if title_at is None and front is not None and front.title:  # no title heading: the header names it
        root.title, root.path = front.title, (front.title,)

    stack = [root]
    heading_level = TITLE  # level of the nearest `#` heading: bold headings go one below it
    para: list[tuple[int, int]] = []
    fence = None

    def flush() -> None:
        nonlocal para
        if para:
            start, end = para[0][0], para[-1][1]
            kind = "links" if is_link_dump(text[start:end]) else "prose"
            stack[-1].paragraphs.append(Paragraph(start, end, kind))
            para = []

    for a, b in lines:
        line = text[a:b]
        if fence is not None:
            para.append((a, b))
            if line.strip().startswith(fence):
                fence = None
            continue
        f = _FENCE.match(line)
        if f:
            flush()
            fence = f.group(1)[0] * 3
            para.append((a, b))
            continue
        if not line.strip():
            flush()
            continue
        m = _ATX.match(line)
        title = (m.group(2) or "").strip().strip("*").strip() if m else ""
        if m and title:  # a heading with no words (`#` alone) is kept as text, not dropped
            flush()
            if (a, b) == title_at:
                root.title, root.path, root.heading = title, (title,), (a, b)
                heading_level = TITLE
            else:
                heading_level = len(m.group(1))
                _open_section(stack, title, heading_level, (a, b))
            continue
        u = _SETEXT_UNDER.match(line)
        if u and len(para) == 1 and not _LIST_ITEM.match(text[para[0][0] : para[0][1]]) and text[para[0][0] : para[0][1]].strip():
            ha, hb = para[0]
            para = []
            heading_level = 1 if u.group(1)[0] == "=" else 2
            _open_section(stack, text[ha:hb].strip(), heading_level, (ha, b))  # the span covers the underline
            continue
        bold = _BOLD_HEADING.match(line)
        if bold and bold.group(1).strip():
            flush()
            _open_section(stack, bold.group(1).strip(), heading_level + 1, (a, b))
            continue
        para.append((a, b))
    flush()
    return root


def walk(section: Section):
    """Sections in document order, the root first."""
    yield section
    for child in section.children:
        yield from walk(child)
