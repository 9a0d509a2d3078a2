"""The on-disk index: passages, their vectors in FAISS, the BM25 arrays, and a manifest.

Layout: `<index_dir>/<model-slug>/CURRENT` names a complete version folder. A build writes a new
version folder, then replaces CURRENT atomically, so an interrupted build never damages the index
in use and a reader sees the old or the new version, never a mix. Builds hold a file lock. The
manifest records the model, the dimension, the corpus hashes, the chunking digest and a SHA-256
for every file, so staleness and corruption are detected, not guessed. Nothing is pickled.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from .chunking import ChunkSettings, Passage, clean_text, indexed_text, split_passages
from .corpus import Document
from .errors import IndexCorruptError, IndexMissingError, RagError
from .hashing import sha256_file

FORMAT = 1
#: Sentences shorter than this are not embedded on their own.
MIN_SENTENCE_CHARS = 8


@dataclass(frozen=True)
class Manifest:
    format: int
    model: str
    dim: int
    passages: int
    units: int
    corpus: dict[str, str]
    chunking: str
    chunk_settings: dict
    files: dict[str, str]
    index_type: str
    build_seconds: float
    created: str


@dataclass
class Index:
    """A loaded index version: everything a search needs, in memory."""

    manifest: Manifest
    passages: list[Passage]
    unit_passage: np.ndarray  # int32, unit row -> passage position
    unit_sentence: np.ndarray  # int32, unit row -> sentence number in its passage, -1 for the passage
    vectors: np.ndarray  # float32 (units, dim), L2-normalised
    dense: object  # faiss.Index over `vectors`
    lexical: object  # rag.lexical.LexicalIndex over the passages
    term_pairs: dict[str, set[str]]
    path: Path


def model_slug(model: str) -> str:
    """A folder name for a model: readable, and distinct for distinct names or paths."""
    tail = re.sub(r"[^A-Za-z0-9._-]+", "-", model.rstrip("/").split("/")[-1]).strip("-.") or "model"
    if re.fullmatch(r"[A-Za-z0-9._-]+", model):
        return model
    return f"{tail}-{hashlib.sha256(model.encode()).hexdigest()[:8]}"


def model_dir(index_dir: Path, model: str) -> Path:
    return index_dir / model_slug(model)




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


def _passage_to_json(p: Passage) -> str:
    d = asdict(p)
    d["section"] = list(p.section)
    d["sentences"] = [list(s) for s in p.sentences]
    return json.dumps(d, ensure_ascii=False)


def _passage_from_json(line: str) -> Passage:
    d = json.loads(line)
    d["section"] = tuple(d["section"])
    d["sentences"] = tuple(tuple(s) for s in d["sentences"])
    return Passage(**d)


def choose_index_type(n_vectors: int, requested: str = "auto") -> str:
    """Exact search below 20k vectors, HNSW from there on (figures: benchmarks/README.md).

    One question at a time on this 2-core machine, exact search costs ~0.05-0.1 ms per 1k vectors
    (0.5 ms at 10k, 11 ms at 100k, 58 ms at 1M on an idle machine, twice that on a busy one):
    below 20k that stays under ~2 ms, a fraction of the 10-18 ms it takes to embed the question;
    above, it soon costs as much as the embedding. HNSW answers in 0.1-0.5 ms with recall@10 of
    1.000 at 100k and 0.990 at 1M (efSearch 256), for ~18 % more memory and a build (9 s per
    100k, 2 min per 1M vectors) that is small next to embedding them (~35 min per 100k on this CPU).
    IVF-PQ is never picked: it is for when memory matters more than recall (0.54 here)."""
    if requested != "auto":
        return requested
    return "flat" if n_vectors < 20_000 else "hnsw"


def make_faiss_index(vectors: np.ndarray, index_type: str):
    """A FAISS inner-product index over normalised vectors."""
    import faiss

    dim = vectors.shape[1]
    if index_type == "flat":
        index = faiss.IndexFlatIP(dim)
    elif index_type == "hnsw":
        index = faiss.IndexHNSWFlat(dim, 32, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = 80
        index.hnsw.efSearch = 256  # 128 gave recall@10 0.978 at 1M vectors, 256 gives 0.990 for +0.15 ms
    elif index_type == "ivfpq":
        # 96 sub-quantizers of 4 dimensions, 8 bits each: 96 bytes a vector (1/16 of float32);
        # 48 of 8 dimensions halved recall@10 (0.26 vs 0.53 on benchmarks/scale.py's data).
        # k-means on at most 64 vectors per list, 10 iterations: 1M vectors train in ~1 min, not
        # an estimated ~20 min with faiss's defaults (256 per list, 25 iterations), for the same
        # recall (0.264 vs 0.271 at 100k).
        nlist = max(16, int(4 * np.sqrt(len(vectors))))
        index = faiss.IndexIVFPQ(faiss.IndexFlatIP(dim), dim, nlist, 96 if dim % 96 == 0 else 48, 8, faiss.METRIC_INNER_PRODUCT)
        index.cp.max_points_per_centroid = 64
        index.cp.niter = 10
        index.train(vectors)
        index.nprobe = 16
    else:
        raise RagError(f"unknown index type {index_type!r}: use auto, flat, hnsw or ivfpq")
    index.add(vectors)
    return index


def build_lexical(passages: list[Passage], settings: ChunkSettings):
    """BM25 over the passages, each length-normalised against its own file's passages."""
    from .lexical import LexicalIndex

    return LexicalIndex.build([indexed_text(p, settings) for p in passages], groups=[p.source for p in passages])


