"""The Milvus store on Milvus Lite: the seam's behaviour a user would notice (same hits and scores as
the FAISS path's exact search and BM25, faithful citations from Milvus alone, atomic updates, safe
scoping, one-line errors). One Lite server per module; each test gets its own collections."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from rag.chunking import ChunkSettings, clean_text, split_passages
from rag.corpus import load_document
from rag.errors import IndexMissingError, StoreError
from rag.bm25 import LexicalIndex
from rag.tokens import tokenize
from rag.store.milvus import MilvusStore, escape, is_lite
from rag.store import FileData

from .conftest import REPORT, HashEncoder

ROOT = Path(__file__).resolve().parent.parent
ENC = HashEncoder()
QUERIES = ["东盟经济合作", "印太经济框架 IPEF", "气候变化 能源", "美国 同盟 体系", "南海 行为准则", "RCEP 贸易", "中国 东盟"]
HOSTILE = 'x"] or gen >= 0 or source in ["\\.md'


def make_file(corpus: Path, name: str, text: str) -> FileData:
    """FileData as the pipeline makes it: the project's chunker, sentence units, tokenizer."""
    path = corpus / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    doc = load_document(path, corpus)
    passages = split_passages(doc, ChunkSettings())
    texts, owner = [], []
    for i, p in enumerate(passages):
        texts.append(clean_text(p.text))
        owner.append((i, -1))
        if len(p.sentences) > 1:
            for j, (s, e) in enumerate(p.sentences):
                texts.append(clean_text(doc.text[s:e]))
                owner.append((i, j))
    vectors = ENC.encode_passages(texts).astype(np.float32)
    counts = [dict(Counter(tokenize(clean_text(p.text)))) for p in passages]
    return FileData(doc.source, doc.sha256, passages, np.array(owner, dtype=np.int32).reshape(-1, 2), vectors, counts,
                    {"ipef": ["印太经济框架"]} if "IPEF" in text else {}, "e1", "l1")


def report_parts(n: int) -> list[str]:
    """The real report's first paragraphs, cut into n files of different lengths."""
    paras = [p for p in REPORT.read_text(encoding="utf-8").split("\n\n") if len(p.strip()) > 40][:60]
    cuts = [0, 6, 20, 30, 45, 60][: n + 1]
    return ["\n\n".join(paras[a:b]) + "\n" for a, b in zip(cuts, cuts[1:])]


@pytest.fixture(scope="module")
def lite(tmp_path_factory) -> str:
    """One Milvus Lite data folder (one in-process server) for the whole module."""
    return str(tmp_path_factory.mktemp("milvus") / "milvus.db")


_names = itertools.count()


@pytest.fixture
def store(lite, tmp_path) -> MilvusStore:
    s = MilvusStore(tmp_path, "hash-bigram-64", {"chunking": "c1"}, uri=lite, collection=f"t{next(_names)}")
    yield s


@pytest.fixture
def corpus(tmp_path) -> Path:
    d = tmp_path / "corpus"
    d.mkdir()
    return d


def lexical_reference(files: list[FileData]) -> tuple[LexicalIndex, list[str]]:
    """The project's BM25 over the same passages, in the FAISS store's order (files by source),
    length normalised per file as the FAISS store does."""
    ordered = [p for fd in sorted(files, key=lambda f: f.source) for p in fd.passages]
    return LexicalIndex.build([clean_text(p.text) for p in ordered], groups=[p.source for p in ordered]), [p.id for p in ordered]


def assert_same_bm25(store: MilvusStore, files: list[FileData], sources=None, min_hits: int = 4) -> None:
    index, ids = lexical_reference(files)
    allowed = None if sources is None else {i for i, pid in enumerate(ids) if pid.rpartition("#")[0] in sources}
    checked = 0
    for q in QUERIES:
        toks = tokenize(q)
        ref = [(ids[i], s) for i, s in index.search(toks, len(ids)) if allowed is None or i in allowed][:10]
        got = store.search_lexical(toks, 10, sources)
        assert [pid for pid, _ in got] == [pid for pid, _ in ref], q
        assert [s for _, s in got] == [s for _, s in ref], q  # bit for bit: ties break alike
        checked += bool(ref)
    assert checked >= min_hits  # the queries do hit the passages


