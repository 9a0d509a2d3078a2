"""The store seam's data types (notes/store-seam.md), as the Milvus store uses them.

These mirror the FAISS engineer's `rag/store/__init__.py` field for field; they live here so the
Milvus side can be built and tested before that package lands. When both are merged, keep ONE
definition: `rag/store/__init__.py` re-exports these (or `rag.store.milvus` imports from
`rag.store` instead) — nothing else changes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..chunking import Passage


@dataclass
class FileData:
    """What ONE source file contributes, built by the pipeline and stored as is."""

    source: str  # "corpus/x.md", as Passage.source
    sha256: str  # of the file's bytes
    passages: list[Passage]  # offsets into the original file
    unit_owner: np.ndarray  # int32 (units, 2): (passage number within THIS file, 0-based; sentence no. or -1)
    vectors: np.ndarray  # float32 (units, dim), L2-normalised: passage and sentence units
    term_counts: list[dict[str, int]]  # per passage: BM25 token -> count
    term_pairs: dict[str, list[str]]  # the file's bracketed English -> Chinese term pairs
    embedding: str = ""  # digest of what shaped passages + vectors
    lexical: str = ""  # digest of what shaped term counts + pairs


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
    """What one update reused and what it computed (filled by the pipeline)."""

    files: int
    unchanged: int = 0
    added: int = 0
    changed: int = 0
    removed: int = 0
    retokenized: int = 0
    embedded_passages: int = 0
    embedded_units: int = 0
    seconds: float = 0.0
    notes: tuple[str, ...] = field(default=())


def passage_id(source: str, number: int) -> str:
    """The id of the `number`-th (1-based) passage of `source`."""
    return f"{source}#{number}"


def split_id(pid: str) -> tuple[str, int]:
    """(source, 1-based passage number) of a passage id."""
    source, _, n = pid.rpartition("#")
    return source, int(n)
