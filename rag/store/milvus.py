"""The Milvus store: the store seam (notes/store-seam.md) over `pymilvus.MilvusClient`, so one library
can be served by many `rag serve` workers on many machines, or outgrow one machine's memory.

The same code talks to Milvus Lite (a local path ending in ``.db``: an in-process server, for
development, CI and small libraries) and to a Milvus server (``http(s)://host:19530``).

Layout: four collections named ``rag_<model>_<digest>_{units,passages,terms,meta}``, the digest
taken over the model and the index's dependencies (chunking, tokenizer, code versions), so a store
built with other settings is never read by mistake.

* ``units``: one row per passage or sentence unit: its dense vector (HNSW/IP, from :data:`INDEX`),
  passage id, source, passage number and sentence number.
* ``passages``: one row per passage: everything a citation needs (text, section path, character
  offsets, lines, sentence spans) and its BM25 document-side sparse vector.
* ``terms``: the BM25 vocabulary, token -> sparse dimension id, append-only: each row holds a run
  of new tokens (ids ``pk … pk + count - 1``, one line each), so adding a report writes a few rows.
* ``meta``: per-file records (sha256, counts, digests, the file's document-frequency vector and
  the reference average length its rows were weighted with) and the *pointer* rows.

Every row carries ``gen``, the generation of the file version it belongs to. A pointer row holds
``next_gen`` and the ``retired`` generations; a row is visible iff ``gen < next_gen`` and its gen
is not retired. An update writes the new files' rows under fresh generations (invisible), then
inserts ONE pointer row (the switch), then deletes the replaced generations. A crash or kill -9
before the switch leaves rows nobody sees (swept by the next update); after it, the new library.
Pointer rows are only ever inserted (the newest complete one wins), never updated in place.

BM25 (exactly rag.lexical.LexicalIndex: Lucene idf, k1 1.5, b 0.75, the project's tokens):

* Document side: a passage's sparse vector holds ``tf / (tf + k1·(1 − b + b·dl/ref))`` per term,
  with ``ref`` the mean passage length of the passage's OWN file (kept in its file record): length
  is normalised per file, as rag.bm25.LexicalIndex.from_counts(groups=sources) does for the FAISS
  path. A file's mean never changes while the file does not, so stored weights never go stale
  when other reports come and go (no rewriting, no drift).
* Query side: ``qtf · idf(t)``, idf from document frequencies summed client-side over the visible
  file records (each file stores its own df vector), so adding a report writes only its own rows;
  a scope (``--doc``) sums only its files' vectors, as the FAISS path's scoped index does.
* Milvus' sparse IP search *proposes* candidates (float32 weights); the client rescores them
  exactly as the FAISS path does (tf recovered from the stored weight, dl stored; float32
  per-term scores summed in the query's token order), so scores, and therefore ties, are
  bit-for-bit those of LexicalIndex. The client fetches more candidates until the k-th exact
  score beats the lowest proposed one (with float slack), so nothing Milvus ranked lower is missed.

Tokens -> sparse dimension ids: a vocabulary stored in Milvus (ids 1, 2, … assigned by the writer,
never reused), not a hash: a 32-bit hash (Milvus' sparse index limit) of ~300k library tokens has
~10 expected collisions, each one silently mixing two terms' postings and document frequencies,
which would break "scores equal the FAISS path's BM25". Each process keeps the vocabulary in
memory (the vocabulary rows it has not seen are read when the pointer moves past them).

Fusion of dense and lexical rankings is left to the caller (rag.retrieve, RRF k = 60 on the
client), exactly as with FAISS: `hybrid_search` with ``RRFRanker(60)`` would fuse the *proposed*
lexical candidates before exact rescoring, so its rankings could differ from the FAISS path's.

One writer at a time per collection (Milvus Lite enforces one process per path; with a server,
run `rag index` from one place). Readers need only the URI: no local files. `MilvusIndex` (end of
this module) is what the product's retrieval reads: one pointer version, positions numbered as the
FAISS path numbers them, so `rag.retrieve` ranks exactly as it does over the FAISS index.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
import time
from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import config
from ..chunking import Passage
from ..errors import IndexMissingError, InvalidArgumentError, StoreError
from ..bm25 import B, K1, synonym_weights
from ..bm25 import idf as _idf
from . import FileData, FileRecord, UpdateSummary, best_units, centroid, position_in

__all__ = ["MilvusStore", "MilvusIndex", "INDEX", "index_config", "SUPPORTED_INDEXES", "escape", "is_lite"]

#: Bump when what is written changes (rows, weights, layout): it is part of the collection name.
FORMAT = 2  # 2: BM25 length normalised per file

#: The ONE index configuration. Dense vectors are L2-normalised, so inner product = cosine.
INDEX: dict = {
    "dense": {"index_type": "HNSW", "metric_type": "IP", "params": {"M": 16, "efConstruction": 200}},
    "dense_search": {"ef": 128},  # raised to HNSW_EF_PER_RESULT × the requested limit when smaller
    "sparse": {"index_type": "SPARSE_INVERTED_INDEX", "metric_type": "IP", "params": {}},
}

#: What each target accepts. Lite rejects IVF_PQ, DISKANN and SCANN (and SPARSE_WAND) -- and when
#: declared on an empty collection only at the next load, after which the collection cannot load:
#: so the configuration is checked here, before anything is written.
SUPPORTED_INDEXES = {
    "lite": {"dense": {"FLAT", "HNSW", "IVF_FLAT", "AUTOINDEX"}, "sparse": {"SPARSE_INVERTED_INDEX"}},
    "server": {
        "dense": {"FLAT", "HNSW", "HNSW_SQ", "HNSW_PQ", "HNSW_PRQ", "IVF_FLAT", "IVF_SQ8", "IVF_PQ",
                  "IVF_RABITQ", "DISKANN", "SCANN", "AUTOINDEX"},
        "sparse": {"SPARSE_INVERTED_INDEX", "SPARSE_WAND", "AUTOINDEX"},
    },
}

#: `--index-type` (the FAISS names) -> the Milvus dense index; a Milvus name (IVF_FLAT, DISKANN, …) is taken as is.
_INDEX_TYPES = {"auto": "HNSW", "hnsw": "HNSW", "flat": "FLAT", "ivfpq": "IVF_PQ"}
_INDEX_PARAMS = {"HNSW": {"M": 16, "efConstruction": 200}, "IVF_FLAT": {"nlist": 128}, "IVF_PQ": {"nlist": 128, "m": 48, "nbits": 8},
                 "IVF_SQ8": {"nlist": 128}}


def index_config(index_type: str = "auto") -> dict:
    """The ONE index configuration (:data:`INDEX`) with the dense index `rag index --index-type`
    names; checked against the target (Lite or server) when the store is opened, before any write."""
    kind = _INDEX_TYPES.get(index_type, index_type.upper() if isinstance(index_type, str) else "")
    known = SUPPORTED_INDEXES["server"]["dense"]
    if kind not in known:
        raise StoreError(f"unknown index type {index_type!r}: use auto, flat, hnsw or ivfpq, or a Milvus index type "
                         f"({', '.join(sorted(known))})")
    out = json.loads(json.dumps(INDEX))
    if kind != "HNSW":
        out["dense"] = {"index_type": kind, "metric_type": "IP", "params": dict(_INDEX_PARAMS.get(kind, {}))}
        out["dense_search"] = {"nprobe": 32} if kind.startswith("IVF") else {}
    return out


#: HNSW's search list per requested unit. The FAISS path searches a library below 20k vectors
#: exactly; HNSW with ef = the limit (200 units) missed enough of the tail that 12 of 108 dev
#: questions' hybrid top-10 differed at library size (5995 vectors); ef = 4 × the limit: 0 of 108.
HNSW_EF_PER_RESULT = 4
_MAX_LIMIT = 16384  # Milvus' largest top-k
_BATCH = 1000  # rows per insert call
_POINTER_BASE = 0  # pointer rows: pk = version (1, 2, …)
_FILE_BASE = 1 << 40  # file-record rows: pk = _FILE_BASE + gen
_MAX_VARCHAR = 65535
_FLOAT_SLACK = 1e-5  # float32 weights: keeps the rescoring bound safe


# ------------------------------------------------------------------------------------------------
# Small pure helpers


def is_lite(uri: str) -> bool:
    """A URI without a scheme is a Milvus Lite path; http(s)://, tcp:// and unix: are servers."""
    return not re.match(r"^(https?|tcp)://|^unix:", uri.strip(), re.I)


