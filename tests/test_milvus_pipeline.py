"""The whole pipeline on the Milvus store (Milvus Lite): `--store milvus` / RAG_STORE give the same
answers as the FAISS store through the Python API, the CLI and the HTTP API; a worker with only the
Milvus URI (no index folder) answers with the same citations; a `rag index --store milvus` killed
with -9 mid-update leaves the previous library answering as before; errors users can cause are one
line. The gold-set comparison with the real model is `test_gold_sets_same_answers_on_both_stores`.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from rag import config
from rag.assistant import Assistant
from rag.errors import InvalidArgumentError, StoreError

from .conftest import REPORT, ROOT, HashEncoder

GOLD = [ROOT / "eval" / "gold_dev.jsonl", ROOT / "eval" / "gold_lockbox.jsonl"]
#: A second document, so that `--doc` scopes differ from the whole corpus.
OTHER = textwrap.dedent("""\
    # 东南亚数字经济报告

    ## 一、概况

    东盟国家的数字经济快速发展，电子商务与移动支付普及。印太经济框架（IPEF）提出数字贸易规则。

    ## 二、合作

    中国与东盟在区域全面经济伙伴关系协定（RCEP）框架下深化合作，气候变化与能源转型成为新议题。
    美国强调同盟体系，南海行为准则磋商继续推进。
    """)


def dev_questions(n: int) -> list[str]:
    lines = GOLD[0].read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["question"] for line in lines if line.strip()][:n]


class Score(float):
    """A score that equals another within float32 rounding (Milvus and FAISS sum inner products
    in different orders: the last bit may differ)."""

    def __eq__(self, other):
        return abs(float(self) - float(other)) <= 1e-6

    __hash__ = float.__hash__


def signature(answer) -> list[tuple]:
    """What a user sees of an answer: each hit's citation, score and highlight, and not-found."""
    return [(h.passage.id, h.passage.source, h.passage.section, h.passage.start, h.passage.end, h.passage.line_start,
             h.passage.line_end, h.passage.text, Score(h.score), h.sentences) for h in answer.hits] + [answer.not_found]


@pytest.fixture
def two_docs(tmp_path) -> Path:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    shutil.copy(REPORT, corpus / REPORT.name)
    (corpus / "sea-digital.md").write_text(OTHER, encoding="utf-8")
    return corpus


def hash_assistant(corpus: Path, index_dir: Path, **kw) -> Assistant:
    return Assistant(corpus_dir=corpus, index_dir=index_dir, encoder=HashEncoder(), on_notice=lambda m: None, **kw)


def test_store_setting_is_checked_in_one_place(monkeypatch, tmp_path):
    assert config.check_store("milvus") == "milvus" and config.Settings().store == "faiss"
    monkeypatch.setenv("RAG_STORE", "milvus")
    assert config.Settings().store == "milvus"
    assert hash_assistant(tmp_path, tmp_path).store == "milvus"
    monkeypatch.setenv("RAG_STORE", "Milvus")
    with pytest.raises(InvalidArgumentError, match="unknown store 'Milvus'; use one of: faiss, milvus"):
        config.Settings()
    with pytest.raises(InvalidArgumentError, match="unknown store"):
        hash_assistant(tmp_path, tmp_path, store="elastic")
    assert config.milvus_uri(tmp_path, "m") == str(tmp_path / "m" / "milvus.db")
    monkeypatch.setenv("RAG_MILVUS_URI", "http://milvus:19530")
    assert config.milvus_uri(tmp_path, "m") == "http://milvus:19530"
    monkeypatch.setenv("RAG_MILVUS_TIMEOUT", "soon")
    with pytest.raises(InvalidArgumentError, match="RAG_MILVUS_TIMEOUT"):
        config.milvus_timeout()


