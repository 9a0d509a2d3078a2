"""The local store: per-file artefacts on disk, versions switched by an atomic CURRENT pointer, FAISS
for the vectors and a corpus-wide BM25.

Layout under `<index_dir>/<model-slug>/`::

    CURRENT                      names the version in use (replaced atomically)
    files/e-<key>/               one file's passages.jsonl, units.npy, vectors.npy (immutable);
                                 key = sha256(source, file sha256, embedding digest)
    files/l-<key>/terms.json     one file's BM25 term counts and term pairs (immutable);
                                 key = sha256(source, file sha256, lexical digest)
    v<time>-<pid>-<rand>/        a version: manifest.json (its files, their entries, a SHA-256 of
                                 every file it reads), lexical/ (BM25 over the whole library),
                                 terms.json (all term pairs), dense.faiss (HNSW/IVF-PQ only)

A version refers to the per-file entries it uses, so an update writes only the changed files'
entries plus the corpus-wide BM25 (seconds, no re-embedding) and never copies the others. Entries
are written to a `.tmp-*` folder and renamed into place, then the version, then CURRENT: a crash
or kill at any point leaves the previous version complete. Only the current and the previous
version are kept (a reader may still hold the previous one), and entries neither refers to are
deleted. Builds hold a file lock. Nothing is pickled.

Exact search (IndexFlatIP) is rebuilt from the vectors when a version is loaded (a copy, a few ms
at library size); HNSW and IVF-PQ are built by an update and saved in the version.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import time
import zipfile
from collections.abc import Collection
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np

from .. import atomic
from ..chunking import Passage
from ..errors import IndexCorruptError, IndexMissingError, RagError
from ..hashing import sha256_file
from . import FileData, FileRecord, UpdateSummary, best_units, centroid, position_in

FORMAT = 2
#: What reading a damaged index file can raise (numpy, json, zip, faiss, a Passage with wrong fields).
READ_ERRORS = (OSError, ValueError, TypeError, KeyError, IndexError, AttributeError, EOFError, RuntimeError, zipfile.BadZipFile)


@dataclass(frozen=True)
class Manifest:
    """A version's description: what it was built from and a checksum of every file it reads."""

    format: int
    model: str
    dim: int
    passages: int
    units: int
    corpus: dict[str, str]  # source -> sha256 of the file's bytes
    dependencies: dict[str, str]  # rag.index.dependencies(): what shaped the stored data
    files: dict[str, dict]  # source -> {"embedding": entry, "lexical": entry, "passages": n, "units": n, digests}
    checksums: dict[str, str]  # path relative to the model folder -> sha256
    index_type: str
    build_seconds: float
    created: str
    summary: str = ""

    def records(self) -> dict[str, FileRecord]:
        return {
            s: FileRecord(s, self.corpus[s], int(f["passages"]), int(f["units"]), f.get("embedding_digest", ""), f.get("lexical_digest", ""))
            for s, f in self.files.items()
        }