def exact_dense(files: list[FileData], q: np.ndarray, k: int, sources=None) -> list[tuple[str, float]]:
    best: dict[str, float] = {}
    order = {}
    for fd in sorted(files, key=lambda f: f.source):
        if sources is not None and fd.source not in sources:
            continue
        sims = fd.vectors @ q
        for (n, _), s in zip(fd.unit_owner.tolist(), sims.tolist()):
            pid = fd.passages[n].id
            order[pid] = (fd.source, n)
            best[pid] = max(best.get(pid, -9.0), s)
    return sorted(best.items(), key=lambda kv: (-kv[1], order[kv[0]]))[:k]


def count_rows(store: MilvusStore, key: str) -> int:
    return int(store._client.query(store.names[key], filter="", output_fields=["count(*)"])[0]["count(*)"])


# ------------------------------------------------------------------------------------------------


def test_round_trip_and_citations_from_milvus_alone(store, corpus, lite, tmp_path):
    files = [make_file(corpus, f"r{i}.md", t) for i, t in enumerate(report_parts(3))]
    store.apply(files, [])
    assert {s: (r.sha256, r.passages, r.units) for s, r in store.files().items()} == {
        fd.source: (fd.sha256, len(fd.passages), len(fd.unit_owner)) for fd in files}
    for fd in files:
        back = store.file_data(fd.source)
        assert back.passages == fd.passages
        assert back.unit_owner.tolist() == fd.unit_owner.tolist()
        assert np.allclose(back.vectors, fd.vectors, atol=1e-7)
        assert back.term_counts == fd.term_counts
        assert back.term_pairs == fd.term_pairs and (back.embedding, back.lexical) == ("e1", "l1")
    assert store.file_data(files[0].source, terms=False).term_counts == []
    # What retrieval reads besides searches: the vocabulary, a token's passages, the term pairs.
    token = next(iter(files[1].term_counts[0]))
    assert store.known_terms([token, "不在库中的词xyz"]) == {token}
    assert store.postings(token) == [p.id for fd in sorted(files, key=lambda f: f.source)
                                     for p, c in zip(fd.passages, fd.term_counts) if token in c]
    assert store.term_pairs() == ({"ipef": {"印太经济框架"}} if any(f.term_pairs for f in files) else {})
    # A second reader with only the URI (another index folder, nothing local) cites faithfully.
    reader = MilvusStore(tmp_path / "elsewhere", "hash-bigram-64", {"chunking": "c1"}, uri=lite, collection=store.prefix)
    pid, _ = reader.search_lexical(tokenize("亚太"), 1)[0]
    (p,) = reader.passages([pid])
    doc = load_document(corpus / Path(p.source).name, corpus)
    assert doc.text[p.start : p.end] == p.text and doc.line_of(p.start) == p.line_start
    sent, vecs = reader.unit_vectors(p.id)
    fd = next(f for f in files if f.source == p.source)
    n = fd.passages.index(p)
    rows = [i for i, (o, s) in enumerate(fd.unit_owner.tolist()) if o == n and s >= 0]
    assert sent.tolist() == [fd.unit_owner[i, 1] for i in rows]
    assert np.allclose(vecs, fd.vectors[rows])


def test_dense_search_equals_exact_inner_product(store, corpus):
    files = [make_file(corpus, f"r{i}.md", t) for i, t in enumerate(report_parts(3))]
    store.apply(files, [])
    for q in QUERIES:
        qv = ENC.encode_queries([q])[0]
        for sources in (None, {files[1].source}):
            got = store.search_dense(qv, 8, sources)
            ref = exact_dense(files, qv, 8, sources)
            assert [p for p, _ in got] == [p for p, _ in ref]
            assert np.allclose([s for _, s in got], [s for _, s in ref], atol=1e-5)