def escape(value: str) -> str:
    """`value` as a double-quoted Milvus expression string literal: backslash, double quote and
    line breaks are escaped (the parser rejects raw newlines), everything else is literal, so a
    file name can never end the literal and inject an expression."""
    out = (value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
           .replace("\t", "\\t"))
    return f'"{out}"'


def _str_list(values: Iterable[str]) -> str:
    return "[" + ", ".join(escape(v) for v in values) + "]"


def _int_list(values: Iterable[int]) -> str:
    return "[" + ", ".join(str(int(v)) for v in values) + "]"


def _validate_index(index: dict, lite: bool) -> None:
    """Raise StoreError when the target does not support the configured index types."""
    target = "lite" if lite else "server"
    for part in ("dense", "sparse"):
        kind = str(index[part]["index_type"]).upper()
        if kind not in SUPPORTED_INDEXES[target][part]:
            where = "Milvus Lite" if lite else "a Milvus server"
            raise StoreError(
                f"{where} does not support the {part} index {kind}; use one of "
                + ", ".join(sorted(SUPPORTED_INDEXES[target][part]))
                + (" (or a Milvus server for the others)" if lite else "")
            )
        if index[part].get("metric_type", "IP") != "IP":
            raise StoreError(f"the {part} index must use metric IP (vectors are normalised), not {index[part]['metric_type']}")


def _embedding_key(dependencies: dict[str, str]) -> str:
    """The digest of what shaped passages and vectors: it names the collections. A change of only
    the lexical dependencies (tokenizer, dictionary) keeps the collections: the pipeline re-applies
    the files with new term counts and the vectors it reads back (`file_data(terms=False)`)."""
    try:
        from ..index import digests  # the library branch's split of the dependencies
    except ImportError:  # before that lands: every dependency keys the collections
        return hashlib.sha256(json.dumps(dependencies, sort_keys=True).encode()).hexdigest()[:16]
    return digests(dependencies)[0]


def _collection_prefix(model_slug: str, model: str, key: str) -> str:
    digest = hashlib.sha256(json.dumps({"format": FORMAT, "model": model, "key": key}, sort_keys=True).encode()).hexdigest()[:12]
    slug = re.sub(r"[^A-Za-z0-9_]", "_", model_slug)[:60]
    return f"rag_{slug}_{digest}"


def _model_slug(model: str) -> str:
    """A readable name for a model (as rag.index.model_slug)."""
    tail = re.sub(r"[^A-Za-z0-9._-]+", "-", model.rstrip("/").split("/")[-1]).strip("-.") or "model"
    if re.fullmatch(r"[A-Za-z0-9._-]+", model):
        return model
    return f"{tail}-{hashlib.sha256(model.encode()).hexdigest()[:8]}"


def _saturation(tf: np.ndarray | float, dl: float, avgdl: float):
    return tf / (tf + K1 * (1.0 - B + B * dl / avgdl))


def _file_mean(counts: list[dict[str, int]]) -> float:
    """The mean passage length of one file, computed as rag.bm25.LexicalIndex.from_counts does
    (numpy float64 mean; 1.0 for a file without tokens), so the weights are the FAISS path's."""
    lengths = np.array([sum(c.values()) for c in counts], dtype=np.float64)
    return float(lengths.mean()) if len(lengths) and lengths.sum() > 0 else 1.0


def _passage_json(p: Passage) -> dict:
    return {"id": p.id, "source": p.source, "section": list(p.section), "start": p.start, "end": p.end,
            "line_start": p.line_start, "line_end": p.line_end, "text": p.text, "kind": p.kind,
            "sentences": [list(s) for s in p.sentences]}


def _passage_from(d: dict) -> Passage:
    return Passage(d["id"], d["source"], tuple(d["section"]), int(d["start"]), int(d["end"]),
                   int(d["line_start"]), int(d["line_end"]), d["text"], d["kind"],
                   tuple((int(a), int(b)) for a, b in d["sentences"]))


def _one_line(exc: BaseException) -> str:
    msg = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return " ".join(str(msg).split())[:200]


# ------------------------------------------------------------------------------------------------
# The state one pointer version describes


@dataclass
class _State:
    version: int
    next_gen: int
    next_term: int
    retired: list[int]
    info: dict  # model, dim, dependencies, index
    files: dict[str, dict]  # source -> file record (gen, sha256, passages, units, dl, ref, ...)
    df: np.ndarray  # float64 (next_term,): document frequency per term id
    n_docs: int
    avgdl: float
    ref: dict[int, float]  # gen -> the mean passage length of that gen's file (its weights' normaliser)
    drift: float  # the rescoring bound's factor: 1.0 (per-file weights are exact); kept for old figures
    file_df: dict[str, tuple[np.ndarray, np.ndarray]]  # source -> (term ids, document frequencies)
    created: str = ""  # when the pointer was written (this version's switch)

    def stats(self, sources: Collection[str] | None = None) -> tuple[int, np.ndarray]:
        """(passages, df per term id) over the library, or over `sources` only (a scope)."""
        if sources is None:
            return self.n_docs, self.df
        df = np.zeros_like(self.df)
        n = 0
        for s in sources:
            f = self.files.get(s)
            if f is None:
                continue
            n += int(f["passages"])
            ids, vals = self.file_df[s]
            np.add.at(df, ids, vals)
        return n, df

    def visible(self) -> str:
        expr = f"gen < {self.next_gen}"
        if self.retired:
            expr += f" and gen not in {_int_list(self.retired)}"
        return expr


def _stats(files: dict[str, dict]) -> tuple[int, float]:
    n = sum(int(f["passages"]) for f in files.values())
    dl = sum(int(f["dl"]) for f in files.values())
    return n, (dl / n if n and dl > 0 else 1.0)


# ------------------------------------------------------------------------------------------------