def test_same_answers_on_both_stores_and_from_a_worker_with_only_the_uri(two_docs, tmp_path):
    faiss_a = hash_assistant(two_docs, tmp_path / "idx")
    faiss_a.index()
    uri = str(tmp_path / "lite" / "milvus.db")
    milvus_a = hash_assistant(two_docs, tmp_path / "idx", store="milvus", milvus_uri=uri)
    milvus_a.index()
    # The FAISS index of the same folder gave its passages and vectors: nothing embedded again.
    assert milvus_a.last_update.copied == 2 and milvus_a.last_update.embedded_units == 0
    # A worker: another (empty) index folder, only the URI.
    worker = hash_assistant(two_docs, tmp_path / "nothing-here", store="milvus", milvus_uri=uri, auto_build=False)
    # The last two name a year only the report mentions: the other document's passages rank lower (undated_last).
    questions = dev_questions(12) + ["What does IPEF stand for?", "DOC是哪份文件的缩写？", "Jakarta's maritime vision",
                                     "What did ASEAN and China agree on digital trade in 2022?", "2022年东盟数字经济合作有哪些进展？"]
    compared = 0
    for mode in config.MODES:
        for q in questions:
            want = signature(faiss_a.ask(q, k=10, mode=mode))
            assert signature(milvus_a.ask(q, k=10, mode=mode)) == want, (mode, q)
            assert signature(worker.ask(q, k=10, mode=mode)) == want, (mode, q)
            compared += len(want) > 1
            # A scope is a Milvus filter with the scope's own BM25 statistics, as the FAISS scope.
            for doc in ("sea-digital.md", REPORT.name):
                assert signature(milvus_a.ask(q, k=5, mode=mode, docs=[doc])) == signature(faiss_a.ask(q, k=5, mode=mode, docs=[doc])), (mode, q, doc)
    assert compared >= 0.9 * len(questions) * len(config.MODES)
    # The measurement variant with synonym-group BM25 weights (rag.evaluate "hybrid-synonyms") too.
    for q in ("What does IPEF stand for?", "How does the report see security in the region?", "Jakarta's maritime vision"):
        want = signature(faiss_a._answer(q, 10, "hybrid", synonyms=True))
        assert signature(milvus_a._answer(q, 10, "hybrid", synonyms=True)) == want, q
    assert not (tmp_path / "nothing-here").exists()
    # What else reads the index: the documents' states, `show`, the passage list.
    assert [s.to_dict() for s in worker.documents_status()] == [s.to_dict() for s in faiss_a.documents_status()]
    pid = faiss_a.passages()[7].id
    assert worker.show(pid) == faiss_a.show(pid)
    assert list(worker.passages()) == list(faiss_a.passages())


def writer_and_worker(tmp_path: Path) -> tuple[Path, Assistant, Assistant]:
    """A corpus folder holding the report, a writer that has indexed it into Milvus Lite, and a
    worker on the same collection (its own empty index folder, no auto-build)."""
    uri = str(tmp_path / "lite" / "milvus.db")
    corpus = tmp_path / "shared" / "corpus"
    corpus.mkdir(parents=True)
    shutil.copy(REPORT, corpus / REPORT.name)
    writer = hash_assistant(corpus, tmp_path / "w", store="milvus", milvus_uri=uri)
    writer.index()
    return corpus, writer, hash_assistant(corpus, tmp_path / "r", store="milvus", milvus_uri=uri, auto_build=False)


def test_an_update_by_another_writer_is_seen_at_the_next_question(tmp_path):
    corpus, writer, worker = writer_and_worker(tmp_path)
    assert all(h.passage.source != "corpus/sea-digital.md" for h in worker.ask("东南亚数字经济 移动支付", k=10, mode="bm25").hits)
    (corpus / "sea-digital.md").write_text(OTHER, encoding="utf-8")
    writer.build()
    answer = worker.ask("东南亚数字经济 移动支付", k=3, mode="bm25")
    assert answer.hits[0].passage.source == "corpus/sea-digital.md"
    assert answer.titles["corpus/sea-digital.md"] == "东南亚数字经济报告"