def test_lexical_equals_project_bm25_including_after_incremental_adds(store, corpus):
    """Files added one by one score exactly as one BM25 built over everything, and adding a file
    rewrites no other file's rows: lengths are normalised per file, so stored weights never drift."""
    parts = report_parts(5)
    files = [make_file(corpus, f"r{i}.md", t) for i, t in enumerate(parts)]
    # One file of very short passages first, then the rest: a library-wide mean would move a lot.
    short = make_file(corpus, "short.md", "\n\n".join(f"第{i}条：东盟经济合作。" for i in range(30)) + "\n")
    store.apply([short], [])
    assert_same_bm25(store, [short], min_hits=1)
    first_rows = store._client.query(store.names["passages"], filter=f"source == {escape(short.source)}", output_fields=["pk", "sparse"])
    for fd in files:
        store.apply([fd], [])
    assert store._client.query(store.names["passages"], filter=f"source == {escape(short.source)}",
                               output_fields=["pk", "sparse"]) == first_rows
    assert_same_bm25(store, [short, *files])
    assert_same_bm25(store, [short, *files], sources={files[0].source, short.source})


def test_add_replace_remove_touch_only_those_files(store, corpus):
    a = make_file(corpus, "a.md", report_parts(2)[0])
    b = make_file(corpus, "b.md", report_parts(2)[1])
    store.apply([a, b], [])
    units_before = count_rows(store, "units")
    a2 = make_file(corpus, "a.md", "新版本：数字经济与人工智能治理成为合作新领域。\n\n第二段：绿色发展。\n")
    store.apply([a2], [])
    assert store.files()[a.source].sha256 == a2.sha256 and store.files()[b.source].sha256 == b.sha256
    assert [p.text for p in store.passages([p.id for p in a2.passages])] == [p.text for p in a2.passages]
    assert_same_bm25(store, [a2, b])
    hits = store.search_lexical(tokenize("人工智能"), 5)
    assert hits and all(pid.startswith(a.source + "#") for pid, _ in hits)
    # The old version's rows are gone, b's are untouched.
    assert count_rows(store, "units") == units_before - len(a.unit_owner) + len(a2.unit_owner)
    store.apply([], [b.source])
    assert list(store.files()) == [a.source]
    assert count_rows(store, "units") == len(a2.unit_owner)
    assert all(pid.startswith(a.source + "#") for pid, _ in store.search_dense(ENC.encode_queries(["东盟"])[0], 10))
    with pytest.raises(IndexMissingError):
        store.passages([b.passages[0].id])


def test_scoping_is_a_safe_filter_even_with_hostile_file_names(store, corpus):
    text = report_parts(2)[0]
    names = ["plain.md", 'quote"d.md', "back\\slash.md", HOSTILE, "中文 报告.md"]
    files = []
    for i, name in enumerate(names):
        fd = make_file(corpus, f"f{i}.md", text)
        # Same text under another source name (a name need not be a valid path here).
        fd.source = name
        fd.passages = [type(p)(**{**p.__dict__, "id": f"{name}#{j + 1}", "source": name}) for j, p in enumerate(fd.passages)]
        files.append(fd)
    store.apply(files, [])
    q = tokenize("亚太 命运共同体")
    for name in names:
        hits = store.search_lexical(q, 50, sources=[name])
        assert hits and {pid.rpartition("#")[0] for pid, _ in hits} == {name}
        dense = store.search_dense(ENC.encode_queries(["亚太"])[0], 50, sources=[name])
        assert dense and {pid.rpartition("#")[0] for pid, _ in dense} == {name}
    # A name that is not stored matches nothing (no injection widens the filter).
    assert store.search_lexical(q, 50, sources=['nothing"] or source != ["']) == []
    assert store.search_lexical(q, 50, sources=[]) == []
    assert store.passages([f"{HOSTILE}#1"])[0].source == HOSTILE
    assert escape('a"b\\c\nd') == '"a\\"b\\\\c\\nd"'


CHILD = textwrap.dedent("""
    import os, sys, time
    sys.path.insert(0, {root!r})
    import numpy as np
    from rag.store import milvus as m
    from tests.test_store_milvus import make_file, report_parts
    from pathlib import Path
    corpus = Path({corpus!r})
    store = m.MilvusStore({corpus!r}, "hash-bigram-64", {{"chunking": "c1"}}, uri={uri!r}, collection="kill")
    step = {step!r}
    insert = store._client.insert
    calls = [0]
    def slow_insert(name, rows, **kw):
        if step == "mid-rows" and name.endswith("_units"):
            calls[0] += 1
            if calls[0] == 2:  # some of the new file's rows are written, not all
                print("ready", flush=True); time.sleep(600)
        if step == "before-switch" and name.endswith("_meta") and rows[0]["kind"] == "pointer":
            print("ready", flush=True); time.sleep(600)
        return insert(name, rows, **kw)
    store._client.insert = slow_insert
    m._BATCH = 20
    big = make_file(corpus, "a.md", report_parts(3)[2] * 3)   # replaces a.md
    new = make_file(corpus, "c.md", report_parts(3)[1])        # a new file
    store.apply([big, new], [big.source.replace("a.md", "b.md")])  # and drops b.md
    print("finished", flush=True)
""")