def build_index(
    docs: list[Document],
    index_dir: Path,
    model: str,
    encoder,
    settings: ChunkSettings = ChunkSettings(),
    progress: Callable[[int, int], None] | None = None,
    index_type: str = "auto",
) -> Path:
    """Embed and index the corpus, write a new version, then switch CURRENT to it atomically."""
    import faiss
    from filelock import FileLock

    from .lexical import extract_term_pairs

    t0 = time.perf_counter()
    root = model_dir(index_dir, model)
    root.mkdir(parents=True, exist_ok=True)
    with FileLock(str(root / ".build.lock")):
        passages = [p for d in docs for p in split_passages(d, settings)]
        texts, owner = unit_texts(passages, settings)
        done = 0

        def step(n: int) -> None:
            nonlocal done
            done += n
            if progress:
                progress(done, len(texts))

        vectors = np.ascontiguousarray(encoder.encode_passages(texts, progress=step), dtype=np.float32)
        kind = choose_index_type(len(vectors), index_type)
        dense = make_faiss_index(vectors, kind)
        lexical = build_lexical(passages, settings)
        pairs: dict[str, set[str]] = {}
        for d in docs:
            for en, zh in extract_term_pairs(d.text).items():
                pairs.setdefault(en, set()).update(zh)

        version = f"v{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}-{hashlib.sha256(os.urandom(8)).hexdigest()[:6]}"
        tmp = root / f".tmp-{version}"
        tmp.mkdir()
        try:
            with open(tmp / "passages.jsonl", "w", encoding="utf-8") as fh:
                for p in passages:
                    fh.write(_passage_to_json(p) + "\n")
            np.save(tmp / "units.npy", np.asarray(owner, dtype=np.int32).reshape(-1, 2), allow_pickle=False)
            np.save(tmp / "vectors.npy", vectors, allow_pickle=False)
            faiss.write_index(dense, str(tmp / "dense.faiss"))
            lexical.save(tmp / "lexical")
            (tmp / "terms.json").write_text(
                json.dumps({k: sorted(v) for k, v in sorted(pairs.items())}, ensure_ascii=False, indent=0),
                encoding="utf-8",
            )
            files = {
                str(f.relative_to(tmp)): sha256_file(f) for f in sorted(tmp.rglob("*")) if f.is_file()
            }
            manifest = Manifest(
                format=FORMAT,
                model=model,
                dim=int(vectors.shape[1]) if vectors.size else int(getattr(encoder, "dim", 0)),
                passages=len(passages),
                units=len(texts),
                corpus=corpus_hashes(docs),
                chunking=settings.digest(),
                chunk_settings=asdict(settings),
                files=files,
                index_type=kind,
                build_seconds=round(time.perf_counter() - t0, 2),
                created=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            )
            (tmp / "manifest.json").write_text(json.dumps(asdict(manifest), ensure_ascii=False, indent=1), encoding="utf-8")
            for f in tmp.rglob("*"):
                if f.is_file():
                    with open(f, "rb") as fh:
                        os.fsync(fh.fileno())
            os.replace(tmp, root / version)
            pointer = root / f".CURRENT.{version}"
            pointer.write_text(version + "\n", encoding="utf-8")
            os.replace(pointer, root / "CURRENT")
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        _prune(root, keep=version)
    return root / version


