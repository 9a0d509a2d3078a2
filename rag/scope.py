"""Scoped questions: which documents a question is asked of, and the index restricted to them.

A user names documents as they know them: a file name (`report.txt`, `corpus/report.txt`, or its
stem), a glob (`*2025*`), or a title (`亚太命运共同体展望`, `an outlook on asia-pacific …`: the zh
or en title of `<name>.meta.json`, else the file's first Markdown `#` heading), case-insensitive.
`resolve_docs` turns those specs into a set of sources, or raises `DocumentNotFoundError` naming
the closest names when a spec matches nothing.

`scoped_index` then makes an `Index` that holds only those documents, so that a question asked of
one report in a library is answered exactly as if the report were the whole corpus:

* dense: an exact (flat) inner-product search over the scope's own vectors, which is what a
  single-report index below 20k vectors does; masking a library-wide HNSW index would not be exact;
* BM25: rebuilt over the scope's passages, so IDF and average length are the scope's own
  statistics. Masking the library index would keep the library's IDF: a word common in the
  library but rare in the report would be scored as common, and the ranking would change;
* acronym pairs and English bridge terms: from the scope's documents only (the library's
  vocabulary would let an English question borrow other reports' words);
* the not-found check reads only the scope's text (`Scope.grounder`): a name that only another
  report mentions is absent from this one.

Building a scope costs one BM25 build over its passages (about a second for a 100-passage
report); `ScopeCache` keeps the last few, keyed by the index version and the sources.
"""

from __future__ import annotations

import difflib
import fnmatch
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass, replace
from pathlib import PurePosixPath
from typing import Iterable, Sequence

import numpy as np

from .chunking import ChunkSettings, indexed_text
from .corpus import Document
from .errors import DocumentNotFoundError

_GLOB_CHARS = re.compile(r"[*?\[]")
_HEADING = re.compile(r"^#\s+(.+?)\s*#*\s*$", re.M)
#: How far into a file its title heading is looked for.
_HEADING_WINDOW = 4000
#: How many close names an error lists.
_SUGGESTIONS = 5


def heading_title(text: str) -> str:
    """The first Markdown `# ` heading near the top of a file, or ""."""
    m = _HEADING.search(text[:_HEADING_WINDOW])
    return m.group(1).strip() if m else ""


def title_of(doc: Document) -> str:
    """What a reader calls a document: its zh title, else its en title, else its first `#`
    heading, else its file name."""
    return doc.info.title_zh or doc.info.title_en or heading_title(doc.text) or PurePosixPath(doc.source).name


def _fold(s: str) -> str:
    """Case- and bracket-insensitive form of a name or title (《…》, quotes and spaces do not count)."""
    s = re.sub(r"[《》〈〉「」『』“”\"']", "", s).casefold()
    return re.sub(r"\s+", " ", s).strip()


def _names(doc: Document) -> list[str]:
    """Every name a spec may use for a document: source, file name, stem, titles."""
    p = PurePosixPath(doc.source)
    names = [doc.source, p.name, p.stem, doc.info.title_zh, doc.info.title_en, heading_title(doc.text)]
    return [n for n in names if n]


def _matches(spec: str, doc: Document) -> bool:
    if _GLOB_CHARS.search(spec):
        p = PurePosixPath(doc.source)
        pattern = spec.casefold()
        return any(fnmatch.fnmatchcase(n.casefold(), pattern) for n in (doc.source, p.name))
    wanted = _fold(spec)
    return any(_fold(n) == wanted for n in _names(doc))


def _suggestions(spec: str, documents: Sequence[Document]) -> list[str]:
    """File names whose names or titles are close to (or contain) the spec."""
    wanted = _fold(spec)
    scored: list[tuple[float, str]] = []
    for doc in documents:
        best = 0.0
        for name in _names(doc):
            folded = _fold(name)
            if wanted and (wanted in folded or folded in wanted):
                best = max(best, 0.9)
            best = max(best, difflib.SequenceMatcher(None, wanted, folded).ratio())
        if best >= 0.5:
            scored.append((best, PurePosixPath(doc.source).name))
    scored.sort(key=lambda t: (-t[0], t[1]))
    return [name for _, name in scored[:_SUGGESTIONS]]