def kill_child_mid_update(lite: str, corpus: Path, step: str) -> None:
    """Run an update in another process and kill -9 it at `step`."""
    code = CHILD.format(root=str(ROOT), corpus=str(corpus), uri=lite, step=step)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    line = proc.stdout.readline().strip()
    assert line == "ready", proc.stderr.read()[-2000:]
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=120)


def _release(uri: str) -> None:
    """Stop this process' Milvus Lite server for `uri` (frees the folder for another process)."""
    from milvus_lite.server_manager import server_manager_instance

    server_manager_instance.release_server(uri)


@pytest.mark.parametrize("step", ["mid-rows", "before-switch"])
def test_kill_9_mid_update_leaves_the_previous_library_answerable(tmp_path, corpus, step):
    uri = str(tmp_path / "kill" / "milvus.db")
    a = make_file(corpus, "a.md", report_parts(2)[0])
    b = make_file(corpus, "b.md", report_parts(2)[1])
    base = MilvusStore(corpus, "hash-bigram-64", {"chunking": "c1"}, uri=uri, collection="kill")
    base.apply([a, b], [])
    base.close()
    _release(uri)
    kill_child_mid_update(uri, corpus, step)  # killed with -9 inside apply
    store = MilvusStore(corpus, "hash-bigram-64", {"chunking": "c1"}, uri=uri, collection="kill")
    try:
        assert {s: r.sha256 for s, r in store.files().items()} == {a.source: a.sha256, b.source: b.sha256}
        assert_same_bm25(store, [a, b])  # the half-written a.md and c.md are invisible
        for q in QUERIES[:3]:
            qv = ENC.encode_queries([q])[0]
            got = store.search_dense(qv, 10)
            assert [p for p, _ in got] == [p for p, _ in exact_dense([a, b], qv, 10)]
        assert [p.text for p in store.passages([p.id for p in a.passages])] == [p.text for p in a.passages]
        # The next update sweeps the dead writer's rows and works.
        c = make_file(corpus, "c.md", report_parts(3)[1])
        store.apply([c], [])
        assert set(store.files()) == {a.source, b.source, c.source}
        assert count_rows(store, "units") == sum(len(f.unit_owner) for f in (a, b, c))
        assert_same_bm25(store, [a, b, c])
    finally:
        store.close()
        _release(uri)


def test_a_truncated_lite_index_file_is_rebuilt(tmp_path, corpus):
    """What a kill -9 while Milvus Lite writes an index file leaves (it writes in place): a
    truncated file. The store rebuilds the derived index files instead of failing to load."""
    uri = str(tmp_path / "trunc" / "milvus.db")
    files = [make_file(corpus, f"r{i}.md", t) for i, t in enumerate(report_parts(2))]
    s = MilvusStore(corpus, "hash-bigram-64", {"chunking": "c1"}, uri=uri, collection="trunc")
    s.apply(files, [])
    before = s.search_lexical(tokenize("东盟经济合作"), 10)
    s.close()
    _release(uri)
    damaged = sorted(f for f in Path(uri).glob("collections/trunc_passages/partitions/*/indexes/*") if f.suffix in (".idx", ".sidx"))
    assert damaged
    for f in damaged:
        f.write_bytes(f.read_bytes()[:6])
    s = MilvusStore(corpus, "hash-bigram-64", {"chunking": "c1"}, uri=uri, collection="trunc")
    try:
        assert s.search_lexical(tokenize("东盟经济合作"), 10) == before
        assert_same_bm25(s, files)
    finally:
        s.close()
        _release(uri)


