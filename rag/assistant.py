"""The Python API: `Assistant().ask("…")` returns cited passages; everything the CLI does goes here."""

from __future__ import annotations

import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from . import config
from .chunking import ChunkSettings, Passage
from .cite import Context, hit_to_dict, resolve
from .corpus import Document, load_corpus
from .errors import IndexCorruptError, IndexMissingError, IndexWriteError
from .catalog import DocumentStatus
from .index import FaissStore, Index, Manifest, current_version, dependencies, load_index, read_manifest, stale_reason, update_index
from .matching import MatchedTerm, bridges, matched_terms
from .question import Question, prepare
from .retrieve import Hit, search
from .scope import ScopeCache, resolve_docs, title_of


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
    #: The documents the question was asked of (sources), None when it was asked of the whole corpus.
    scope: frozenset[str] | None = None
    #: source -> document title, for every source among the hits.
    titles: dict[str, str] = field(default_factory=dict)
    #: Per hit (same order): the question's English words and the passage's Chinese words they were
    #: bridged to by the lexical expansion (empty for a Chinese question; see `rag.matching`).
    matched_terms: tuple[tuple[MatchedTerm, ...], ...] = ()

    def terms_of(self, i: int) -> tuple[MatchedTerm, ...]:
        """The matched terms of the i-th hit."""
        return self.matched_terms[i] if i < len(self.matched_terms) else ()

    def to_dict(self) -> dict:
        """The JSON object `rag ask --json` prints for one question."""
        passages = []
        for i, h in enumerate(self.hits):
            d = hit_to_dict(h, self.titles.get(h.passage.source))
            d["matched_terms"] = [m.to_dict() for m in self.terms_of(i)]
            passages.append(d)
        return {
            "id": self.id,
            "question": self.question,
            "passages": passages,
            "not_found": self.not_found,
            "not_found_reason": self.not_found_reason,
            "docs": sorted(self.scope) if self.scope is not None else None,
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
    #: Where the index lives: "faiss" (local disk) or "milvus" (RAG_MILVUS_URI); default $RAG_STORE, else faiss.
    store: str | None = None
    #: The Milvus URI (a .db path = Milvus Lite, http(s):// = a server); default $RAG_MILVUS_URI, else
    #: Milvus Lite at <index_dir>/<model>/milvus.db.
    milvus_uri: str | None = None

    def __post_init__(self) -> None:
        s = config.Settings()
        self.corpus_dir = Path(self.corpus_dir) if self.corpus_dir else s.corpus_dir
        self.index_dir = Path(self.index_dir) if self.index_dir else s.index_dir
        if self.encoder is not None:
            self.model = self.model or self.encoder.name
        self.model = self.model or s.model
        self.store = config.check_store(self.store) if self.store is not None else s.store
        self._milvus = None
        self._docs: list[Document] | None = None
        self._index: Index | None = None
        self._query_encoder = None
        self._grounder = None
        self._scopes = ScopeCache()
        self._titles: tuple[list[Document], dict[str, str]] | None = None
        self._lock = threading.RLock()
        #: What the last build or update reused and computed.
        self.last_update = None

    # -- loading -----------------------------------------------------------------------------
    def documents(self) -> list[Document]:
        if self._docs is None:
            self._docs = load_corpus(self.corpus_dir)
        return self._docs

    def dependencies(self) -> dict[str, str]:
        """What the index of this assistant depends on (rag.index.dependencies)."""
        if self.encoder is not None:
            # The model name decides the dimension, as it does for a loaded model; an encoder object
            # may say which engine it stands for (`engine_id`), else its class is the engine.
            return dependencies(self.model, self.chunking,
                                passage_engine=getattr(self.encoder, "engine_id", type(self.encoder).__name__))
        from .models.encoders import passage_profile

        return dependencies(self.model, self.chunking, **passage_profile(self.model))

    def build(self, progress: Callable[[int, int], None] | None = None, force: bool = False) -> Manifest:
        """Bring the index up to date: embed new or changed files only, drop removed ones.

        `last_update` then says what was reused and what was computed."""
        from .models.encoders import load_passage_encoder

        with self._lock:
            self._docs = None
            self._grounder = None
            self._scopes.clear()
            store = self.milvus_store() if self.store == "milvus" else None
            # Moving to Milvus: files the local FAISS index holds are copied, not embedded again.
            donor = FaissStore(self.index_dir, self.model) if store is not None else None
            try:
                path, self.last_update = update_index(
                    self.documents(), self.index_dir, self.model, lambda: self.encoder or load_passage_encoder(self.model),
                    self.chunking, progress, self.index_type, self.dependencies(), force, store=store, donor=donor,
                )
            except OSError as exc:
                if isinstance(exc, (ConnectionError, TimeoutError)):  # a store that does not answer: not the folder
                    raise
                raise IndexWriteError(
                    f"cannot write the index under {self.index_dir}: {exc.strerror or exc}"
                    f"{f' ({exc.filename})' if exc.filename else ''}; choose another folder with --index-dir or RAG_INDEX_DIR"
                ) from None
            self._index = load_index(path) if store is None else self._milvus_index()
            return self._index.manifest

    def milvus_store(self):
        """The Milvus store of this assistant (opened once; StoreError when it cannot be reached)."""
        with self._lock:
            if self._milvus is None:
                from .store.milvus import MilvusStore, index_config

                self._milvus = MilvusStore(self.index_dir, self.model, self.dependencies(), uri=self.milvus_uri,
                                           index=index_config(self.index_type))
            return self._milvus

    def _milvus_index(self):
        from .store.milvus import MilvusIndex

        return MilvusIndex(self.milvus_store())

    def _current(self) -> tuple[Manifest, object]:
        """The manifest of the stored index and a way to load it (IndexMissingError when none)."""
        if self.store == "milvus":
            view = self._milvus_index()
            return view.manifest, lambda: view
        path = current_version(self.index_dir, self.model)
        return read_manifest(path), lambda: load_index(path)

    def index(self) -> Index:
        """The loaded index, built or updated first when needed (and allowed)."""
        with self._lock:
            if self._index is not None:
                # Milvus: another machine may have updated the library; the next question sees it.
                if self.store == "milvus" and not self._index.current():
                    self._index = self._milvus_index()
                    self._docs = None
                    self._scopes.clear()
                    self._grounder = None
                return self._index
            docs = self.documents()
            try:
                manifest, load = self._current()
                reason = stale_reason(manifest, docs, self.model, self.chunking, self.dependencies())
                if reason is None:
                    self._index = load()
                    return self._index
                if not self.auto_build:
                    raise IndexCorruptError(f"the index is stale: {reason}; rebuild with: rag index")
                self.on_notice(f"Updating the index: {reason}.")
            except IndexMissingError:
                if not self.auto_build:
                    raise
                self.on_notice(f"Building the index for model {self.model!r} (first use)…")
            except IndexCorruptError as exc:
                if not self.auto_build:
                    raise
                self.on_notice(f"{exc}; rebuilding it now.")
            self.build()
            self.on_notice(f"Index: {self.last_update.line()}.")
            return self._index

    def query_encoder(self):
        from .models.encoders import load_query_encoder

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
    def ask(
        self,
        question: str,
        k: int = config.DEFAULT_K,
        mode: str = config.DEFAULT_MODE,
        id: str | None = None,
        docs: Iterable[str] | None = None,
    ) -> Answer:
        """The k passages that best answer `question` (Chinese, Traditional Chinese or English).

        `docs` asks only some documents (file names, globs or titles; see `rag.scope`): the answer
        is then the one a corpus of just those documents would give.
        """
        return self._answer(question, config.check_k(k), config.check_mode(mode), id, docs)

    def _answer(
        self, question: str, k: int, mode: str, id: str | None = None, docs: Iterable[str] | None = None, *,
        bridge: bool = True, fusion: str = "score", synonyms: bool | None = None,
    ) -> Answer:
        """`ask`, with the search's measurement switches (only rag.evaluate's variants turn them off)."""
        scope = self.scope(docs) if docs is not None else None
        q: Question = prepare(question)
        index = self.index()
        if scope is not None and scope != {d.source for d in self.documents()}:  # every document: no need to restrict
            s = self._scopes.get(index, self.documents(), scope, self.chunking)
            index, grounder = s.index, s.grounder
        else:
            grounder = self.grounder()
        encoder = self.query_encoder() if mode != "bm25" else None
        from .abstain import CHECK_PASSAGES, unstated
        from .expand import sense_groups

        # What an English question's words bring in: once, for the search and for the matched terms.
        senses = sense_groups(q.text, index.term_pairs)
        # The not-found check reads the best few passages even when fewer are asked for.
        hits = search(index, q.text, max(k, CHECK_PASSAGES), mode, encoder, bridge=bridge, fusion=fusion,
                      synonyms=synonyms, senses=senses,
                      dated=grounder.dated(q.text))
        grounding = grounder(q.text, q.lang)
        reason = grounding.reason or unstated(q.text, q.lang, hits, grounding.about, grounding.documents, grounding.events)
        if reason is None and not hits:
            reason = "no passage shares a word or meaning with the question"
        hits = hits[:k]
        found = bridges(q.text, index.term_pairs, senses)
        terms = tuple(tuple(matched_terms(h.passage.text, h.passage.start, found)) for h in hits)
        titles = self.titles()
        return Answer(
            question=question,
            hits=hits,
            not_found=reason is not None,
            id=id,
            notices=q.notices,
            not_found_reason=reason,
            scope=scope,
            titles={h.passage.source: titles.get(h.passage.source, h.passage.source) for h in hits},
            matched_terms=terms,
        )

    def scope(self, docs: Iterable[str]) -> frozenset[str]:
        """The sources named by `docs` (file names, globs or titles); DocumentNotFoundError if one names nothing."""
        return resolve_docs(docs, self.documents())

    def titles(self) -> dict[str, str]:
        """source -> title (zh, else en, else first `#` heading, else file name) of every document."""
        with self._lock:
            docs = self.documents()
            if self._titles is None or self._titles[0] is not docs:
                self._titles = (docs, {d.source: title_of(d) for d in docs})
            return self._titles[1]

    def documents_status(self) -> list["DocumentStatus"]:
        """Every corpus file with its titles, passage count and index state (indexed, stale,
        changed, new, removed since the index was built); never builds the index."""
        from .catalog import document_status
        from .index import digests

        docs = self.documents()
        with self._lock:
            index = self._index
        if index is None:
            try:
                manifest = self._current()[0]
            except (IndexMissingError, IndexCorruptError):
                return document_status(docs, None, None)
        else:
            manifest = index.manifest
        counts = {s: int(f["passages"]) for s, f in manifest.files.items()}
        now = digests(self.dependencies())
        stale = {s for s, f in manifest.files.items() if (f.get("embedding_digest"), f.get("lexical_digest")) != now}
        return document_status(docs, manifest.corpus, counts, stale)

    def grounder(self):
        from .abstain import Grounder

        with self._lock:
            if self._grounder is None:
                docs = self.documents()
                self._grounder = Grounder([d.text for d in docs], self.index().term_pairs, [d.source for d in docs])
            return self._grounder

    def passages(self) -> list[Passage]:
        return self.index().passages

    def passage(self, passage_id: str) -> Passage | None:
        """The passage of this id in the current index (a newer Milvus version when another writer
        updated it, as `ask` sees), or None when it holds none."""
        index = self.index()
        try:
            return index.passages[index.position(passage_id)]
        except (KeyError, ValueError, IndexError):
            return None

    def show(self, citation: str, context_lines: int = 2) -> Context:
        """A cited passage (by id or `source:line`) with the lines around it."""
        index = self.index()  # first: a new version re-reads the documents
        found = self.passage(citation.strip())
        return resolve(citation, self.documents(), [found] if found is not None else index.passages, context_lines)