class MilvusStore:
    """The store seam over Milvus (Lite or a server). See the module docstring."""

    def __init__(
        self,
        index_dir: Path | str,
        model: str,
        dependencies: dict[str, str] | None = None,
        *,
        uri: str | None = None,
        token: str | None = None,
        collection: str | None = None,
        index: dict | None = None,
        timeout: float | None = None,
    ) -> None:
        self.model = model
        self.dependencies = dict(dependencies or {})
        self.uri = uri or config.milvus_uri(Path(index_dir), _model_slug(model))
        self.lite = is_lite(self.uri)
        self.index = json.loads(json.dumps(index or INDEX))
        _validate_index(self.index, self.lite)  # before anything is written, even a connection
        self.key = _embedding_key(self.dependencies)
        self.prefix = collection or config.milvus_collection() or _collection_prefix(_model_slug(model), model, self.key)
        self.names = {k: f"{self.prefix}_{k}" for k in ("units", "passages", "terms", "meta")}
        self._client = _connect(self.uri, config.milvus_token() if token is None else token,
                                config.milvus_timeout() if timeout is None else timeout)
        self._lock = threading.Lock()
        self._state_cache: _State | None = None
        self._loaded = False
        self._terms: dict[str, int] = {}  # token -> id for ids below _terms_end (ids never change)
        self._terms_end = 1
        self._terms_lock = threading.RLock()  # readers in several threads (rag serve) sync it
        self.last_lexical_candidates = 0  # how many passages the last lexical search rescored

    # -- connection and collections ---------------------------------------------------------------
    def close(self) -> None:
        """Release the client (a Milvus Lite server stops when its process exits)."""
        try:
            self._client.close()
        except Exception:  # pragma: no cover - closing twice, or a server already gone
            pass

    def _exists(self) -> bool:
        try:
            return self._client.has_collection(self.names["meta"])
        except Exception as exc:
            raise StoreError(f"Milvus at {self.uri} does not answer ({_one_line(exc)}); start it or fix RAG_MILVUS_URI") from None

    def _create(self, dim: int) -> None:
        from pymilvus import DataType

        c = self._client

        def schema(fields):
            s = c.create_schema(auto_id=False, enable_dynamic_field=False)
            s.add_field("pk", DataType.INT64, is_primary=True)
            s.add_field("gen", DataType.INT64)
            for name, dtype, kw in fields:
                s.add_field(name, dtype, **kw)
            return s

        def params(vec_field, spec, scalars=()):
            p = c.prepare_index_params()
            p.add_index(vec_field, index_type=spec["index_type"], metric_type=spec["metric_type"], params=spec.get("params") or {})
            for f in scalars:
                p.add_index(f, index_type="INVERTED")
            return p

        text = {"max_length": _MAX_VARCHAR}
        sparse_spec = self.index["sparse"]
        dummy = {"index_type": "SPARSE_INVERTED_INDEX", "metric_type": "IP"}
        layout = {
            "units": (schema([("source", DataType.VARCHAR, text), ("pid", DataType.VARCHAR, text),
                              ("n", DataType.INT64, {}), ("sentence", DataType.INT64, {}),
                              ("vec", DataType.FLOAT_VECTOR, {"dim": dim})]),
                      params("vec", self.index["dense"], ("source", "pid"))),
            "passages": (schema([("source", DataType.VARCHAR, text), ("pid", DataType.VARCHAR, text),
                                 ("n", DataType.INT64, {}), ("dl", DataType.INT64, {}), ("data", DataType.JSON, {}),
                                 ("sparse", DataType.SPARSE_FLOAT_VECTOR, {})]),
                         params("sparse", sparse_spec, ("source", "pid"))),
            "terms": (schema([("count", DataType.INT64, {}), ("terms", DataType.VARCHAR, text),
                              ("dummy", DataType.FLOAT_VECTOR, {"dim": 2})]),
                      params("dummy", {"index_type": "FLAT", "metric_type": "IP"})),
            "meta": (schema([("kind", DataType.VARCHAR, {"max_length": 16}), ("source", DataType.VARCHAR, text),
                             ("data", DataType.JSON, {}), ("df", DataType.SPARSE_FLOAT_VECTOR, {})]),
                     params("df", dummy)),
        }
        for key in ("units", "passages", "terms", "meta"):  # meta last: its existence means "created"
            if not c.has_collection(self.names[key]):
                s, p = layout[key]
                c.create_collection(self.names[key], schema=s, consistency_level="Strong")
                # Indexes on an empty collection are ready at once: skip pymilvus' 0.5 s polling.
                c.create_index(self.names[key], p, sync=False)
                c.load_collection(self.names[key])

    def _load(self) -> None:
        for name in self.names.values():
            state = str(self._client.get_load_state(name).get("state", ""))
            if "Loaded" not in state:
                try:
                    self._client.load_collection(name)
                except Exception as exc:
                    if not (self.lite and self._drop_lite_indexes(name)):
                        raise StoreError(f"Milvus collection {name} at {self.uri} cannot be loaded ({_one_line(exc)}); "
                                         "rebuild it: rag index --store milvus") from None
                    self._client.load_collection(name)  # Lite rebuilds the index files it lacks

    def _drop_lite_indexes(self, name: str) -> bool:
        """Milvus Lite writes a segment's index file in place (not to a temporary file renamed into
        place), so a process killed while writing one leaves a truncated file, and the collection
        then cannot load ("File is too small"). Index files are derived from the segments' data:
        remove this collection's, so that the load rebuilds them. Whether any was removed."""
        folder = Path(self.uri).expanduser().resolve() / "collections" / name
        removed = False
        for f in folder.glob("partitions/*/indexes/*"):
            if f.suffix in (".idx", ".sidx"):  # vector and scalar index sidecars
                f.unlink(missing_ok=True)
                removed = True
        return removed

    # -- reading the pointer ------------------------------------------------------------------------
    def _pointer(self) -> tuple[int, dict] | None:
        rows = self._client.query(self.names["meta"], filter='kind == "pointer"', output_fields=["pk", "data"])
        if not rows:
            return None
        best = max(rows, key=lambda r: int(r["pk"]))
        return int(best["pk"]) - _POINTER_BASE, best["data"]

    def _state(self, fresh: bool = False) -> _State:
        """The state of the newest pointer (re-read on every call: one small query; another
        process may have switched it)."""
        if not self._exists():
            raise IndexMissingError(f"no Milvus collection {self.prefix} at {self.uri}; build it with: rag index --store milvus")
        if not self._loaded:
            self._load()
            self._loaded = True
        ptr = self._pointer()
        if ptr is None:
            raise IndexMissingError(f"Milvus collection {self.prefix} at {self.uri} is empty; build it with: rag index --store milvus")
        version, data = ptr
        cached = self._state_cache
        if cached is not None and cached.version == version and not fresh:
            return cached
        self._check_info(data["info"])
        st = _State(version, int(data["next_gen"]), int(data["next_term"]), [int(g) for g in data["retired"]],
                    data["info"], {}, np.zeros(0), 0, 1.0, {}, 1.0, {}, str(data.get("created", "")))
        rows = self._client.query(self.names["meta"], filter=f'kind == "file" and {st.visible()}',
                                  output_fields=["gen", "source", "data", "df"])
        df = np.zeros(st.next_term, dtype=np.float64)
        for r in rows:
            rec = dict(r["data"], gen=int(r["gen"]))
            st.files[r["source"]] = rec
            st.ref[rec["gen"]] = float(rec["ref"])
            vec = r["df"]
            if vec:
                ids = np.fromiter((int(i) for i in vec), dtype=np.int64, count=len(vec))
                vals = np.fromiter((float(v) for v in vec.values()), dtype=np.float64, count=len(vec))
                keep = (ids > 0) & (ids < st.next_term)
                st.file_df[r["source"]] = (ids[keep], np.rint(vals[keep]))
                np.add.at(df, ids[keep], np.rint(vals[keep]))
            else:
                st.file_df[r["source"]] = (np.zeros(0, np.int64), np.zeros(0))
        st.files = dict(sorted(st.files.items()))
        st.df = df
        st.n_docs, st.avgdl = _stats(st.files)
        st.drift = 1.0
        self._state_cache = st
        return st

    def _check_info(self, info: dict) -> None:
        if info.get("model") != self.model or info.get("key") != self.key:
            raise StoreError(
                f"Milvus collection {self.prefix} was built with model {info.get('model')!r}"
                + ("" if info.get("model") != self.model else " and other settings")
                + f", not {self.model!r}; rebuild it (rag index --store milvus) or choose another collection name"
            )

    # -- the seam: listing ----------------------------------------------------------------------------
    def files(self) -> dict[str, FileRecord]:
        """The stored files by source ({} when nothing is stored yet)."""
        try:
            st = self._state()
        except IndexMissingError:
            return {}
        return {s: FileRecord(s, f["sha256"], int(f["passages"]), int(f["units"]), f.get("embedding", ""), f.get("lexical", ""))
                for s, f in st.files.items()}

    def reusable(self, source: str, sha256: str, embedding: str, lexical: str) -> tuple[bool, bool]:
        """Whether the store holds `source` at this content with these digests:
        (passages + vectors reusable, term counts reusable)."""
        f = self.files().get(source)
        if not f or f.sha256 != sha256:
            return False, False
        return f.embedding == embedding, f.lexical == lexical

    # -- the seam: one atomic update ------------------------------------------------------------------
    def apply(self, add: list[FileData], remove: Collection[str] = (), summary: UpdateSummary | None = None) -> None:
        """Add or replace the files of `add`, drop the sources of `remove`: only their rows are
        written or deleted. Atomic: readers see the old library until one pointer row switches."""
        with self._lock:
            dims = {int(fd.vectors.shape[1]) for fd in add if fd.vectors.ndim == 2 and len(fd.vectors)}
            for fd in add:
                _check_file(fd)
            if len(dims) > 1:
                raise InvalidArgumentError(f"files with vectors of different dimensions: {sorted(dims)}")
            if not self._exists():
                if not dims:
                    if not add and not remove:
                        return
                    raise InvalidArgumentError("the first update of a Milvus store needs at least one file with vectors")
                self._create(dims.pop())
                self._write_pointer(1, {"next_gen": 1, "next_term": 1, "retired": [], "info": self._info(dims_from=add)})
            st = self._state(fresh=True)
            if dims and dims != {int(st.info["dim"])}:
                raise StoreError(f"Milvus collection {self.prefix} holds {st.info['dim']}-dimensional vectors, these files have {sorted(dims)}; rebuild it")
            self._sweep(st)
            with self._terms_lock:
                if self._terms_end > st.next_term:  # ids handed out by an update of ours that failed
                    self._terms = {t: i for t, i in self._terms.items() if i < st.next_term}
                    self._terms_end = st.next_term

            files = {s: dict(f) for s, f in st.files.items()}
            retire: list[int] = []
            for s in list(remove) + [fd.source for fd in add]:
                if s in files:
                    retire.append(int(files.pop(s)["gen"]))
            ids, next_term = self._assign_terms({t for fd in add for c in fd.term_counts for t in c}, st.next_term)
            gen = st.next_gen
            for fd in add:
                self._write_file(fd, gen, ids)
                gen += 1
            if self.lite:  # seal the new rows so Lite indexes them now, not at the first questions
                for key in ("units", "passages"):
                    self._client.flush(self.names[key])
            # The switch: one inserted row. Before it, nothing new is visible; after it, all is.
            self._write_pointer(st.version + 1, {"next_gen": gen, "next_term": next_term, "retired": sorted(set(retire)),
                                                   "info": dict(st.info, dependencies=self.dependencies),
                                                   "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
            self._state_cache = None
            self._delete_gens(sorted(set(retire)))
            self._client.delete(self.names["meta"], filter=f'kind == "pointer" and pk < {_POINTER_BASE + st.version}')

    def _info(self, dims_from: list[FileData]) -> dict:
        dim = next(int(fd.vectors.shape[1]) for fd in dims_from if fd.vectors.ndim == 2 and len(fd.vectors))
        return {"model": self.model, "dim": dim, "key": self.key, "dependencies": self.dependencies, "index": self.index, "format": FORMAT}

    def _write_pointer(self, version: int, data: dict) -> None:
        self._client.insert(self.names["meta"], [{"pk": _POINTER_BASE + version, "gen": 0, "kind": "pointer", "source": "",
                                                  "data": data, "df": {0: 1.0}}])

    def _sweep(self, st: _State) -> None:
        """Delete rows no pointer shows: those of an update that died before its switch (gen ≥
        next_gen, terms ≥ next_term) and those of generations retired by the last update."""
        garbage = f"gen >= {st.next_gen}" + (f" or gen in {_int_list(st.retired)}" if st.retired else "")
        for key in ("units", "passages"):
            self._client.delete(self.names[key], filter=garbage)
        self._client.delete(self.names["meta"], filter=f'kind == "file" and ({garbage})')
        self._client.delete(self.names["terms"], filter=f"pk >= {st.next_term}")

    def _delete_gens(self, gens: list[int]) -> None:
        if not gens:
            return
        expr = f"gen in {_int_list(gens)}"
        for key in ("units", "passages"):
            self._client.delete(self.names[key], filter=expr)
        self._client.delete(self.names["meta"], filter=f'kind == "file" and {expr}')

    def _sync_terms(self, below: int) -> None:
        """Read the vocabulary chunks this process has not seen yet (ids < below: committed)."""
        with self._terms_lock:
            self._sync_terms_locked(below)

    def _sync_terms_locked(self, below: int) -> None:
        if self._terms_end >= below:
            return
        rows = self._client.query(self.names["terms"], filter=f"pk >= {self._terms_end} and pk < {below}",
                                  output_fields=["pk", "count", "terms"])
        for r in sorted(rows, key=lambda r: int(r["pk"])):
            first, words = int(r["pk"]), r["terms"].split("\n")
            if first != self._terms_end or len(words) != int(r["count"]):
                raise StoreError(f"Milvus collection {self.prefix}: the BM25 vocabulary has a gap at id {self._terms_end}; rebuild it")
            self._terms.update(zip(words, range(first, first + len(words))))
            self._terms_end = first + len(words)
        if self._terms_end != below:
            raise StoreError(f"Milvus collection {self.prefix}: the BM25 vocabulary ends at {self._terms_end}, not {below}; rebuild it")

    def _assign_terms(self, tokens: set[str], next_term: int) -> tuple[dict[str, int], int]:
        """Ids for these tokens: known ones from the vocabulary, new ones appended in chunk rows
        (ids [pk, pk + count) per row), visible to readers once the pointer's next_term passes them."""
        with self._terms_lock:
            return self._assign_terms_locked(tokens, next_term)

    def _assign_terms_locked(self, tokens: set[str], next_term: int) -> tuple[dict[str, int], int]:
        self._sync_terms_locked(next_term)
        new = sorted(t for t in tokens if t not in self._terms)
        rows, chunk, size = [], [], 0
        for t in new + [None]:
            if t is not None:
                if not t or "\n" in t or len(t.encode()) > 1024:
                    raise InvalidArgumentError(f"cannot index the token {t[:40]!r} (empty, a line break, or over 1 KB)")
                if size + len(t.encode()) + 1 <= 60000:
                    chunk.append(t)
                    size += len(t.encode()) + 1
                    continue
            if chunk:
                rows.append({"pk": next_term, "gen": 0, "count": len(chunk), "terms": "\n".join(chunk), "dummy": [0.0, 0.0]})
                self._terms.update(zip(chunk, range(next_term, next_term + len(chunk))))
                next_term += len(chunk)
            chunk, size = ([t], len(t.encode()) + 1) if t is not None else ([], 0)
        for r in rows:
            self._client.insert(self.names["terms"], [r])
        self._terms_end = next_term
        return {t: self._terms[t] for t in tokens}, next_term

    def _write_file(self, fd: FileData, gen: int, ids: dict[str, int]) -> None:
        c, base = self._client, gen << 32
        ref = _file_mean(fd.term_counts)
        units = [{"pk": base + i, "gen": gen, "source": fd.source, "pid": fd.passages[int(o[0])].id, "n": int(o[0]),
                  "sentence": int(o[1]), "vec": v} for i, (o, v) in enumerate(zip(fd.unit_owner.tolist(), np.asarray(fd.vectors, np.float32).tolist()))]
        for i in range(0, len(units), _BATCH):
            c.insert(self.names["units"], units[i : i + _BATCH])
        rows, df = [], Counter()
        dl_sum = 0
        for j, (p, counts) in enumerate(zip(fd.passages, fd.term_counts)):
            dl = sum(counts.values())
            dl_sum += dl
            sparse = {ids[t]: float(_saturation(tf, dl, ref)) for t, tf in counts.items() if tf > 0}
            df.update(ids[t] for t, tf in counts.items() if tf > 0)
            rows.append({"pk": base + j, "gen": gen, "source": fd.source, "pid": p.id, "n": j, "dl": dl,
                         "data": _passage_json(p), "sparse": sparse or {0: 1.0}})
        for i in range(0, len(rows), _BATCH):
            c.insert(self.names["passages"], rows[i : i + _BATCH])
        record = {"sha256": fd.sha256, "passages": len(fd.passages), "units": int(len(fd.unit_owner)), "dl": dl_sum,
                  "ref": ref, "embedding": fd.embedding, "lexical": fd.lexical,
                  "term_pairs": {k: sorted(v) for k, v in sorted(fd.term_pairs.items())},
                  "centroid": centroid(fd.vectors, np.asarray(fd.unit_owner).reshape(-1, 2)[:, 1]).tolist()}
        c.insert(self.names["meta"], [{"pk": _FILE_BASE + gen, "gen": gen, "kind": "file", "source": fd.source,
                                       "data": record, "df": {int(k): float(v) for k, v in df.items()} or {0: 1.0}}])

    # -- the seam: searching ------------------------------------------------------------------------
    def _filter(self, st: _State, sources: Collection[str] | None) -> str:
        expr = st.visible()
        if sources is not None:
            expr += f" and source in {_str_list(sorted(set(sources)))}"
        return expr

    def search_dense(self, qvec: np.ndarray, depth: int, sources: Collection[str] | None = None) -> list[tuple[str, float]]:
        """Passage ids best first; a passage scores by its best unit (itself or a sentence)."""
        st = self._state()
        if depth <= 0 or (sources is not None and not sources) or not st.files:
            return []
        limit = min(depth * 4, _MAX_LIMIT)
        while True:
            hits = self._units(st, qvec, limit, sources)
            best: dict[str, tuple[float, str, int]] = {}
            for h in hits:
                e = h["entity"]
                s = float(h["distance"])
                if e["pid"] not in best or s > best[e["pid"]][0]:
                    best[e["pid"]] = (s, e["source"], int(e["n"]))
            # Passages outside the fetched units score below every fetched unit, so once `depth`
            # passages are seen (or every unit is), the passage ranking is settled.
            if len(best) >= depth or len(hits) < limit or limit >= _MAX_LIMIT:
                break
            limit = min(limit * 4, _MAX_LIMIT)
        ranked = sorted(best.items(), key=lambda kv: (-kv[1][0], kv[1][1], kv[1][2]))[:depth]
        return [(pid, v[0]) for pid, v in ranked]

    def _units(self, st: _State, qvec: np.ndarray, limit: int, sources: Collection[str] | None = None) -> list[dict]:
        """The `limit` units nearest to `qvec` (HNSW/IP): Milvus hits with pid, source and n."""
        q = np.asarray(qvec, dtype=np.float32).reshape(-1).tolist()
        return self._client.search(self.names["units"], data=[q], anns_field="vec", limit=min(limit, _MAX_LIMIT),
                                   filter=self._filter(st, sources), output_fields=["pid", "source", "n"],
                                   search_params=self._dense_params(min(limit, _MAX_LIMIT)))[0]

    def _dense_params(self, limit: int) -> dict:
        spec = (self._state_cache.info.get("index") if self._state_cache else None) or self.index  # as built
        params = dict(spec.get("dense_search") or {})
        if spec["dense"]["index_type"].upper().startswith("HNSW"):
            params["ef"] = max(int(params.get("ef", 0)), min(HNSW_EF_PER_RESULT * limit, max(limit, 32768)))
        return {"metric_type": "IP", "params": params}

    def _query_ids(self, st: _State, tokens: list[str]) -> dict[str, int]:
        self._sync_terms(st.next_term)
        return {t: self._terms[t] for t in tokens if t in self._terms and self._terms[t] < st.next_term}

    def search_lexical(self, tokens: list[str], depth: int, sources: Collection[str] | None = None) -> list[tuple[str, float]]:
        """BM25 (k1 1.5, b 0.75, length normalised per file) with IDF over the WHOLE library,
        filtered by sources; scores equal rag.bm25.LexicalIndex's over the same passages."""
        return self._search_lexical(self._state(), tokens, depth, sources)

    def _search_lexical(self, st: _State, tokens: list[str], depth: int, sources: Collection[str] | None = None,
                        idf_sources: Collection[str] | None = None,
                        weights: Mapping[str, float] | None = None) -> list[tuple[str, float]]:
        """search_lexical on one state; IDF over `idf_sources` (a scope) instead of the library if
        given; `weights` scale tokens as in rag.bm25.LexicalIndex.search."""
        self.last_lexical_candidates = 0
        n_docs, df = st.stats(idf_sources)
        if depth <= 0 or not tokens or n_docs == 0 or (sources is not None and not sources):
            return []
        query = self._lexical_query(st, tokens, n_docs, df, weights)
        if not query:
            return []
        expr = self._filter(st, sources)
        bound = 1.0 + _FLOAT_SLACK
        limit = min(max(2 * depth, depth + 20), _MAX_LIMIT)
        while True:
            hits = self._propose(query, expr, limit)
            scored = []
            for h in hits:
                e = h["entity"]
                s = self._exact(query, e["sparse"], int(e["dl"]), st.ref.get(int(e["gen"]), 1.0))
                if s > 0:
                    scored.append((-s, e["source"], int(e["n"]), e["pid"]))
            scored.sort()
            floor = float(hits[-1]["distance"]) if hits else 0.0
            # Any passage not fetched scores at most bound·floor exactly (see the module docstring).
            if len(hits) < limit or limit >= _MAX_LIMIT or (len(scored) >= depth and -scored[depth - 1][0] > bound * floor):
                break
            limit = min(limit * 4, _MAX_LIMIT)
        self.last_lexical_candidates = len(hits)
        return [(pid, -neg) for neg, _, _, pid in scored[:depth]]

    def _lexical_query(self, st: _State, tokens: list[str], n_docs: int, df: np.ndarray,
                       weights: Mapping[str, float] | None = None) -> dict[int, tuple[float, float]]:
        """The query side of BM25: term id -> (qtf times the token's weight, idf), in the order of
        the question's tokens."""
        qtf = Counter(tokens)
        ids = self._query_ids(st, sorted(qtf))
        query: dict[int, tuple[int, float]] = {}
        for t, c in qtf.items():
            i = ids.get(t)
            if i is None or i >= len(df) or df[i] <= 0:
                continue
            query[i] = (c * (weights.get(t, 1.0) if weights else 1.0), _idf(n_docs, int(df[i])))
        return query

    def _propose(self, query: dict[int, tuple[int, float]], expr: str, limit: int) -> list[dict]:
        """Milvus' sparse inner-product ranking (the stored weights, float32): candidates."""
        data = {i: c * idf for i, (c, idf) in query.items()}
        return self._client.search(self.names["passages"], data=[data], anns_field="sparse", limit=limit, filter=expr,
                                   output_fields=["pid", "source", "n", "dl", "gen", "sparse"],
                                   search_params={"metric_type": "IP", "params": {}})[0]

    @staticmethod
    def _exact(query: dict[int, tuple[int, float]], sparse: dict, dl: int, ref: float) -> float:
        """Exact BM25 of one passage, computed as rag.bm25.LexicalIndex does (float32 per-term
        scores ``idf·tf/(tf + norm)``, times qtf, summed in float32 in the query's order): tf is
        recovered from the stored weight, the norm from the passage's length and its file's mean."""
        norm = K1 * (1.0 - B + B * np.float64(dl) / np.float64(ref))
        score = np.float32(0.0)
        for i, (qtf, idf) in query.items():
            w = sparse.get(i)
            if w is None:
                w = sparse.get(str(i))
            if not w:
                continue
            tf = round(w * norm / (1.0 - w))
            score = np.float32(score + np.float32(qtf) * np.float32(idf * tf / (tf + norm)))
        return float(score)

    # -- the seam: reading passages ---------------------------------------------------------------
    def passages(self, ids: list[str]) -> list[Passage]:
        """The passages of these ids, in this order (text, offsets, lines, sections from Milvus)."""
        if not ids:
            return []
        return self._passages(self._state(), ids)

    def _passages(self, st: _State, ids: list[str]) -> list[Passage]:
        rows = self._client.query(self.names["passages"], filter=f"pid in {_str_list(sorted(set(ids)))} and {st.visible()}",
                                  output_fields=["pid", "data"])
        by_id = {r["pid"]: _passage_from(r["data"]) for r in rows}
        missing = [i for i in ids if i not in by_id]
        if missing:
            raise IndexMissingError(f"passage {missing[0]} is not in the Milvus store (removed by an update?); ask again")
        return [by_id[i] for i in ids]

    def unit_vectors(self, passage_id: str) -> tuple[np.ndarray, np.ndarray]:
        """(sentence numbers, their vectors) of one passage, for ranking a hit's sentences."""
        return self._unit_vectors(self._state(), passage_id)

    def _unit_vectors(self, st: _State, passage_id: str) -> tuple[np.ndarray, np.ndarray]:
        rows = self._client.query(self.names["units"], filter=f"pid == {escape(passage_id)} and sentence >= 0 and {st.visible()}",
                                  output_fields=["sentence", "vec"])
        rows.sort(key=lambda r: int(r["sentence"]))
        dim = int(st.info["dim"])
        sent = np.array([int(r["sentence"]) for r in rows], dtype=np.int32)
        vecs = np.array([r["vec"] for r in rows], dtype=np.float32).reshape(len(rows), dim)
        return sent, vecs

    def known_terms(self, tokens: Iterable[str]) -> set[str]:
        """The tokens that occur in the library (for bridge terms: what the FAISS path reads from
        `index.lexical.vocab`)."""
        st = self._state()
        ids = self._query_ids(st, sorted(set(tokens)))
        return {t for t, i in ids.items() if i < len(st.df) and st.df[i] > 0}

    def postings(self, token: str, sources: Collection[str] | None = None) -> list[str]:
        """Ids of the passages containing `token` (what the FAISS path reads from
        `index.lexical.postings`), in (source, passage number) order."""
        st = self._state()
        i = self._query_ids(st, [token]).get(token)
        if i is None or i >= len(st.df) or st.df[i] <= 0:
            return []
        hits = self._client.search(self.names["passages"], data=[{i: 1.0}], anns_field="sparse", limit=min(int(st.df[i]), _MAX_LIMIT),
                                   filter=self._filter(st, sources), output_fields=["pid", "source", "n"],
                                   search_params={"metric_type": "IP", "params": {}})[0]
        keyed = sorted((h["entity"]["source"], int(h["entity"]["n"]), h["entity"]["pid"]) for h in hits if float(h["distance"]) > 0)
        return [pid for _, _, pid in keyed]

    def term_pairs(self) -> dict[str, set[str]]:
        """The library's bracketed English -> Chinese term pairs (for query expansion)."""
        out: dict[str, set[str]] = {}
        for f in self._state().files.values():
            for k, v in f.get("term_pairs", {}).items():
                out.setdefault(k, set()).update(v)
        return out

    def file_data(self, source: str, terms: bool = True) -> FileData:
        """A stored file's data as it was applied (term counts recovered exactly from the weights;
        left empty with terms=False, when the caller is about to re-count them)."""
        st = self._state()
        f = st.files.get(source)
        if f is None:
            raise IndexMissingError(f"{source} is not in the Milvus store")
        gen = int(f["gen"])
        prows = sorted(self._client.query(self.names["passages"], filter=f"gen == {gen}", output_fields=["n", "dl", "data", "sparse"]),
                       key=lambda r: int(r["n"]))
        urows = sorted(self._client.query(self.names["units"], filter=f"gen == {gen}", output_fields=["pk", "n", "sentence", "vec"]),
                       key=lambda r: int(r["pk"]))
        self._sync_terms(st.next_term)
        names = {i: t for t, i in self._terms.items() if i < st.next_term} if terms else {}
        ref = float(f["ref"])
        counts: list[dict[str, int]] = []
        for r in prows if terms else ():
            k_ref = K1 * (1.0 - B + B * int(r["dl"]) / ref)
            counts.append({names[int(i)]: round(w * k_ref / (1.0 - w)) for i, w in r["sparse"].items() if int(i) > 0})
        dim = int(st.info["dim"])
        return FileData(source, f["sha256"], [_passage_from(r["data"]) for r in prows],
                        np.array([[int(r["n"]), int(r["sentence"])] for r in urows], dtype=np.int32).reshape(-1, 2),
                        np.array([r["vec"] for r in urows], dtype=np.float32).reshape(-1, dim), counts,
                        {k: list(v) for k, v in f.get("term_pairs", {}).items()}, f.get("embedding", ""), f.get("lexical", ""))


def _check_file(fd: FileData) -> None:
    units = np.asarray(fd.unit_owner)
    if len(fd.term_counts) != len(fd.passages):
        raise InvalidArgumentError(f"{fd.source}: {len(fd.term_counts)} term counts for {len(fd.passages)} passages")
    if units.ndim != 2 or units.shape[1] != 2 or len(units) != len(fd.vectors):
        raise InvalidArgumentError(f"{fd.source}: unit_owner must be (units, 2) with one row per vector")
    if len(units) and (units[:, 0].min() < 0 or units[:, 0].max() >= len(fd.passages)):
        raise InvalidArgumentError(f"{fd.source}: a unit names a passage the file does not have")


def _connect(uri: str, token: str, timeout: float):
    """A MilvusClient, or a one-line StoreError saying what to do."""
    from pymilvus import MilvusClient

    lite = is_lite(uri)
    if lite:
        path = Path(uri).expanduser()
        if path.suffix != ".db":
            raise StoreError(f"Milvus Lite path {uri!r} must end in .db (e.g. indexes/<model>/milvus.db); "
                             "a server URI starts with http:// or https://")
        path.parent.mkdir(parents=True, exist_ok=True)
        uri = str(path.resolve())
    import logging

    quiet = logging.getLogger("milvus_lite.server_manager")  # it logs a traceback when Lite cannot start:
    level = quiet.level  # the user gets our one line instead
    quiet.setLevel(logging.CRITICAL)
    try:
        client = MilvusClient(uri=uri, token=token, timeout=timeout)
        client.list_collections()
        return client
    except Exception as exc:
        if lite:
            if _lite_locked(Path(uri)):
                raise StoreError(f"Milvus Lite at {uri} is open in another process (DataDirLockedError); stop that process "
                                 "(e.g. its rag serve), or serve several processes from a Milvus server (RAG_MILVUS_URI=http://host:19530)") from None
            raise StoreError(f"cannot open Milvus Lite at {uri} ({_one_line(exc)})") from None
        raise StoreError(f"Milvus at {uri} does not answer ({_one_line(exc)}); start the server or fix RAG_MILVUS_URI"
                         " (and RAG_MILVUS_TOKEN if it needs one)") from None
    finally:
        quiet.setLevel(level)


def _lite_locked(path: Path) -> bool:
    """Whether another process holds Milvus Lite's lock on this data folder."""
    lock = path / "LOCK"
    if not lock.exists():
        return False
    import fcntl

    fd = os.open(lock, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


# ------------------------------------------------------------------------------------------------
# What retrieval reads from an index, served by Milvus


#: How many of each search's best passages the first passage read of a question brings along.
PREFETCH = 12
#: A scope (`--doc`) of at most this many units is searched exactly on the client, as the FAISS
#: path searches every scope (and any index below 20k vectors: rag.store.faiss.choose_index_type).
EXACT_SCOPE_UNITS = 20_000


class MilvusIndex:
    """What rag.retrieve, rag.assistant and rag.server read from an index (as the FAISS path's
    `rag.store.faiss.Index`), served by a MilvusStore: one pointer version of the library, or a
    scope (`--doc`) of it. No local file is read: passages (text, offsets, lines, section paths),
    vectors, the BM25 vocabulary and statistics and the term pairs all come from Milvus.

    Positions number the passages as the FAISS index does (files by source, passages in order),
    so rankings, ties and scores are the FAISS path's: dense search asks for as many units as
    FAISS does and keeps each passage's best; BM25 is exact (see the module docstring); a scope
    has its own IDF (its files' document frequencies) while length stays normalised per file,
    as `rag.scope.scoped_index` builds it. Passages are read on demand and kept.
    """

    def __init__(self, store: MilvusStore, sources: Collection[str] | None = None, state: _State | None = None) -> None:
        st = state or _guard(store, lambda: store._state())
        self.store = store
        self.state = st
        self.version = st.version
        chosen = sorted(st.files) if sources is None else sorted(s for s in set(sources) if s in st.files)
        self.sources = None if sources is None else frozenset(chosen)
        self.ranges: dict[str, tuple[int, int, int, int]] = {}
        p = u = 0
        for s in chosen:
            f = st.files[s]
            self.ranges[s] = (p, p + int(f["passages"]), u, u + int(f["units"]))
            p += int(f["passages"])
            u += int(f["units"])
        self._order = chosen
        self._starts = np.array([self.ranges[s][0] for s in chosen] + [p], dtype=np.int64)
        self.n_docs, self._df = st.stats(self.sources)
        self.n_units = u
        pairs: dict[str, set[str]] = {}
        for s in chosen:
            for k, v in st.files[s].get("term_pairs", {}).items():
                pairs.setdefault(k, set()).update(v)
        self.term_pairs = pairs
        self.passages = _Passages(self)
        self.lexical = _Lexical(self)
        from .faiss import Manifest

        kind = str(st.info.get("index", {}).get("dense", {}).get("index_type", "HNSW"))
        self.manifest = Manifest(
            format=FORMAT, model=st.info.get("model", store.model), dim=int(st.info.get("dim", 0)), passages=p, units=u,
            corpus={s: st.files[s]["sha256"] for s in chosen}, dependencies=dict(st.info.get("dependencies") or {}),
            files={s: {"passages": int(st.files[s]["passages"]), "units": int(st.files[s]["units"]),
                       "embedding_digest": st.files[s].get("embedding", ""), "lexical_digest": st.files[s].get("lexical", "")}
                   for s in chosen},
            checksums={}, index_type=f"milvus {kind.lower()}", build_seconds=0.0, created=st.created, summary="",
        )
        self.path = Path(f"{store.prefix}@v{st.version}")  # names the version (healthz, scope cache keys)
        self._filter_sources = None if sources is None else chosen
        self._units_cache = None
        self._file_units: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # `dense_scores_in`
        # The best candidates of this thread's last searches: the first passage a question reads
        # brings them (and their sentence vectors) in one query each, not one query per hit.
        self._pending = threading.local()
        self._sentences: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    # -- positions <-> passage ids ----------------------------------------------------------------
    def position(self, pid: str) -> int:
        """The position of a passage id ("corpus/x.md#12")."""
        return position_in(self.ranges, pid)

    def pid(self, pos: int) -> str:
        i = int(np.searchsorted(self._starts, pos, side="right")) - 1
        if not 0 <= pos < int(self._starts[-1]) or i < 0:
            raise IndexError(pos)
        source = self._order[i]
        return f"{source}#{pos - self.ranges[source][0] + 1}"

    def current(self) -> bool:
        """Whether this is still the store's newest version (one small query)."""
        ptr = _guard(self.store, self.store._pointer)
        return ptr is not None and ptr[0] == self.version

    def restrict(self, sources: Collection[str]) -> "MilvusIndex":
        """The same version restricted to `sources` (a `--doc` scope): a Milvus filter."""
        return MilvusIndex(self.store, sources, self.state)

    # -- what retrieval reads ---------------------------------------------------------------------
    def dense_scores(self, qvec: np.ndarray, depth: int) -> dict[int, float]:
        """Best unit score per passage among the `depth` nearest units (as the FAISS path)."""
        n = min(depth, self.n_units)
        if n <= 0:
            return {}
        best: dict[int, float] = {}
        if self.sources is not None and self.n_units <= EXACT_SCOPE_UNITS:
            # A scope, like the FAISS path's scoped index, is searched exactly: Milvus' filtered
            # HNSW search is approximate, and a small scope's vectors are cheap to keep.
            positions, flat = self._scope_units()
            sims, rows = flat.search(np.asarray(qvec, dtype=np.float32).reshape(1, -1), n)
            pairs = ((int(positions[r]), float(x)) for x, r in zip(sims[0], rows[0]) if r >= 0)
        else:
            hits = _guard(self.store, lambda: self.store._units(self.state, qvec, n, self._filter_sources))
            pairs = ((self.position(h["entity"]["pid"]), float(np.float32(h["distance"]))) for h in hits)
        for pos, sim in pairs:
            if sim > best.get(pos, -2.0):
                best[pos] = sim
        self._note(sorted(best, key=lambda p: (-best[p], p)))
        return best

    def _note(self, positions: list[int]) -> None:
        pending = getattr(self._pending, "positions", None)
        if pending is None:
            pending = self._pending.positions = []
        pending.extend(positions[:PREFETCH])
        del pending[: -4 * PREFETCH]

    def _prefetch(self, position: int) -> None:
        """Read this passage and the pending candidates (those not kept yet), with their sentence
        vectors: two queries."""
        pending = getattr(self._pending, "positions", None) or []
        self._pending.positions = []
        pids = list(dict.fromkeys([self.pid(position), *(self.pid(p) for p in pending)]))
        self.passages.fetch(pids)
        want = [p for p in pids if p not in self._sentences]
        if not want:
            return
        st, store = self.state, self.store
        rows = _guard(store, lambda: store._client.query(
            store.names["units"], filter=f"pid in {_str_list(want)} and sentence >= 0 and {st.visible()}",
            output_fields=["pid", "sentence", "vec"]))
        dim = int(st.info["dim"])
        by_pid: dict[str, list] = {p: [] for p in want}
        for r in rows:
            by_pid.setdefault(r["pid"], []).append(r)
        if len(self._sentences) > 50_000:  # bounded: a long-running worker does not keep every vector
            self._sentences.clear()
        for pid, rs in by_pid.items():
            rs.sort(key=lambda r: int(r["sentence"]))
            self._sentences[pid] = (np.array([int(r["sentence"]) for r in rs], dtype=np.int32),
                                    np.array([r["vec"] for r in rs], dtype=np.float32).reshape(len(rs), dim))

    def _scope_units(self):
        """(passage position per unit, faiss.IndexFlatIP over the units) of the scope, in the FAISS
        path's row order: the same exact search `rag.scope.scoped_index` builds."""
        if self._units_cache is None:
            st, store = self.state, self.store
            rows = []
            for s in self._order:
                rows += _guard(store, lambda s=s: store._client.query(
                    store.names["units"], filter=f"source == {escape(s)} and {st.visible()}", output_fields=["pk", "pid", "vec"]))
            rows.sort(key=lambda r: (self.ranges[r["pid"].rpartition("#")[0]][0], int(r["pk"])))
            dim = int(st.info["dim"])
            import faiss

            flat = faiss.IndexFlatIP(dim)
            if rows:
                flat.add(np.ascontiguousarray(np.array([r["vec"] for r in rows], dtype=np.float32).reshape(len(rows), dim)))
            self._units_cache = (np.array([self.position(r["pid"]) for r in rows], dtype=np.int64), flat)
        return self._units_cache

    def dense_scores_in(self, qvec: np.ndarray, depth: int, source: str) -> dict[int, float]:
        """`dense_scores` over one file's units only, exactly (`rag.store.best_units`, as the
        FAISS path): the file's unit vectors are read once (in the FAISS path's row order) and kept."""
        kept = self._file_units.get(source)
        if kept is None:
            st, store = self.state, self.store
            rows = _guard(store, lambda: store._client.query(
                store.names["units"], filter=f"source == {escape(source)} and {st.visible()}", output_fields=["pk", "pid", "vec"]))
            rows.sort(key=lambda r: int(r["pk"]))
            dim = int(st.info["dim"])
            kept = (np.array([self.position(r["pid"]) for r in rows], dtype=np.int64),
                    np.array([r["vec"] for r in rows], dtype=np.float32).reshape(len(rows), dim))
            if len(self._file_units) > 4096:  # bounded: a long-running worker does not keep every file
                self._file_units.clear()
            self._file_units[source] = kept
        return best_units(kept[1], kept[0], qvec, depth)

    def file_centroids(self) -> dict[str, np.ndarray]:
        """Each file's centroid (`rag.store.centroid`), kept with the file's record when it was
        written; a collection written before records carried it reads the passage vectors once."""
        out: dict[str, np.ndarray] = {}
        st, store = self.state, self.store
        for s in self._order:
            kept = st.files[s].get("centroid")
            if kept is not None:
                out[s] = np.asarray(kept, dtype=np.float32)
                continue
            rows = _guard(store, lambda s=s: store._client.query(
                store.names["units"], filter=f"source == {escape(s)} and sentence < 0 and {st.visible()}",
                output_fields=["vec"]))
            dim = int(st.info["dim"])
            vecs = np.array([r["vec"] for r in rows], dtype=np.float32).reshape(len(rows), dim)
            out[s] = centroid(vecs, np.full(len(rows), -1))
        return out

    def sentence_vectors(self, position: int) -> tuple[np.ndarray, np.ndarray]:
        """(sentence numbers, vectors) of a passage's sentence units, in sentence order."""
        pid = self.pid(position)
        if pid not in self._sentences:
            self._prefetch(position)
        return self._sentences[pid]


class _Passages:
    """The passages of a MilvusIndex by position, read from Milvus on demand and kept."""

    def __init__(self, view: MilvusIndex) -> None:
        self.view = view
        self._kept: dict[str, Passage] = {}

    def __len__(self) -> int:
        return self.view.n_docs

    def __getitem__(self, pos):
        if isinstance(pos, slice):
            return [self[i] for i in range(*pos.indices(len(self)))]
        pos = int(pos)
        if pos < 0:
            pos += len(self)
        pid = self.view.pid(pos)
        p = self._kept.get(pid)
        if p is None:
            self.view._prefetch(pos)
            p = self._kept[pid]
        return p

    def fetch(self, pids: list[str]) -> None:
        """Read these passages (those not kept yet) in one query."""
        missing = sorted({p for p in pids if p not in self._kept})
        if missing:
            view = self.view
            got = _guard(view.store, lambda: view.store._passages(view.state, missing))
            self._kept.update((p.id, p) for p in got)

    def __iter__(self):
        view = self.view
        for s in view._order:
            lo, hi, _, _ = view.ranges[s]
            if any(f"{s}#{n}" not in self._kept for n in range(1, hi - lo + 1)):
                rows = _guard(view.store, lambda: view.store._client.query(
                    view.store.names["passages"], filter=f"source == {escape(s)} and {view.state.visible()}", output_fields=["data"]))
                self._kept.update((p.id, p) for p in (_passage_from(r["data"]) for r in rows))
            for n in range(1, hi - lo + 1):
                yield self._kept[f"{s}#{n}"]


class _Vocabulary:
    """`token in vocab`: whether a token occurs in the view's passages (its df > 0)."""

    def __init__(self, view: MilvusIndex) -> None:
        self.view = view
        _guard(view.store, lambda: view.store._sync_terms(view.state.next_term))

    def __contains__(self, token: object) -> bool:
        i = self.view.store._terms.get(token) if isinstance(token, str) else None
        return i is not None and i < len(self.view._df) and self.view._df[i] > 0


class _Lexical:
    """BM25 of a MilvusIndex: `vocab`, `search` and `postings` as rag.bm25.LexicalIndex."""

    def __init__(self, view: MilvusIndex) -> None:
        self.view = view
        self.vocab = _Vocabulary(view)

    def __len__(self) -> int:
        return self.view.n_docs

    def search(self, tokens: list[str], k: int, weights: Mapping[str, float] | None = None) -> list[tuple[int, float]]:
        v = self.view
        hits = _guard(v.store, lambda: v.store._search_lexical(v.state, tokens, k, v._filter_sources, v.sources, weights))
        out = [(v.position(pid), s) for pid, s in hits]
        v._note([p for p, _ in out])
        return out

    def search_in(self, tokens: list[str], k: int, span: tuple[int, int],
                  weights: Mapping[str, float] | None = None) -> list[tuple[int, float]]:
        """As rag.bm25.LexicalIndex.search_in: one file's passages (positions `span`) with that
        file's own IDF (its document frequencies, as a one-file scope has)."""
        v = self.view
        source = next((s for s, r in v.ranges.items() if (r[0], r[1]) == (int(span[0]), int(span[1]))), None)
        if source is None or k <= 0 or not tokens:
            return []
        hits = _guard(v.store, lambda: v.store._search_lexical(v.state, tokens, k, [source], [source], weights))
        return [(v.position(pid), s) for pid, s in hits]

    def group_weights(self, groups: Iterable[tuple[Sequence[str], Sequence[str]]]) -> dict[str, float]:
        """As rag.bm25.LexicalIndex.group_weights: a group's renderings weigh as one term (the IDF
        of the passages holding any of them); the union is read from the renderings' postings."""
        v = self.view

        def union_df(renderings: Sequence[str]) -> int:
            held = [h for h in (self.postings(t) for t in dict.fromkeys(renderings)) if len(h)]
            return int(np.unique(np.concatenate(held)).size) if held else 0

        def token_df(t: str) -> int:
            i = v.store._terms.get(t)
            return 0 if i is None or i >= len(v._df) else int(v._df[i])

        return synonym_weights(groups, v.n_docs, union_df, token_df)

    def postings(self, token: str) -> np.ndarray:
        v = self.view
        i = v.store._terms.get(token)
        if i is None or i >= len(v._df) or v._df[i] <= 0:
            return np.zeros(0, dtype=np.int32)
        hits = _guard(v.store, lambda: v.store._client.search(
            v.store.names["passages"], data=[{int(i): 1.0}], anns_field="sparse", limit=min(int(v._df[i]), _MAX_LIMIT),
            filter=v.store._filter(v.state, v._filter_sources), output_fields=["pid"],
            search_params={"metric_type": "IP", "params": {}})[0])
        return np.sort(np.array([v.position(h["entity"]["pid"]) for h in hits if float(h["distance"]) > 0], dtype=np.int32))


def _guard(store: MilvusStore, call):
    """Run a Milvus call; a failure of the connection or the server becomes one StoreError line."""
    try:
        return call()
    except (StoreError, IndexMissingError, InvalidArgumentError):
        raise
    except Exception as exc:
        from pymilvus.exceptions import MilvusException

        if isinstance(exc, (MilvusException, ConnectionError, TimeoutError, OSError)) or type(exc).__module__.startswith(("grpc", "pymilvus")):
            raise StoreError(f"Milvus at {store.uri} failed ({_one_line(exc)}); check that it is running (RAG_MILVUS_URI)") from None
        raise