def test_errors_users_can_cause_are_one_line_with_what_to_do(lite, tmp_path, corpus):
    t0 = time.perf_counter()
    with pytest.raises(StoreError, match="does not answer.*RAG_MILVUS_URI"):
        MilvusStore(tmp_path, "m", uri="http://127.0.0.1:9", timeout=2)
    assert time.perf_counter() - t0 < 60  # it gives up rather than hanging
    # An index type Milvus Lite does not support: refused before anything is written.
    path = tmp_path / "never" / "milvus.db"
    for kind in ("IVF_PQ", "DISKANN", "SCANN"):
        with pytest.raises(StoreError, match=f"Milvus Lite does not support the dense index {kind}; use one of"):
            MilvusStore(tmp_path, "m", uri=str(path), index={"dense": {"index_type": kind, "metric_type": "IP"},
                                                             "sparse": {"index_type": "SPARSE_INVERTED_INDEX", "metric_type": "IP"}})
    assert not path.parent.exists()
    with pytest.raises(StoreError, match="must end in .db"):
        MilvusStore(tmp_path, "m", uri=str(tmp_path / "milvus"))
    # A collection built by another model.
    one = MilvusStore(tmp_path, "model-one", {}, uri=lite, collection="shared")
    one.apply([make_file(corpus, "a.md", report_parts(1)[0])], [])
    other = MilvusStore(tmp_path, "model-two", {}, uri=lite, collection="shared")
    with pytest.raises(StoreError, match="built with model 'model-one', not 'model-two'; rebuild it"):
        other.search_lexical(["亚太"], 5)
    # A Lite path another process holds.
    held = str(tmp_path / "held" / "milvus.db")
    code = f"import sys; sys.path.insert(0, {str(ROOT)!r}); from pymilvus import MilvusClient; MilvusClient({held!r}); print('ready', flush=True); import time; time.sleep(600)"
    (tmp_path / "held").mkdir()
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        with pytest.raises(StoreError, match="open in another process.*Milvus server") as e:
            MilvusStore(tmp_path, "m", uri=held)
        assert "\n" not in str(e.value)
    finally:
        proc.kill()
        proc.wait()


def test_empty_store_and_uri_kinds(lite, tmp_path):
    s = MilvusStore(tmp_path, "m", {}, uri=lite, collection="empty")
    assert s.files() == {}
    with pytest.raises(IndexMissingError, match="rag index --store milvus"):
        s.search_dense(np.zeros(64, np.float32), 5)
    assert is_lite("indexes/m/milvus.db") and not is_lite("http://host:19530") and not is_lite("https://x.io")


def test_gold_questions_same_top10_as_the_faiss_path(store, report_corpus):
    """The real report, the dev gold questions: dense and BM25 top-10 from Milvus equal the FAISS
    path's (faiss.IndexFlatIP over the same units, rag.lexical.LexicalIndex over the same passages)."""
    import json

    import faiss

    fd = make_file(report_corpus, REPORT.name, REPORT.read_text(encoding="utf-8"))
    store.apply([fd], [])
    flat = faiss.IndexFlatIP(fd.vectors.shape[1])
    flat.add(fd.vectors)
    index, ids = lexical_reference([fd])
    gold = ROOT / "eval" / "gold_dev.jsonl"
    questions = [json.loads(line)["question"] for line in gold.read_text(encoding="utf-8").splitlines() if line.strip()][:40]
    same_dense = same_lexical = 0
    for q in questions:
        qv = ENC.encode_queries([q])[0]
        sims, rows = flat.search(qv.reshape(1, -1), 40)
        best: dict[int, float] = {}
        for s, r in zip(sims[0].tolist(), rows[0].tolist()):
            n = int(fd.unit_owner[r, 0])
            best[n] = max(best.get(n, -9.0), s)
        ref_dense = [fd.passages[n].id for n in sorted(best, key=lambda n: (-best[n], n))[:10]]
        same_dense += [p for p, _ in store.search_dense(qv, 10)] == ref_dense
        toks = tokenize(q)
        same_lexical += [p for p, _ in store.search_lexical(toks, 10)] == [ids[i] for i, _ in index.search(toks, 10)]
    assert len(questions) == 40
    assert same_lexical == len(questions)
    assert same_dense >= 0.98 * len(questions)
