"""The Python API: `Assistant().ask("…")` returns cited passages; everything the CLI does goes here."""

from __future__ import annotations

import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from . import config
from .chunking import ChunkSettings, Passage
from .cite import Context, hit_to_dict, resolve
from .corpus import Document, load_corpus
from .errors import IndexCorruptError, IndexMissingError, InvalidArgumentError
from .index import Index, Manifest, build_index, current_version, load_index, read_manifest, stale_reason
from .question import Question, prepare
from .retrieve import Hit, search


@dataclass(frozen=True)
class Answer:
    """The passages that answer a question, best first, and whether the report seems not to answer it."""

    question: str
    hits: list[Hit]
    not_found: bool = False
    id: str | None = None
    notices: tuple[str, ...] = ()
    #: Why the report seems not to answer (a name it never mentions, a figure none of the best passages gives).
    not_found_reason: str | None = None

    def to_dict(self) -> dict:
        """The JSON object `rag ask --json` prints for one question."""
        return {
            "id": self.id,
            "question": self.question,
            "passages": [hit_to_dict(h) for h in self.hits],
            "not_found": self.not_found,
            "not_found_reason": self.not_found_reason,
        }


def _stderr(message: str) -> None:
    print(message, file=sys.stderr)


@dataclass
class Assistant:
    """Answers questions over a corpus with cited passages.

    Paths and model default to the project's settings (see `rag.config`); the index is built on
    first use and rebuilt, with a notice, when the corpus, the chunking or the model changed.
    """

    corpus_dir: Path | None = None
    index_dir: Path | None = None
    model: str | None = None
    chunking: ChunkSettings = field(default_factory=ChunkSettings)
    auto_build: bool = True
    on_notice: Callable[[str], None] = _stderr
    index_type: str = "auto"
    #: An object with `name`, `dim`, `encode_queries`, `encode_passages` to use instead of loading `model`.
    encoder: object | None = None

    def __post_init__(self) -> None:
        s = config.Settings()
        self.corpus_dir = Path(self.corpus_dir) if self.corpus_dir else s.corpus_dir
        self.index_dir = Path(self.index_dir) if self.index_dir else s.index_dir
        if self.encoder is not None:
            self.model = self.model or self.encoder.name
        self.model = self.model or s.model
        self._docs: list[Document] | None = None
        self._index: Index | None = None
        self._query_encoder = None
        self._grounder = None
        self._lock = threading.RLock()

    # -- loading -----------------------------------------------------------------------------
    def documents(self) -> list[Document]:
        if self._docs is None:
            self._docs = load_corpus(self.corpus_dir)
        return self._docs

    def build(self, progress: Callable[[int, int], None] | None = None) -> Manifest:
        """(Re)build the index for the current corpus, chunking and model."""
        from .embedding import load_passage_encoder

        with self._lock:
            self._docs = None
            self._grounder = None
            encoder = self.encoder or load_passage_encoder(self.model)
            path = build_index(self.documents(), self.index_dir, self.model, encoder, self.chunking, progress, self.index_type)
            self._index = load_index(path)
            return self._index.manifest

    def index(self) -> Index:
        """The loaded index, built or rebuilt first when needed (and allowed)."""
        with self._lock:
            if self._index is not None:
                return self._index
            docs = self.documents()
            try:
                path = current_version(self.index_dir, self.model)
                reason = stale_reason(read_manifest(path), docs, self.model, self.chunking)
                if reason is None:
                    self._index = load_index(path)
                    return self._index
                if not self.auto_build:
                    raise IndexCorruptError(f"the index is stale: {reason}; rebuild with: rag index")
                self.on_notice(f"Rebuilding the index: {reason}.")
            except IndexMissingError:
                if not self.auto_build:
                    raise
                self.on_notice(f"Building the index for model {self.model!r} (first use)…")
            except IndexCorruptError as exc:
                if not self.auto_build:
                    raise
                self.on_notice(f"{exc}; rebuilding it now.")
            self.build()
            return self._index

    def query_encoder(self):
        from .embedding import load_query_encoder

        with self._lock:
            if self._query_encoder is None:
                self._query_encoder = self.encoder or load_query_encoder(self.model)
            return self._query_encoder

    def add(self, path: Path | str, name: str | None = None, overwrite: bool = False):
        """Convert a PDF/.docx/.md/.txt file into the corpus (see rag.ingest.add_file); the next
        question (or `build()`) indexes it. Returns the `rag.ingest.Added` record."""
        from .ingest import add_file

        with self._lock:
            added = add_file(path, self.corpus_dir, name=name, overwrite=overwrite)
            self._docs = None
            self._index = None
            self._grounder = None
            return added

    # -- asking ------------------------------------------------------------------------------
    def ask(self, question: str, k: int = config.DEFAULT_K, mode: str = config.DEFAULT_MODE, id: str | None = None) -> Answer:
        """The k passages that best answer `question` (Chinese, Traditional Chinese or English)."""
        if not isinstance(k, int) or isinstance(k, bool) or k <= 0:
            raise InvalidArgumentError(f"k must be a positive whole number, not {k!r}")
        if mode not in config.MODES + config.VARIANTS:
            raise InvalidArgumentError(f"unknown mode {mode!r}; use one of: {', '.join(config.MODES)}")
        q: Question = prepare(question)
        index = self.index()
        encoder = self.query_encoder() if mode != "bm25" else None
        from .abstain import CHECK_PASSAGES, unstated

        # The not-found check reads the best few passages even when fewer are asked for.
        hits = search(index, q.text, max(k, CHECK_PASSAGES), mode, encoder)
        grounding = self.grounder()(q.text, q.lang)
        if grounding.not_found:
            reason = "the report never mentions " + ", ".join(grounding.missing)
        else:
            reason = unstated(q.text, q.lang, hits)
        if reason is None and not hits:
            reason = "no passage shares a word or meaning with the question"
        return Answer(
            question=question, hits=hits[:k], not_found=reason is not None, id=id, notices=q.notices, not_found_reason=reason
        )

    def grounder(self):
        from .abstain import Grounder

        with self._lock:
            if self._grounder is None:
                self._grounder = Grounder([d.text for d in self.documents()])
            return self._grounder

    def passages(self) -> list[Passage]:
        return self.index().passages

    def show(self, citation: str, context_lines: int = 2) -> Context:
        """A cited passage (by id or `source:line`) with the lines around it."""
        return resolve(citation, self.documents(), self.index().passages, context_lines)