@dataclass
class Index:
    """A loaded index version: everything a search needs, in memory. Positions (0-based) number the
    passages of the whole library in source order; `ranges` gives each file's slice of them."""

    manifest: Manifest
    passages: list[Passage]
    unit_passage: np.ndarray  # int32, unit row -> passage position
    unit_sentence: np.ndarray  # int32, unit row -> sentence number in its passage, -1 for the passage
    vectors: np.ndarray  # float32 (units, dim), L2-normalised
    dense: object  # faiss.Index over `vectors`
    lexical: object  # rag.bm25.LexicalIndex over the passages
    term_pairs: dict[str, set[str]]
    path: Path
    #: source -> (first passage position, end position, first unit row, end unit row)
    ranges: dict[str, tuple[int, int, int, int]] = field(default_factory=dict)

    def position(self, pid: str) -> int:
        """The position of a passage id ("corpus/x.md#12")."""
        return position_in(self.ranges, pid)

    def positions_of(self, sources: Collection[str]) -> np.ndarray:
        """Passage positions of the given sources, in order."""
        spans = [self.ranges[s][:2] for s in sorted(sources) if s in self.ranges]
        return np.concatenate([np.arange(a, b) for a, b in spans]) if spans else np.zeros(0, np.int64)

    def units_of(self, sources: Collection[str]) -> np.ndarray:
        spans = [self.ranges[s][2:] for s in sorted(sources) if s in self.ranges]
        return np.concatenate([np.arange(a, b) for a, b in spans]) if spans else np.zeros(0, np.int64)

    # -- what retrieval reads besides passages and BM25 (the Milvus view answers the same) ----------
    def dense_scores(self, qvec: np.ndarray, depth: int) -> dict[int, float]:
        """Best unit score per passage among the `depth` nearest units (a passage or one of its sentences)."""
        n = min(depth, self.dense.ntotal)
        if n <= 0:
            return {}
        sims, ids = self.dense.search(qvec.reshape(1, -1).astype(np.float32), n)
        best: dict[int, float] = {}
        for sim, uid in zip(sims[0], ids[0]):
            if uid < 0:
                continue
            p = int(self.unit_passage[uid])
            if sim > best.get(p, -2.0):
                best[p] = float(sim)
        return best

    def dense_scores_in(self, qvec: np.ndarray, depth: int, source: str) -> dict[int, float]:
        """`dense_scores` over one file's units only, exactly (`rag.store.best_units`)."""
        _, _, u0, u1 = self.ranges[source]
        return best_units(self.vectors[u0:u1], self.unit_passage[u0:u1], qvec, depth)

    def file_centroids(self) -> dict[str, np.ndarray]:
        """Each file's centroid (`rag.store.centroid`), from its rows of `vectors`."""
        return {s: centroid(self.vectors[u0:u1], self.unit_sentence[u0:u1]) for s, (_, _, u0, u1) in self.ranges.items()}

    def sentence_vectors(self, position: int) -> tuple[np.ndarray, np.ndarray]:
        """(sentence numbers, vectors) of a passage's sentence units, in sentence order."""
        # A passage's units are contiguous rows (written passage by passage): found by bisection,
        # not by scanning every unit of the index.
        lo, hi = np.searchsorted(self.unit_passage, [position, position + 1])
        units = lo + np.flatnonzero(self.unit_sentence[lo:hi] >= 0)
        return self.unit_sentence[units], self.vectors[units]


# -- passages as JSON lines ------------------------------------------------------------------------
def passage_to_json(p: Passage) -> str:
    d = asdict(p)
    d["section"] = list(p.section)
    d["sentences"] = [list(s) for s in p.sentences]
    return json.dumps(d, ensure_ascii=False)


def passage_from_json(line: str) -> Passage:
    d = json.loads(line)
    d["section"] = tuple(d["section"])
    d["sentences"] = tuple(tuple(s) for s in d["sentences"])
    return Passage(**d)