def test_a_running_server_serves_passages_and_health_of_the_newest_version(tmp_path):
    """`rag serve` over Milvus: after another writer's `rag index`, GET /passages/… and /healthz
    read the new version, as POST /ask does (not the passage list of the version it started on)."""
    from fastapi.testclient import TestClient

    from rag.server import create_app

    corpus, writer, worker = writer_and_worker(tmp_path)
    client = TestClient(create_app(worker, workers=1, warm_up=False, api_key=""))
    url = "/passages/corpus/sea-digital.md%231"
    assert client.get(url).status_code == 404
    first = client.get("/healthz").json()
    # A new file: its passage is served without any question asked in between.
    (corpus / "sea-digital.md").write_text(OTHER, encoding="utf-8")
    writer.build()
    shown = client.get(url)
    assert shown.status_code == 200, shown.text
    assert shown.json()["text"] == writer.passage("corpus/sea-digital.md#1").text
    assert "移动支付" in shown.json()["text"]
    second = client.get("/healthz").json()
    assert second["index_version"] != first["index_version"] and "corpus/sea-digital.md" in second["corpus"]
    # A changed file: the new text, with the new file's context, the same as /ask cites.
    (corpus / "sea-digital.md").write_text(OTHER.replace("移动支付", "数字支付"), encoding="utf-8")
    writer.build()
    pid = next(p.id for p in writer.passages() if "数字支付" in p.text)
    shown = client.get("/passages/" + pid.replace("#", "%23")).json()
    assert "数字支付" in shown["text"] and "移动支付" not in shown["text"] + shown["before"] + shown["after"]
    asked = client.post("/ask", json={"question": "数字支付", "k": 3, "mode": "bm25"}).json()
    assert any(p["id"] == pid and p["text"] == shown["text"] for p in asked["passages"])


# -- the gold sets with the real model ---------------------------------------------------------------
@pytest.mark.slow
def test_gold_sets_same_answers_on_both_stores(real_assistant, tmp_path):
    """Dev + lockbox, hybrid, k=10 through the whole pipeline: the Milvus Lite store (filled from the
    FAISS index of the same folder: same passages and vectors) gives the same top-10 for >= 98 % of
    questions and the same R@5 / MRR@10 per set and language to two decimals."""
    from rag.evaluate import evaluate, headlines, load_gold

    milvus = Assistant(corpus_dir=real_assistant.corpus_dir, index_dir=real_assistant.index_dir, model=real_assistant.model,
                       store="milvus", milvus_uri=str(tmp_path / "gold" / "milvus.db"), on_notice=lambda m: None)
    milvus.index()
    assert milvus.last_update.copied == 1 and milvus.last_update.embedded_units == 0

    tops: dict[str, dict[str, list[str]]] = {"faiss": {}, "milvus": {}}

    class Recorder:
        def __init__(self, inner, name):
            self.inner, self.name = inner, name

        def __getattr__(self, attr):
            return getattr(self.inner, attr)

        def ask(self, question, **kw):
            answer = self.inner.ask(question, **kw)
            tops[self.name][question] = [h.passage.id for h in answer.hits]
            return answer

    cases = load_gold(GOLD)
    reports = {name: evaluate(Recorder(a, name), cases, k=10, mode="hybrid") for name, a in
               (("faiss", real_assistant), ("milvus", milvus))}
    same = sum(tops["faiss"][q] == tops["milvus"][q] for q in tops["faiss"])
    rate = same / len(tops["faiss"])
    figures = {name: {h.set: (h.zh_recall_5, h.zh_mrr_10, h.en_recall_5, h.en_mrr_10) for h in headlines(r)}
               for name, r in reports.items()}
    overall = {name: (r.overall.recall_5, r.overall.mrr_10) for name, r in reports.items()}
    print(f"\nsame top-10: {same}/{len(tops['faiss'])} ({100 * rate:.1f} %); overall R@5/MRR@10 {overall}; per set {figures}")
    assert len(tops["faiss"]) == len(cases) >= 340
    assert rate >= 0.98
    rounded = {name: {s: tuple(None if x is None else round(x, 2) for x in v) for s, v in f.items()} for name, f in figures.items()}
    assert rounded["milvus"] == rounded["faiss"]
    assert tuple(round(x, 2) for x in overall["milvus"]) == tuple(round(x, 2) for x in overall["faiss"])


