"""Markdown marks that are not content: link targets, citation markers, link dumps, the header.

Reports written for the web cite their sources inline, `…增长 [sina](https://…redirect/AUZ…)。`, in
nearly every sentence, and end with a list of such links. The URL (often 200+ characters) and the
bare source name are noise to the embedder and to BM25, so what is indexed hides them; what is
cited keeps them: every function here returns spans of the original text, never rewritten text
with shifted offsets. Only Markdown links to web pages (`[label](http…)`) are touched; bare URLs,
`<http://…>` autolinks and `mailto:` links are left as they are.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: Bump when output changes (what is kept out of passages and of the indexed text).
VERSION = 1

#: `[label](http://…)`, the target allowed one level of balanced parentheses.
LINK = re.compile(r"\[(?P<label>[^\[\]\r\n]{0,300})\]\((?P<url>https?://[^\s()]*(?:\([^\s()]*\)[^\s()]*)*)\)")
#: A bare web address in the text.
URL = re.compile(r"<?https?://[^\s<>()\[\]]+>?")
#: A web address without its scheme, as reference lists write them (`www.ft.com/content/…`).
_DOMAIN = re.compile(
    r"(?<![\w@/.])(?:[a-z0-9-]+\.)+(?:com|cn|org|net|gov|edu|int|info|io|uk|jp|hk|tw|sg|de|fr|ru|kr|au|ca)\b(?:/[^\s\]\)）]*)?",
    re.I,
)
#: A label that only names the source (`sina`, `163`, `news.cn`): a citation marker, not words of the text.
_MARKER_LABEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._\-]{0,40}")
_LIST_MARK = re.compile(r"^\s*(?:[-*+•·]|\d{1,3}[.)、]|[（(]\d{1,3}[)）])\s+")
_NOT_CONTENT = re.compile(r"[\s\W_]+")
_SENTENCE_END = re.compile(r"[。！？!?]")
_FULL_STOP = re.compile(r"[。！？]")
_FRONT_KEY = re.compile(r"^[ \t]*(?P<key>[^\s:：#>*\-\[|`][^:：\r\n]{0,19}?)[ \t]*[:：][ \t]*(?P<value>\S[^\r\n]*)?$")
_YAML_FENCE = re.compile(r"^---[ \t]*$")
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n|$)")
_TITLE_KEYS = ("title", "标题", "题目", "主题")
_DATE_KEYS = ("date", "日期", "发布日期")


def link_spans(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """Spans of every `[label](http…)` link in text[start:end]."""
    end = len(text) if end is None else end
    return [m.span() for m in LINK.finditer(text, start, end)]


def hidden_spans(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """What the index should not see: each link's target, and the whole of a citation marker.

    `[label](url)` keeps `label` unless it only names a source; a marker also hides the spaces
    before it, so `增长 [sina](…)。` is indexed as `增长。`.
    """
    end = len(text) if end is None else end
    out: list[tuple[int, int]] = []
    for m in LINK.finditer(text, start, end):
        s, e = m.span()
        if _is_marker(m.group("label")):
            while s > start and text[s - 1] in " \t\u3000":
                s -= 1
            if out and out[-1][1] >= s:
                s = out.pop()[0]
            out.append((s, e))
        else:
            out.append((s, s + 1))
            out.append((m.start("label") + len(m.group("label")), e))
    return out


def strip_hidden(text: str) -> str:
    """The text without link targets and citation markers (what is embedded and tokenised)."""
    if "](http" not in text:
        return text
    parts, pos = [], 0
    for s, e in hidden_spans(text):
        parts.append(text[pos:s])
        pos = e
    parts.append(text[pos:])
    return "".join(parts)


def visible_length(text: str) -> int:
    """Characters of text a reader reads: without link targets and citation markers (the spans
    `hidden_spans` gives; what `max_chars` of the chunking counts). len(text) when there are none."""
    if "](http" not in text:
        return len(text)
    return len(text) - sum(e - s for s, e in hidden_spans(text))


def hidden_prefix(text: str) -> list[int] | None:
    """Hidden characters before each offset (len(text) + 1 entries), or None when nothing is hidden."""
    spans = hidden_spans(text)
    if not spans:
        return None
    import numpy as np

    mask = np.zeros(len(text) + 1, dtype=np.int64)
    for s, e in spans:
        mask[s + 1 : e + 1] = 1  # prefix[i] counts hidden characters in text[:i]
    return np.cumsum(mask).tolist()


def _is_marker(label: str) -> bool:
    """A link label that only names or repeats the source: `sina`, `163`, `www.ft.com`, a URL."""
    label = label.strip()
    return bool(_MARKER_LABEL.fullmatch(label) or _is_address(label) or _DOMAIN.fullmatch(label))


def _is_address(label: str) -> bool:
    label = label.strip()
    return label.startswith(("http://", "https://")) and not any(c.isspace() for c in label)


def is_link_line(line: str) -> bool:
    """A line that points somewhere rather than says something: a reference-list entry.

    It holds a link or a web address, and either almost all of its words are link labels, or it
    opens with a link or address followed by a short title (`[新华社](…): 某某报道. 2024年。`), or
    it is a short title with no full stop ending in an address (`Reuters, May 8 [www.reuters.com/…]`).
    A sentence that merely cites its source (`…增长 [sina](…)`) is none of these.
    """
    body = _LIST_MARK.sub("", line).strip()
    links = list(LINK.finditer(body))
    masked = LINK.sub(lambda m: " " * len(m.group()), body)
    addresses = [m.span() for m in URL.finditer(masked)]
    masked = URL.sub(lambda m: " " * len(m.group()), masked)
    addresses += [m.span() for m in _DOMAIN.finditer(masked)]
    addresses += [m.span() for m in links if _is_address(m.group("label"))]
    if not links and not addresses:
        return False
    free = _DOMAIN.sub(" ", URL.sub(" ", LINK.sub(" ", body)))
    labels = " ".join(m.group("label") for m in links if not _is_address(m.group("label")))
    n_free = len(_NOT_CONTENT.sub("", free))
    n_text = n_free + len(_NOT_CONTENT.sub("", labels))
    if n_free <= 0.2 * n_text:
        return True
    first = min([m.start() for m in links] + [a for a, _ in addresses])
    if first <= 1 and n_free <= 120:
        return True
    last_end = max((b for _, b in addresses), default=-1)
    return last_end >= 0 and len(body[last_end:].strip()) <= 2 and n_free <= 200 and not _FULL_STOP.search(free)


def is_link_dump(text: str) -> bool:
    """Mostly links: at least 60 % of the non-blank lines are link lines."""
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines:
        return False
    return sum(map(is_link_line, lines)) >= 0.6 * len(lines)


@dataclass(frozen=True)
class FrontMatter:
    """The `key: value` header a file opens with (YAML `---` fenced or bare), and where it ends."""

    start: int
    end: int
    fields: tuple[tuple[str, str], ...]

    def get(self, keys: tuple[str, ...]) -> str:
        for k, v in self.fields:
            if k.strip().lower() in keys and v:
                return v
        return ""

    @property
    def title(self) -> str:
        return self.get(_TITLE_KEYS)

    @property
    def date(self) -> str:
        return self.get(_DATE_KEYS)


def front_matter(text: str) -> FrontMatter | None:
    """The header of at least two `key: value` lines at the very top (blank lines allowed between)."""
    fields: list[tuple[str, str]] = []
    first = last = None
    fenced = False
    for n, m in enumerate(_LINE.finditer(text)):
        if m.start() == m.end():
            break
        line = m.group().rstrip("\r\n").lstrip("\ufeff")
        if not line.strip():
            continue
        if first is None and _YAML_FENCE.match(line):
            fenced, first = True, m.start()
            continue
        if fenced and _YAML_FENCE.match(line):
            last = m.start() + len(m.group().rstrip("\r\n"))
            break
        kv = _FRONT_KEY.match(line)
        value = (kv.group("value") or "") if kv else ""
        if kv and not URL.match(value) and ("。" in value or len(value) > 150):
            kv = None  # a sentence that happens to hold a colon, not a header field
        if not kv:
            if fenced:  # a YAML list or block value: part of the header
                continue
            break
        if first is None:
            first = m.start() + (1 if m.group().startswith("\ufeff") else 0)
        fields.append((kv.group("key").strip(), (kv.group("value") or "").strip()))
        last = m.start() + len(m.group().rstrip("\r\n"))
        if n > 200:
            break
    if first is None or last is None or len(fields) < 2:
        return None
    return FrontMatter(first, last, tuple(fields))