def _prune(root: Path, keep: str) -> None:
    """Delete all versions but the current one and the one before it (a reader may still hold it)."""
    versions = sorted((p for p in root.iterdir() if p.is_dir() and p.name.startswith("v")), key=lambda p: p.stat().st_mtime)
    for old in [p for p in versions if p.name != keep][:-1]:
        shutil.rmtree(old, ignore_errors=True)
    for junk in root.glob(".tmp-*"):
        if time.time() - junk.stat().st_mtime > 3600:
            shutil.rmtree(junk, ignore_errors=True)


def current_version(index_dir: Path, model: str) -> Path:
    root = model_dir(index_dir, model)
    pointer = root / "CURRENT"
    if not pointer.is_file():
        raise IndexMissingError(f"no index for model {model!r} under {index_dir}; build it with: rag index")
    try:
        name = pointer.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise IndexCorruptError(f"index pointer {pointer} is unreadable ({exc}); rebuild with: rag index") from None
    path = root / name
    if not name or "/" in name or not path.is_dir():
        raise IndexCorruptError(f"index pointer {pointer} names a missing version {name!r}; rebuild with: rag index")
    return path


def read_manifest(path: Path) -> Manifest:
    try:
        raw = json.loads((path / "manifest.json").read_text(encoding="utf-8"))
        if raw.get("format") != FORMAT:
            raise IndexCorruptError(f"index {path} has format {raw.get('format')}, expected {FORMAT}; rebuild with: rag index")
        return Manifest(**raw)
    except (OSError, ValueError, TypeError, AttributeError) as exc:  # AttributeError: JSON, but not an object
        raise IndexCorruptError(f"index manifest in {path} is unreadable ({exc}); rebuild with: rag index") from None


def stale_reason(manifest: Manifest, docs: list[Document], model: str, settings: ChunkSettings) -> str | None:
    """Why the index no longer matches the corpus, the chunking or the model; None when it does."""
    if manifest.model != model:
        return f"the index was built with model {manifest.model!r}, not {model!r}"
    if manifest.chunking != settings.digest():
        return "the chunking settings or code changed"
    current = corpus_hashes(docs)
    if manifest.corpus != current:
        changed = sorted(set(current) ^ set(manifest.corpus) | {s for s in current if manifest.corpus.get(s) != current[s]})
        return "the corpus changed (" + ", ".join(changed[:3]) + (" …" if len(changed) > 3 else "") + ")"
    return None


def load_index(path: Path, verify: bool = True) -> Index:
    """Load one index version, checking every file against the manifest's checksums."""
    import faiss

    from .lexical import LENGTH_NORM_GROUP, LexicalIndex

    manifest = read_manifest(path)
    if verify:
        for name, digest in manifest.files.items():
            f = path / name
            if not f.is_file():
                raise IndexCorruptError(f"index file {f} is missing; rebuild with: rag index")
            if sha256_file(f) != digest:
                raise IndexCorruptError(f"index file {f} is corrupt (checksum mismatch); rebuild with: rag index")
    try:
        with open(path / "passages.jsonl", encoding="utf-8") as fh:
            passages = [_passage_from_json(line) for line in fh if line.strip()]
        units = np.load(path / "units.npy", allow_pickle=False)
        unit_passage, unit_sentence = units[:, 0], units[:, 1]
        vectors = np.load(path / "vectors.npy", allow_pickle=False)
        dense = faiss.read_index(str(path / "dense.faiss"))
        lexical = LexicalIndex.load(path / "lexical")
        if lexical.params.get("length_norm") != LENGTH_NORM_GROUP:
            # Built before BM25 was normalised per file: recompute it from the stored passages
            # (a BM25 build, no re-embedding); `rag index` writes the new form.
            lexical = build_lexical(passages, ChunkSettings(**manifest.chunk_settings))
        raw_pairs = json.loads((path / "terms.json").read_text(encoding="utf-8"))
    except Exception as exc:  # any parse failure of an index file is corruption to the user
        raise IndexCorruptError(f"index in {path} cannot be read ({type(exc).__name__}: {exc}); rebuild with: rag index") from None
    if (
        len(passages) != manifest.passages
        or len(unit_passage) != manifest.units
        or vectors.shape != (manifest.units, manifest.dim)
        or dense.ntotal != manifest.units
        or dense.d != manifest.dim
    ):
        raise IndexCorruptError(f"index in {path} disagrees with its manifest; rebuild with: rag index")
    return Index(
        manifest=manifest,
        passages=passages,
        unit_passage=unit_passage,
        unit_sentence=unit_sentence,
        vectors=vectors,
        dense=dense,
        lexical=lexical,
        term_pairs={k: set(v) for k, v in raw_pairs.items()},
        path=path,
    )