# -- FAISS ------------------------------------------------------------------------------------------
def choose_index_type(n_vectors: int, requested: str = "auto") -> str:
    """Exact search below 20k vectors, HNSW from there on (figures: benchmarks/README.md).

    One question at a time on this 2-core machine, exact search costs ~0.05-0.1 ms per 1k vectors
    (0.5 ms at 10k, 11 ms at 100k, 58 ms at 1M on an idle machine, twice that on a busy one):
    below 20k that stays under ~2 ms, a fraction of the 10-18 ms it takes to embed the question;
    above, it soon costs as much as the embedding. HNSW answers in 0.1-0.5 ms with recall@10 of
    1.000 at 100k and 0.990 at 1M (efSearch 256), for ~18 % more memory and a build (9 s per
    100k, 2 min per 1M vectors) that is small next to embedding them.
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


# -- small helpers ----------------------------------------------------------------------------------
def model_slug(model: str) -> str:
    """A folder name for a model: readable, and distinct for distinct names or paths."""
    tail = re.sub(r"[^A-Za-z0-9._-]+", "-", model.rstrip("/").split("/")[-1]).strip("-.") or "model"
    if re.fullmatch(r"[A-Za-z0-9._-]+", model):
        return model
    return f"{tail}-{hashlib.sha256(model.encode()).hexdigest()[:8]}"


def entry_key(source: str, sha256: str, digest: str) -> str:
    return hashlib.sha256(f"{source}\0{sha256}\0{digest}".encode()).hexdigest()[:32]


def _new_name(prefix: str) -> str:
    return f"{prefix}{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}-{os.urandom(3).hex()}"


def _corrupt(path: Path, exc: BaseException) -> IndexCorruptError:
    return IndexCorruptError(f"index in {path} cannot be read ({type(exc).__name__}: {exc}); rebuild with: rag index")


def read_embedding_entry(folder: Path) -> tuple[list[Passage], np.ndarray, np.ndarray]:
    """(passages, unit owners, vectors) of one file's embedding entry; IndexCorruptError if damaged."""
    try:
        with open(folder / "passages.jsonl", encoding="utf-8") as fh:
            passages = [passage_from_json(line) for line in fh if line.strip()]
        units = np.load(folder / "units.npy", allow_pickle=False)
        vectors = np.load(folder / "vectors.npy", allow_pickle=False)
    except READ_ERRORS as exc:
        raise _corrupt(folder, exc) from None
    if units.ndim != 2 or units.shape[1] != 2 or vectors.ndim != 2 or len(vectors) != len(units):
        raise IndexCorruptError(f"index in {folder} disagrees with itself; rebuild with: rag index")
    return passages, units.astype(np.int32, copy=False), vectors


def read_lexical_entry(folder: Path) -> tuple[list[dict[str, int]], dict[str, list[str]]]:
    """(term counts per passage, term pairs) of one file's lexical entry."""
    try:
        raw = json.loads((folder / "terms.json").read_text(encoding="utf-8"))
        counts, pairs = raw["counts"], raw["pairs"]
        if not isinstance(counts, list) or not isinstance(pairs, dict):
            raise ValueError("not a terms entry")
    except READ_ERRORS as exc:
        raise _corrupt(folder, exc) from None
    return counts, pairs


