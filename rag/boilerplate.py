"""Boilerplate shared across reports: passages whose text is, nearly whole, also in other files.

In a library, reports from one publisher share paragraphs: a limitations or disclaimer paragraph
("本报告基于现有公开信息…"), "建议持续关注…", notes on data sources. They match the words of many
questions and state nothing about any one report, so retrieval treats them as it treats cover and
back matter (`rag.retrieve.MATTER_PENALTY`).

The signal is corpus-wide and exact: each passage's text (`rag.chunking.clean_text`, whitespace
and punctuation dropped) is cut into overlapping character n-grams (SHINGLE characters); a
passage is boilerplate when at least MIN_SHARE of its distinct shingles each occur in at least
MIN_OTHER_FILES files other than its own, and it has at least MIN_SHINGLES of them. Near-whole
overlap, not some overlap: a content paragraph one other report quotes, or a sentence of it two
reports quote, is not marked. With one file nothing is marked (no other files), so a single
report and a one-document scope rank exactly as without it.

Exact shingle counting rather than MinHash (PyPI `datasketch`): the measure wanted is containment
(how much of THIS passage is elsewhere), which MinHash estimates only as Jaccard similarity to one
other passage, and the exact count over a library of thousands of passages is a dictionary of a
few hundred thousand shingles, built in well under a second.
"""

from __future__ import annotations

import re
import weakref
from collections.abc import Mapping, Sequence

#: Characters per shingle: long enough that two unrelated Chinese sentences rarely share one.
SHINGLE = 8
#: A passage is boilerplate when this share of its distinct shingles each occur in other files...
MIN_SHARE = 0.8
#: ...in at least this many files other than its own...
MIN_OTHER_FILES = 2
#: ...and it has at least this many distinct shingles (a short line shared by chance is not).
MIN_SHINGLES = 20

_DROP = re.compile(r"[\s\W_]+", re.UNICODE)


def shingles(text: str, n: int | None = None) -> set[str]:
    """The distinct character n-grams (SHINGLE characters by default) of `text`, whitespace and
    punctuation dropped."""
    from .chunking import clean_text

    n = n or SHINGLE
    flat = _DROP.sub("", clean_text(text))
    return {flat[i : i + n] for i in range(len(flat) - n + 1)}


def shared_passages(files: Mapping[str, Sequence[str]], min_other: int = MIN_OTHER_FILES,
                    min_share: float = MIN_SHARE, min_shingles: int = MIN_SHINGLES) -> dict[str, list[int]]:
    """For each file (source -> its passages' texts, in order), the 0-based numbers of its
    boilerplate passages (see the module docstring); files with none are left out."""
    per_file: dict[str, list[set[str]]] = {s: [shingles(t) for t in texts] for s, texts in files.items()}
    seen_in: dict[str, int] = {}  # shingle -> number of files holding it
    for sets in per_file.values():
        for sh in set().union(*sets) if sets else ():
            seen_in[sh] = seen_in.get(sh, 0) + 1
    out: dict[str, list[int]] = {}
    for source, sets in per_file.items():
        marked = []
        for i, sh in enumerate(sets):
            if len(sh) < min_shingles:
                continue
            shared = sum(1 for x in sh if seen_in[x] - 1 >= min_other)
            if shared >= min_share * len(sh):
                marked.append(i)
        if marked:
            out[source] = marked
    return out


_MARKED: dict[int, tuple[weakref.ref, frozenset[int]]] = {}


def marked_positions(index) -> frozenset[int]:
    """Passage positions of a loaded index (FAISS `Index` or `MilvusIndex`: `passages`, `ranges`)
    that are boilerplate over that index's own files; computed once per index object. An index of
    one file (a single report, a one-document scope) marks none."""
    if len(index.ranges) <= 1:
        return frozenset()
    key = id(index)
    cached = _MARKED.get(key)
    if cached is not None and cached[0]() is index:
        return cached[1]
    texts = [p.text for p in index.passages]  # MilvusIndex: read file by file, once
    files = {s: texts[lo:hi] for s, (lo, hi, *_rest) in index.ranges.items()}
    marked = shared_passages(files, MIN_OTHER_FILES, MIN_SHARE, MIN_SHINGLES)
    found = frozenset(index.ranges[s][0] + n for s, ns in marked.items() for n in ns)
    _MARKED[key] = (weakref.ref(index, lambda _r, k=key: _MARKED.pop(k, None)), found)
    return found


__all__ = ["shingles", "shared_passages", "marked_positions", "SHINGLE", "MIN_SHARE", "MIN_OTHER_FILES", "MIN_SHINGLES"]
