"""The store seam: what one source file contributes to an index, and the few operations the product
needs from wherever vectors, passages and BM25 statistics are kept.

Two implementations share it: `rag.store.faiss` (local disk, the default) and `rag.store.milvus`
(Milvus Lite or a server, for libraries that outgrow one machine), chosen by `--store`/`RAG_STORE`
(`rag.config.check_store`). The pipeline (`rag.index`) cuts and embeds files into `FileData`; a
store keeps them per file, so an update hands it only the files that changed.

What retrieval reads (`rag.retrieve`, `rag.assistant`, `rag.scope`) is one loaded version: the
FAISS store's `Index`, or `rag.store.milvus.MilvusIndex`, which answers the same from Milvus:
`passages` by position (files by source, passages in order), `term_pairs`, `lexical` (`vocab`,
`search`, `search_in` over one file's passages, `postings`), `dense_scores(qvec, units)`,
`dense_scores_in(qvec, depth, source)` over one file's units (`best_units`),
`sentence_vectors(position)`, `manifest`, `path`; and, for a `--doc` scope, `restrict(sources)`
(FAISS: `rag.scope.scoped_index`).

Passage ids are ``"<source>#<n>"``, n the passage number within its file (1-based), so a passage
keeps its id when other files are added, changed or removed.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from ..chunking import Passage


@dataclass
class FileData:
    """What ONE source file contributes, built by the pipeline and stored as is.

    `embedding` and `lexical` are digests of what shaped the two halves (rag.index.dependencies):
    passages + vectors depend on the chunking and the model, term counts + term pairs on the
    tokenizer and its data. A store may reuse one half when only the other's digest changed.
    """

    source: str  # "corpus/x.md", as Passage.source
    sha256: str  # of the file's bytes
    passages: list[Passage]  # offsets into the original file
    unit_owner: np.ndarray  # int32 (units, 2): (passage number within THIS file, 0-based; sentence no. or -1)
    vectors: np.ndarray  # float32 (units, dim), L2-normalised: passage and sentence units
    term_counts: list[dict[str, int]]  # per passage: BM25 token -> count
    term_pairs: dict[str, list[str]]  # the file's bracketed English -> Chinese term pairs
    embedding: str = ""
    lexical: str = ""


@dataclass(frozen=True)
class FileRecord:
    """One stored file, as `Store.files()` lists it: cheap, no passage is read."""

    source: str
    sha256: str
    passages: int
    units: int
    embedding: str = ""
    lexical: str = ""


@dataclass(frozen=True)
class UpdateSummary:
    """What one update reused and what it computed; `line()` is what `rag index` prints."""

    files: int
    unchanged: int = 0
    added: int = 0
    changed: int = 0
    removed: int = 0
    retokenized: int = 0
    #: Of the added and changed files, those whose passages and vectors were copied from another store.
    copied: int = 0
    embedded_passages: int = 0
    embedded_units: int = 0
    seconds: float = 0.0
    #: Where the time went: (phase, seconds), e.g. ("embedding", 210.3).
    phases: tuple[tuple[str, float], ...] = field(default=())

    def line(self) -> str:
        """E.g. "61 files: 60 unchanged, 1 added (134 passages embedded) in 6.2 s"."""
        parts = [f"{n} {what}" for n, what in (
            (self.unchanged, "unchanged"), (self.added, "added"), (self.changed, "changed"),
            (self.removed, "removed"), (self.retokenized, "re-tokenized (vectors reused)"),
        ) if n]
        embedded = f" ({self.embedded_passages} passages, {self.embedded_units} vectors embedded)" if self.embedded_units else ""
        if self.copied:
            embedded += f" ({self.copied} file(s)' passages and vectors copied from the FAISS index, not embedded)"
        spent = f" ({', '.join(f'{k} {v:.1f} s' for k, v in self.phases)})" if self.embedded_units else ""
        return f"{self.files} file(s): {', '.join(parts) or 'nothing to do'}{embedded} in {self.seconds:.1f} s{spent}"


@runtime_checkable
class Store(Protocol):
    """Where an index lives. Every update is atomic: a reader, or a crash mid-update, sees the old
    library or the new one, never a half-written file."""

    def files(self) -> dict[str, FileRecord]:
        """The stored files by source ({} when nothing is stored yet)."""
        ...

    def file_data(self, source: str) -> FileData:
        """A stored file's data as it was applied (lets the pipeline re-tokenize without re-embedding)."""
        ...

    def apply(self, add: list[FileData], remove: Collection[str], summary: UpdateSummary | None = None) -> None:
        """One update: add or replace these files, drop those; corpus-wide BM25 statistics follow."""
        ...

    def search_dense(self, qvec: np.ndarray, depth: int, sources: Collection[str] | None = None) -> list[tuple[str, float]]:
        """Passage ids best first; a passage scores by its best unit (itself or one of its sentences)."""
        ...

    def search_lexical(self, tokens: list[str], depth: int, sources: Collection[str] | None = None) -> list[tuple[str, float]]:
        """BM25 (k1 1.5, b 0.75, length normalised per file) with IDF over the WHOLE library, filtered by sources."""
        ...

    def passages(self, ids: list[str]) -> list[Passage]: ...

    def unit_vectors(self, passage_id: str) -> tuple[np.ndarray, np.ndarray]:
        """(sentence numbers, their vectors) of one passage, for ranking a hit's sentences."""
        ...