class FaissStore:
    """The default store (see the module docstring for the layout)."""

    def __init__(self, index_dir: Path, model: str, dependencies: dict[str, str] | None = None, index_type: str = "auto") -> None:
        from filelock import FileLock

        self.index_dir = Path(index_dir)
        self.model = model
        self.dependencies = dict(dependencies or {})
        self.index_type = index_type
        self.root = self.index_dir / model_slug(model)
        self.pool = self.root / "files"
        self._lock: FileLock | None = None
        self._FileLock = FileLock
        self._index: Index | None = None
        self._manifests: dict[str, Manifest] = {}

    # -- versions -----------------------------------------------------------------------------------
    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Held by an update from deciding what to embed until CURRENT is switched."""
        self.root.mkdir(parents=True, exist_ok=True)
        if self._lock is None:
            self._lock = self._FileLock(str(self.root / ".build.lock"))
        with self._lock:
            yield

    def current(self) -> Path:
        """The version folder CURRENT names."""
        pointer = self.root / "CURRENT"
        if not pointer.is_file():
            raise IndexMissingError(f"no index for model {self.model!r} under {self.index_dir}; build it with: rag index")
        try:
            name = pointer.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise IndexCorruptError(f"index pointer {pointer} is unreadable ({exc}); rebuild with: rag index") from None
        path = self.root / name
        if not name or "/" in name or name.startswith(".") or not path.is_dir():
            raise IndexCorruptError(f"index pointer {pointer} names a missing version {name!r}; rebuild with: rag index")
        return path

    def manifest(self, path: Path | None = None) -> Manifest:
        path = path or self.current()
        cached = self._manifests.get(path.name)
        if cached is None:  # version folders are never changed once written: cache by name
            cached = self._manifests[path.name] = read_manifest(path)
        return cached

    def _current_manifest(self) -> Manifest | None:
        """The current manifest, or None when there is no usable version (nothing can be reused)."""
        try:
            return self.manifest()
        except (IndexMissingError, IndexCorruptError):
            return None

    # -- the seam -------------------------------------------------------------------------------
    def files(self) -> dict[str, FileRecord]:
        m = self._current_manifest()
        return m.records() if m else {}

    def file_data(self, source: str, terms: bool = True) -> FileData:
        """A stored file's data; without `terms`, its term counts and pairs are left empty (and not read)."""
        m = self.manifest()
        f = m.files[source]
        self._verify(m, [f["embedding"], f["lexical"]] if terms else [f["embedding"]])
        passages, units, vectors = read_embedding_entry(self.pool / f["embedding"])
        counts, pairs = read_lexical_entry(self.pool / f["lexical"]) if terms else ([], {})
        return FileData(source, m.corpus[source], passages, units, vectors, counts, pairs,
                        f.get("embedding_digest", ""), f.get("lexical_digest", ""))

    def reusable(self, source: str, sha256: str, embedding: str, lexical: str) -> tuple[bool, bool]:
        """Whether the current version holds `source` at this content with these digests, intact:
        (passages + vectors reusable, term counts reusable)."""
        m = self._current_manifest()
        f = m.files.get(source) if m else None
        if not f or m.corpus.get(source) != sha256:
            return False, False
        return (
            f.get("embedding_digest") == embedding and self._intact(m, f["embedding"]),
            f.get("lexical_digest") == lexical and self._intact(m, f["lexical"]),
        )

    def intact(self) -> bool:
        """Whether the current version's own files (BM25, term pairs, FAISS) pass their checksums."""
        try:
            path = self.current()
            m = read_manifest(path)
            self._verify(m, [path.name])
        except (IndexMissingError, IndexCorruptError):
            return False
        return True

    def _intact(self, manifest: Manifest | None, entry: str) -> bool:
        """Whether the version `manifest` describes refers to `entry` and its files pass their checksums."""
        if manifest is None or not any(entry in (f["embedding"], f["lexical"]) for f in manifest.files.values()):
            return False
        try:
            self._verify(manifest, [entry])
        except IndexCorruptError:
            return False
        return True

    def apply(self, add: list[FileData], remove: Collection[str] = (), summary: UpdateSummary | None = None) -> Path:
        """Write the changed files' entries and a new version; switch CURRENT to it atomically."""
        t0 = time.perf_counter()
        with self.lock():
            self.pool.mkdir(parents=True, exist_ok=True)
            cur = self._current_manifest()
            files = {s: dict(f) for s, f in (cur.files if cur else {}).items()}
            corpus = dict(cur.corpus) if cur else {}
            checksums = dict(cur.checksums) if cur else {}
            for s in remove:
                files.pop(s, None)
                corpus.pop(s, None)
            fresh_counts: dict[str, tuple[list, dict]] = {}
            for fd in add:
                e = "e-" + entry_key(fd.source, fd.sha256, fd.embedding)
                lx = "l-" + entry_key(fd.source, fd.sha256, fd.lexical)
                if not self._intact(cur, e):
                    checksums.update(self._write_entry(e, lambda d, fd=fd: _write_embedding(d, fd)))
                if not self._intact(cur, lx):
                    checksums.update(self._write_entry(lx, lambda d, fd=fd: _write_lexical(d, fd)))
                files[fd.source] = {
                    "embedding": e, "lexical": lx, "passages": len(fd.passages), "units": int(len(fd.unit_owner)),
                    "embedding_digest": fd.embedding, "lexical_digest": fd.lexical,
                }
                corpus[fd.source] = fd.sha256
                fresh_counts[fd.source] = (fd.term_counts, fd.term_pairs)
            files = dict(sorted(files.items()))
            used = {f"files/{f[k]}/" for f in files.values() for k in ("embedding", "lexical")}
            checksums = {p: d for p, d in checksums.items() if any(p.startswith(u) for u in used)}
            dim = next((int(fd.vectors.shape[1]) for fd in add if fd.vectors.ndim == 2 and fd.vectors.shape[1]), cur.dim if cur else 0)
            path = self._write_version(files, corpus, checksums, fresh_counts, dim, summary, t0)
        self._index = None
        return path

    def _write_entry(self, name: str, write) -> dict[str, str]:
        """Write one per-file entry atomically (a `.tmp-*` folder renamed into place); its checksums."""
        tmp = self.pool / _new_name(".tmp-")
        tmp.mkdir()
        try:
            write(tmp)
            atomic.fsync_tree(tmp)
            final = self.pool / name
            if final.exists():  # left by an older version, or damaged: not referenced by the current one
                shutil.rmtree(final)
            os.replace(tmp, final)
            atomic.fsync_dir(self.pool)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        return {f"files/{name}/{f.name}": sha256_file(f) for f in sorted(final.iterdir()) if f.is_file()}

    def _write_version(self, files, corpus, checksums, fresh_counts, dim, summary, t0) -> Path:
        from ..bm25 import LexicalIndex

        counts: list[dict[str, int]] = []
        groups: list[str] = []
        pairs: dict[str, set[str]] = {}
        n_units = 0
        for s, f in files.items():
            c, p = fresh_counts.get(s) or read_lexical_entry(self.pool / f["lexical"])
            if len(c) != f["passages"]:
                raise IndexCorruptError(f"index entry {self.pool / f['lexical']} disagrees with its file; rebuild with: rag index")
            counts.extend(c)
            groups.extend([s] * len(c))
            for en, zh in p.items():
                pairs.setdefault(en, set()).update(zh)
            n_units += int(f["units"])
        lexical = LexicalIndex.from_counts(counts, groups=groups)
        kind = choose_index_type(n_units, self.index_type)
        version = _new_name("v")
        tmp = self.root / f".tmp-{version}"
        tmp.mkdir()
        try:
            lexical.save(tmp / "lexical")
            (tmp / "terms.json").write_text(
                json.dumps({k: sorted(v) for k, v in sorted(pairs.items())}, ensure_ascii=False, indent=0), encoding="utf-8"
            )
            if kind != "flat":
                import faiss

                vectors = np.concatenate([read_embedding_entry(self.pool / f["embedding"])[2] for f in files.values()]) \
                    if files else np.zeros((0, dim), np.float32)
                faiss.write_index(make_faiss_index(np.ascontiguousarray(vectors, dtype=np.float32), kind), str(tmp / "dense.faiss"))
            own = {f"{version}/{f.relative_to(tmp).as_posix()}": sha256_file(f) for f in sorted(tmp.rglob("*")) if f.is_file()}
            manifest = Manifest(
                format=FORMAT,
                model=self.model,
                dim=dim,
                passages=sum(int(f["passages"]) for f in files.values()),
                units=n_units,
                corpus=dict(sorted(corpus.items())),
                dependencies=self.dependencies,
                files=files,
                checksums={**checksums, **own},
                index_type=kind,
                build_seconds=round(time.perf_counter() - t0 + (summary.seconds if summary else 0.0), 2),
                created=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                summary=summary.line() if summary else "",
            )
            (tmp / "manifest.json").write_text(json.dumps(asdict(manifest), ensure_ascii=False, indent=1), encoding="utf-8")
            atomic.fsync_tree(tmp)
            os.replace(tmp, self.root / version)
            atomic.fsync_dir(self.root)
            atomic.write_text(self.root / "CURRENT", version + "\n")
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        self._prune(keep=version)
        return self.root / version

    def _prune(self, keep: str) -> None:
        """Keep the current version and the one before it (a reader may still hold it), and the
        entries they refer to; delete older versions, unreferenced entries and stale leftovers."""
        versions = sorted((p for p in self.root.iterdir() if p.is_dir() and p.name.startswith("v")), key=lambda p: p.stat().st_mtime)
        others = [p for p in versions if p.name != keep]
        for old in others[:-1]:
            shutil.rmtree(old, ignore_errors=True)
        used: set[str] = set()
        for v in [self.root / keep, *others[-1:]]:
            try:
                used |= {e for f in read_manifest(v).files.values() for e in (f["embedding"], f["lexical"])}
            except IndexCorruptError:
                continue
        for entry in self.pool.iterdir() if self.pool.is_dir() else ():
            if entry.name.startswith((".tmp-",)):
                if time.time() - entry.stat().st_mtime > 3600:
                    shutil.rmtree(entry, ignore_errors=True)
            elif entry.name not in used:
                shutil.rmtree(entry, ignore_errors=True)
        for junk in self.root.glob(".tmp-*"):
            if time.time() - junk.stat().st_mtime > 3600:
                shutil.rmtree(junk, ignore_errors=True)

    # -- loading ----------------------------------------------------------------------------------
    def _verify(self, manifest: Manifest, entries: list[str] | None = None) -> None:
        prefixes = None if entries is None else tuple(p for e in entries for p in (f"files/{e}/", f"{e}/"))
        for rel, digest in manifest.checksums.items():
            if prefixes is not None and not rel.startswith(prefixes):
                continue
            f = self.root / rel
            if not f.is_file():
                raise IndexCorruptError(f"index file {f} is missing; rebuild with: rag index")
            if sha256_file(f) != digest:
                raise IndexCorruptError(f"index file {f} is corrupt (checksum mismatch); rebuild with: rag index")

    def load(self, path: Path | None = None, verify: bool = True) -> Index:
        """Load a version (the current one by default), checking every file against its checksum."""
        import faiss

        from ..bm25 import LexicalIndex

        path = path or self.current()
        manifest = read_manifest(path)
        if verify:  # what a load reads: the version's own files and the files' embedding entries
            self._verify(manifest, [path.name, *(f["embedding"] for f in manifest.files.values())])
        passages: list[Passage] = []
        owners: list[np.ndarray] = []
        vectors: list[np.ndarray] = []
        ranges: dict[str, tuple[int, int, int, int]] = {}
        n_units = 0
        for source, f in manifest.files.items():
            ps, units, vs = read_embedding_entry(self.pool / f["embedding"])
            if len(ps) != f["passages"] or len(units) != f["units"] or (len(units) and int(units[:, 0].max()) >= len(ps)):
                raise IndexCorruptError(f"index entry {self.pool / f['embedding']} disagrees with its manifest; rebuild with: rag index")
            ranges[source] = (len(passages), len(passages) + len(ps), n_units, n_units + len(units))
            owners.append(units[:, 0] + len(passages))
            owners.append(units[:, 1])
            passages.extend(ps)
            vectors.append(vs)
            n_units += len(units)
        unit_passage = np.concatenate(owners[0::2]).astype(np.int32) if owners else np.zeros(0, np.int32)
        unit_sentence = np.concatenate(owners[1::2]).astype(np.int32) if owners else np.zeros(0, np.int32)
        matrix = np.ascontiguousarray(np.concatenate(vectors) if vectors else np.zeros((0, manifest.dim)), dtype=np.float32)
        if len(passages) != manifest.passages or n_units != manifest.units or matrix.shape != (manifest.units, manifest.dim):
            raise IndexCorruptError(f"index in {path} disagrees with its manifest; rebuild with: rag index")
        try:
            if manifest.index_type == "flat":
                dense = make_faiss_index(matrix, "flat")
            else:
                dense = faiss.read_index(str(path / "dense.faiss"))
            lexical = LexicalIndex.load(path / "lexical")
            raw_pairs = json.loads((path / "terms.json").read_text(encoding="utf-8"))
            term_pairs = {k: set(v) for k, v in raw_pairs.items()}
        except (IndexMissingError, IndexCorruptError) as exc:  # the BM25 files are missing or damaged
            raise IndexCorruptError(f"{exc}; rebuild with: rag index") from None
        except READ_ERRORS as exc:
            raise _corrupt(path, exc) from None
        if dense.ntotal != manifest.units or dense.d != manifest.dim or len(lexical) != manifest.passages:
            raise IndexCorruptError(f"index in {path} disagrees with its manifest; rebuild with: rag index")
        return Index(manifest, passages, unit_passage, unit_sentence, matrix, dense, lexical, term_pairs, path, ranges)

    def loaded(self) -> Index:
        if self._index is None:
            self._index = self.load()
        return self._index

    # -- searching (the seam's read side, over the loaded version) -------------------------------
    def search_dense(self, qvec: np.ndarray, depth: int, sources: Collection[str] | None = None) -> list[tuple[str, float]]:
        index = self.loaded()
        q = np.asarray(qvec, dtype=np.float32).reshape(1, -1)
        best: dict[int, float] = {}
        if sources is None:
            n = min(depth * 4, index.dense.ntotal)
            if n <= 0:
                return []
            sims, rows = index.dense.search(q, n)
            pairs = zip(sims[0].tolist(), rows[0].tolist())
        else:  # exact search over the chosen files' units only
            rows = index.units_of(sources)
            pairs = zip((index.vectors[rows] @ q[0]).tolist(), rows.tolist())
        for sim, row in pairs:
            if row < 0:
                continue
            p = int(index.unit_passage[row])
            if sim > best.get(p, -2.0):
                best[p] = sim
        ranked = sorted(best, key=lambda p: (-best[p], p))[:depth]
        return [(index.passages[p].id, float(best[p])) for p in ranked]

    def search_lexical(self, tokens: list[str], depth: int, sources: Collection[str] | None = None) -> list[tuple[str, float]]:
        index = self.loaded()
        if sources is None:
            return [(index.passages[p].id, s) for p, s in index.lexical.search(tokens, depth)]
        scores = index.lexical.score(tokens)
        pos = index.positions_of(sources)
        pos = pos[scores[pos] > 0]
        order = np.lexsort((pos, -scores[pos]))[:depth]
        return [(index.passages[int(pos[j])].id, float(scores[pos[j]])) for j in order]

    def passages(self, ids: list[str]) -> list[Passage]:
        index = self.loaded()
        return [index.passages[index.position(i)] for i in ids]

    def unit_vectors(self, passage_id: str) -> tuple[np.ndarray, np.ndarray]:
        index = self.loaded()
        pos = index.position(passage_id)
        lo, hi = np.searchsorted(index.unit_passage, [pos, pos + 1])
        rows = lo + np.flatnonzero(index.unit_sentence[lo:hi] >= 0)
        return index.unit_sentence[rows], index.vectors[rows]