# -- kill -9 during `rag index --store milvus` -------------------------------------------------------
CHILD = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, {root!r})
    from tests.conftest import HashEncoder
    import rag.models.encoders as encoders
    encoders.load_passage_encoder = lambda model: HashEncoder()   # the pipeline, with the test encoder
    from rag.store import milvus as m
    step = {step!r}
    write_file, pointer = m.MilvusStore._write_file, m.MilvusStore._write_pointer
    def slow_write(self, fd, gen, ids):
        write_file(self, fd, gen, ids)
        if step == "mid-files":   # the first changed file's rows are written, not the others'
            print("ready", flush=True); time.sleep(600)
    def slow_pointer(self, version, data):
        if step == "before-switch" and version > 1:
            print("ready", flush=True); time.sleep(600)
        pointer(self, version, data)
    m.MilvusStore._write_file, m.MilvusStore._write_pointer = slow_write, slow_pointer
    m._BATCH = 20
    sys.argv = ["rag", "index", "--store", "milvus", "--model", "hash-bigram-64", "--corpus", {corpus!r}, "--index-dir", {index!r}]
    from rag.cli import main
    main()
    print("finished", flush=True)
""")


def _release(uri: str) -> None:
    """Stop this process' Milvus Lite server for `uri` (frees the folder for another process)."""
    from milvus_lite.server_manager import server_manager_instance

    server_manager_instance.release_server(str(Path(uri).resolve()))


@pytest.mark.slow
@pytest.mark.parametrize("step", ["mid-files", "before-switch"])
def test_kill_9_during_rag_index_leaves_the_previous_library_answering(two_docs, tmp_path, monkeypatch, step):
    uri = str(tmp_path / "lite" / "milvus.db")
    monkeypatch.setenv("RAG_MILVUS_URI", uri)
    index = tmp_path / "indexes"
    corpus = tmp_path / "lib"
    corpus.mkdir()
    shutil.copy(REPORT, corpus / REPORT.name)
    a = hash_assistant(corpus, index, store="milvus", model="hash-bigram-64")
    a.index()
    questions = dev_questions(12) + ["东南亚数字经济 移动支付"]
    before = {q: signature(a.ask(q, k=10)) for q in questions}
    a.milvus_store().close()
    _release(uri)
    # The library grows: a report added, the big one changed; `rag index` is killed -9 mid-way.
    (corpus / "sea-digital.md").write_text(OTHER, encoding="utf-8")
    with open(corpus / REPORT.name, "a", encoding="utf-8") as fh:
        fh.write("\n\n补记：本报告的数字经济部分另见附录。\n")
    code = CHILD.format(root=str(ROOT), step=step, corpus=str(corpus), index=str(index))
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                            env={**os.environ, "RAG_STORE": "milvus"})
    line = proc.stdout.readline().strip()
    assert line == "ready", proc.stderr.read()[-2000:]
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=120)
    # A worker that does not rebuild (the corpus moved on; the store has not): the previous answers.
    shutil.copy(REPORT, corpus / REPORT.name)
    (corpus / "sea-digital.md").unlink()
    worker = hash_assistant(corpus, tmp_path / "elsewhere", store="milvus", model="hash-bigram-64", auto_build=False)
    assert {q: signature(worker.ask(q, k=10)) for q in questions} == before
    assert set(worker.milvus_store().files()) == {f"lib/{REPORT.name}"}
    # The next update finishes the job (the dead writer's rows are swept).
    (corpus / "sea-digital.md").write_text(OTHER, encoding="utf-8")
    worker.auto_build = True
    worker._docs = None
    worker.build()
    assert worker.ask("东南亚数字经济 移动支付", k=3, mode="bm25").hits[0].passage.source.endswith("sea-digital.md")
    worker.milvus_store().close()
    _release(uri)


# -- errors users can cause: one line, with what to do ----------------------------------------------
def rag(*args, env=None):
    return subprocess.run([sys.executable, "-m", "rag", *args], capture_output=True, text=True, cwd=ROOT, timeout=300,
                          env={**os.environ, **(env or {})})