def centroid(vectors: np.ndarray, sentence: np.ndarray) -> np.ndarray:
    """A document's centroid: the L2-normalised mean of its passage vectors (its sentence units,
    `sentence >= 0`, left out), float32. What retrieval's document prior compares a question with
    (`rag.retrieve.dense_scores`); both stores compute it here, so both rank alike."""
    vectors = np.asarray(vectors, dtype=np.float32)
    whole = vectors[np.asarray(sentence) < 0].astype(np.float64)
    total = whole.sum(axis=0) if len(whole) else np.zeros(vectors.shape[1] if vectors.ndim == 2 else 0)
    norm = float(np.linalg.norm(total))
    return (total / norm if norm > 0 else total).astype(np.float32)


def best_units(vectors: np.ndarray, positions: np.ndarray, qvec: np.ndarray, depth: int) -> dict[int, float]:
    """Exact dense search over one document's units: each passage's best unit score among the
    `depth` units nearest to `qvec` (`positions`: the passage position of each unit row, rows in
    the document's order). What a one-document index would answer (`rag.retrieve.within_documents`);
    both stores compute it here from the same vectors, so both rank alike."""
    if depth <= 0 or len(positions) == 0:
        return {}
    sims = np.asarray(vectors, dtype=np.float32) @ np.asarray(qvec, dtype=np.float32)
    best: dict[int, float] = {}
    for u in np.argsort(-sims, kind="stable")[:depth]:
        p, s = int(positions[u]), float(sims[u])
        if s > best.get(p, -2.0):
            best[p] = s
    return best


def position_in(ranges: dict[str, tuple[int, int, int, int]], pid: str) -> int:
    """The position of a passage id ("corpus/x.md#12") in a loaded index whose files hold the
    passage positions `ranges[source][:2]` (both stores number passages alike); KeyError if none."""
    source, _, n = pid.rpartition("#")
    lo, hi, _, _ = ranges[source]
    pos = lo + int(n) - 1
    if not lo <= pos < hi:
        raise KeyError(pid)
    return pos


def passage_id(source: str, number: int) -> str:
    """The id of the `number`-th (1-based) passage of `source`."""
    return f"{source}#{number}"


def split_id(pid: str) -> tuple[str, int]:
    """(source, 1-based passage number) of a passage id."""
    source, _, n = pid.rpartition("#")
    return source, int(n)


def open_store(root: Path, model: str, dependencies: dict[str, str], kind: str = "faiss", **options) -> Store:
    """The store for `model` under `root` (an index folder). `kind` is "faiss" (default) or "milvus"."""
    if kind == "faiss":
        from .faiss import FaissStore

        return FaissStore(root, model, dependencies, **options)
    if kind == "milvus":
        from .milvus import MilvusStore

        return MilvusStore(root, model, dependencies, **options)
    from ..errors import InvalidArgumentError

    raise InvalidArgumentError(f"unknown store {kind!r}: use faiss or milvus")


__all__ = ["FileData", "FileRecord", "UpdateSummary", "Store", "open_store", "centroid", "position_in", "passage_id", "split_id"]
