"""The corpus as a list of documents: titles, publisher and year, passage counts, index state.

What `rag docs`, `Assistant.documents_status()` and `GET /documents` show. The state compares each
file's content hash with the one the current index was built from:

* `indexed`: the index holds the file as it is now;
* `changed`: the file was edited since the index was built (its passages are the old ones);
* `stale`: the file is unchanged, but what its passages depend on (chunking, model, tokenizer:
  `rag.index.dependencies`) changed since: the next `rag index` embeds or tokenizes it again;
* `new`: the file is not in the index yet;
* `removed`: the index still holds a file that is gone from the corpus.

Passage counts are those of the index (None for a file it does not hold). Reading the status
never builds or rebuilds anything.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import PurePosixPath
from typing import Collection, Mapping, Sequence

from .corpus import Document
from .scope import title_of

STATES = ("indexed", "stale", "changed", "new", "removed")


@dataclass(frozen=True)
class DocumentStatus:
    """One corpus file (or one the index still holds) and where it stands."""

    source: str
    name: str  # file name, what `--doc` accepts
    title: str  # zh title, else en title, else first `#` heading, else file name
    title_zh: str
    title_en: str
    publisher: str
    year: str
    passages: int | None  # in the index; None when the index does not hold the file
    state: str  # one of STATES

    def to_dict(self) -> dict:
        return asdict(self)


def document_status(
    documents: Sequence[Document],
    indexed_hashes: Mapping[str, str] | None,
    passage_counts: Mapping[str, int] | None,
    stale: Collection[str] = (),
) -> list[DocumentStatus]:
    """Each document's status given the hashes (source -> sha256) and passage counts of the
    current index (both None when there is no index) and the indexed sources built under other
    dependencies (`stale`): corpus files in corpus order, then removed ones."""
    hashes = dict(indexed_hashes or {})
    counts = Counter(passage_counts or {})
    out = []
    for doc in documents:
        if doc.source not in hashes:
            state = "new"
        elif hashes[doc.source] == doc.sha256:
            state = "stale" if doc.source in stale else "indexed"
        else:
            state = "changed"
        out.append(
            DocumentStatus(
                source=doc.source,
                name=PurePosixPath(doc.source).name,
                title=title_of(doc),
                title_zh=doc.info.title_zh,
                title_en=doc.info.title_en,
                publisher=doc.info.publisher,
                year=doc.info.year,
                passages=counts[doc.source] if state != "new" else None,
                state=state,
            )
        )
    present = {d.source for d in documents}
    for source in sorted(set(hashes) - present):
        name = PurePosixPath(source).name
        out.append(DocumentStatus(source, name, name, "", "", "", "", counts[source], "removed"))
    return out