@pytest.mark.slow
def test_cli_errors_are_one_line(tmp_path, two_docs):
    common = ["--corpus", str(two_docs), "--index-dir", str(tmp_path / "i"), "--model", "hash-bigram-64"]
    cases = [
        (["ask", "东盟", "--store", "mongo", *common], {}, "unknown store 'mongo'"),
        (["ask", "东盟", *common], {"RAG_STORE": "milvus", "RAG_MILVUS_URI": "http://127.0.0.1:9", "RAG_MILVUS_TIMEOUT": "1"},
         "Milvus at http://127.0.0.1:9 does not answer"),
        (["index", "--store", "milvus", "--index-type", "ivfpq", *common], {}, "Milvus Lite does not support the dense index IVF_PQ"),
        (["docs", "--store", "milvus", *common], {"RAG_MILVUS_URI": str(tmp_path / "x" / "milvus")}, "must end in .db"),
    ]
    for args, env, message in cases:
        out = rag(*args, env=env)
        assert out.returncode == 2, (args, out.stderr)
        assert out.stderr.count("\n") == 1 and message in out.stderr and "Traceback" not in out.stderr, out.stderr
    # A Lite folder another process holds (a running `rag serve`, say).
    held = tmp_path / "held" / "milvus.db"
    held.parent.mkdir()
    code = f"from pymilvus import MilvusClient; MilvusClient({str(held)!r}); print('ready', flush=True); import time; time.sleep(600)"
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        out = rag("ask", "东盟", "--store", "milvus", *common, env={"RAG_MILVUS_URI": str(held)})
        assert out.returncode == 2 and out.stderr.count("\n") == 1 and "open in another process" in out.stderr, out.stderr
    finally:
        proc.kill()
        proc.wait()


def test_http_errors_are_json_without_traceback(two_docs, tmp_path):
    from fastapi.testclient import TestClient

    from rag.server import create_app

    uri = str(tmp_path / "lite" / "milvus.db")
    a = hash_assistant(two_docs, tmp_path / "idx", store="milvus", milvus_uri=uri)
    client = TestClient(create_app(a, workers=1, warm_up=False, api_key=""))
    ok = client.post("/ask", json={"question": "东盟的中心地位", "k": 3})
    assert ok.status_code == 200 and len(ok.json()["passages"]) == 3
    health = client.get("/healthz").json()
    assert health["index_version"].endswith("@v2") and health["index_created"][:2] == "20"
    pid = ok.json()["passages"][0]["id"]
    shown = client.get("/passages/" + pid.replace("#", "%23"))
    assert shown.status_code == 200 and shown.json()["text"] == ok.json()["passages"][0]["text"]
    docs = client.get("/documents").json()["documents"]
    assert {d["source"]: (d["state"], d["passages"]) for d in docs} == {
        s.source: ("indexed", s.passages) for s in a.documents_status()}

    def down(*args, **kwargs):
        raise ConnectionError("connection refused")

    a.milvus_store()._client.search = down  # the server goes away under the worker
    a.milvus_store()._client.query = down
    r = client.post("/ask", json={"question": "东盟的中心地位", "k": 3})
    assert r.status_code == 503, r.text
    assert "does not answer" in r.json()["error"] or "failed" in r.json()["error"]
    assert "Traceback" not in r.text and "\n" not in r.json()["error"]


def test_a_collection_built_by_another_model_is_refused(two_docs, tmp_path, monkeypatch):
    monkeypatch.setenv("RAG_MILVUS_COLLECTION", "team_library")
    uri = str(tmp_path / "lite" / "milvus.db")
    hash_assistant(two_docs, tmp_path / "a", store="milvus", milvus_uri=uri).index()
    other = hash_assistant(two_docs, tmp_path / "b", store="milvus", milvus_uri=uri, model="another-model", auto_build=False)
    with pytest.raises(StoreError, match="built with model 'hash-bigram-64', not 'another-model'; rebuild it") as e:
        other.ask("东盟的中心地位")
    assert "\n" not in str(e.value)