def resolve_docs(specs: Iterable[str], documents: Sequence[Document]) -> frozenset[str]:
    """The sources of the documents named by `specs` (file names, globs or titles; see the module doc).

    Every spec must match at least one document; one that matches none raises
    `DocumentNotFoundError` listing close names. An empty list of specs is an error too: a scope
    of nothing would answer nothing.
    """
    if isinstance(specs, str):
        specs = [specs]
    specs = list(specs)
    if not specs:
        raise DocumentNotFoundError("no document named: give a file name, a glob or a title")
    chosen: set[str] = set()
    for spec in specs:
        if not isinstance(spec, str) or not spec.strip():
            raise DocumentNotFoundError("a document name must be a non-empty file name, glob or title")
        hits = [d.source for d in documents if _matches(spec.strip(), d)]
        if not hits:
            close = _suggestions(spec.strip(), documents)
            hint = f"; close names: {', '.join(close)}" if close else "; list the documents with: rag docs"
            raise DocumentNotFoundError(f"no document matches {spec.strip()!r}{hint}")
        chosen.update(hits)
    return frozenset(chosen)


# -- the index restricted to a scope -------------------------------------------------------------
def scoped_index(index, documents: Sequence[Document], sources: frozenset[str], settings: ChunkSettings):
    """An `Index` holding only the passages of `sources`, with the scope's own BM25 statistics,
    an exact dense search over its own vectors, and the acronym pairs of its own documents."""
    import faiss

    from .bm25 import LexicalIndex
    from .terms import extract_term_pairs

    keep = np.fromiter((p.source in sources for p in index.passages), dtype=bool, count=len(index.passages))
    positions = np.flatnonzero(keep)
    new_position = np.full(len(index.passages), -1, dtype=np.int32)
    new_position[positions] = np.arange(len(positions), dtype=np.int32)
    units = np.flatnonzero(keep[index.unit_passage]) if len(index.unit_passage) else np.zeros(0, dtype=np.int64)
    passages = [index.passages[i] for i in positions]
    vectors = np.ascontiguousarray(index.vectors[units], dtype=np.float32)
    dense = faiss.IndexFlatIP(index.vectors.shape[1])
    if len(vectors):
        dense.add(vectors)
    pairs: dict[str, set[str]] = {}
    for doc in documents:
        if doc.source in sources:
            for en, zh in extract_term_pairs(doc.text).items():
                pairs.setdefault(en, set()).update(zh)
    manifest = replace(index.manifest, passages=len(passages), units=len(units), index_type="flat")
    return replace(
        index,
        manifest=manifest,
        passages=passages,
        unit_passage=new_position[index.unit_passage[units]],
        unit_sentence=index.unit_sentence[units],
        vectors=vectors,
        dense=dense,
        lexical=LexicalIndex.build([indexed_text(p, settings) for p in passages], groups=[p.source for p in passages]),
        term_pairs=pairs,
        ranges=_ranges(passages, new_position[index.unit_passage[units]]),
    )


def _ranges(passages: list, unit_passage: np.ndarray) -> dict[str, tuple[int, int, int, int]]:
    """source -> (first passage position, end position, first unit row, end unit row) of a
    scoped index (passages stay in source order, units in passage order)."""
    out: dict[str, tuple[int, int, int, int]] = {}
    starts = np.searchsorted(unit_passage, np.arange(len(passages) + 1))
    for pos, p in enumerate(passages):
        lo, _, ulo, _ = out.get(p.source, (pos, pos, int(starts[pos]), 0))
        out[p.source] = (lo, pos + 1, ulo, int(starts[pos + 1]))
    return out


@dataclass(frozen=True)
class Scope:
    """A question's scope: its sources, the index restricted to them, and their not-found check."""

    sources: frozenset[str]
    index: object  # rag.index.Index
    grounder: object  # rag.abstain.Grounder over the scope's text


class ScopeCache:
    """The last few scopes built, keyed by index version and sources (thread-safe)."""

    def __init__(self, size: int = 8) -> None:
        self.size = size
        self._items: OrderedDict[tuple, Scope] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, index, documents: Sequence[Document], sources: frozenset[str], settings: ChunkSettings) -> Scope:
        from .abstain import Grounder

        key = (str(index.path), id(index), sources)
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        scope = Scope(
            sources=sources,
            # The Milvus store restricts by a filter (same statistics as scoped_index builds).
            index=index.restrict(sources) if hasattr(index, "restrict") else scoped_index(index, documents, sources, settings),
            grounder=Grounder(
                [d.text for d in documents if d.source in sources], sources=[d.source for d in documents if d.source in sources]
            ),
        )
        with self._lock:
            self._items[key] = scope
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return scope

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