def _write_embedding(folder: Path, fd: FileData) -> None:
    with open(folder / "passages.jsonl", "w", encoding="utf-8") as fh:
        for p in fd.passages:
            fh.write(passage_to_json(p) + "\n")
    np.save(folder / "units.npy", np.asarray(fd.unit_owner, dtype=np.int32).reshape(-1, 2), allow_pickle=False)
    np.save(folder / "vectors.npy", np.ascontiguousarray(fd.vectors, dtype=np.float32), allow_pickle=False)


def _write_lexical(folder: Path, fd: FileData) -> None:
    data = {"counts": [dict(c) for c in fd.term_counts], "pairs": {k: sorted(v) for k, v in sorted(fd.term_pairs.items())}}
    (folder / "terms.json").write_text(json.dumps(data, ensure_ascii=False, separators=(",", ":")), encoding="utf-8")


def read_manifest(path: Path) -> Manifest:
    try:
        raw = json.loads((path / "manifest.json").read_text(encoding="utf-8"))
        if raw.get("format") != FORMAT:
            raise IndexCorruptError(f"index {path} has format {raw.get('format')}, expected {FORMAT}; rebuild with: rag index")
        m = Manifest(**raw)
        if not all(isinstance(x, dict) for x in (m.corpus, m.files, m.checksums, m.dependencies)) or set(m.files) != set(m.corpus):
            raise ValueError("fields of the wrong kind")
        return m
    except READ_ERRORS as exc:  # AttributeError: JSON, but not an object
        raise IndexCorruptError(f"index manifest in {path} is unreadable ({exc}); rebuild with: rag index") from None


__all__ = ["FaissStore", "Index", "Manifest", "read_manifest", "make_faiss_index", "choose_index_type", "model_slug"]
