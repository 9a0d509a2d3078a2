"""rag.web.security and the page's files: headers on every response, CORS only on request, the API key.

Runs on the HashEncoder over the real report; no socket is opened.
"""

from __future__ import annotations

import re
import shutil

import pytest
from fastapi.testclient import TestClient

from rag.server import create_app
from rag.web import STATIC
from rag.web.security import CSP

from .conftest import REPORT, HashEncoder

ID = "corpus/ciss-2022-asia-pacific-community-outlook.txt%231"


@pytest.fixture(scope="module")
def assistant(tmp_path_factory):
    from rag.assistant import Assistant

    folder = tmp_path_factory.mktemp("websec")
    (folder / "corpus").mkdir()
    for f in (REPORT, REPORT.with_name(REPORT.stem + ".meta.json")):
        shutil.copy(f, folder / "corpus" / f.name)
    a = Assistant(corpus_dir=folder / "corpus", index_dir=folder / "indexes", encoder=HashEncoder(), on_notice=lambda m: None)
    a.index()
    return a


@pytest.fixture(scope="module")
def client(assistant):
    with TestClient(create_app(assistant, warm_up=False, api_key=""), raise_server_exceptions=False) as c:
        yield c


def _requests(c):
    return {
        "page": c.get("/"),
        "script": c.get("/static/app.js"),
        "docs": c.get("/docs"),
        "ask": c.post("/ask", json={"question": "东盟", "k": 1}),
        "bad ask": c.post("/ask", json={"question": 1}),
        "too big": c.post("/ask", content=b"x" * 70_000),
        "unknown": c.get("/nope"),
        "passage": c.get(f"/passages/{ID}"),
    }


def test_every_response_carries_the_csp_and_nosniff(client):
    assert "script-src 'self'" in CSP and "style-src 'self'" in CSP and "unsafe" not in CSP
    for name, r in _requests(client).items():
        assert r.headers.get("content-security-policy") == CSP, name
        assert r.headers.get("x-content-type-options") == "nosniff", name
        assert "access-control-allow-origin" not in r.headers, name


def test_no_cors_headers_unless_asked_for(client, assistant):
    r = client.post("/ask", json={"question": "东盟", "k": 1}, headers={"Origin": "http://elsewhere.example"})
    assert r.status_code == 200 and not any(h.startswith("access-control-") for h in r.headers)
    pre = client.options("/ask", headers={"Origin": "http://elsewhere.example", "Access-Control-Request-Method": "POST"})
    assert not any(h.startswith("access-control-") for h in pre.headers)
    with TestClient(create_app(assistant, warm_up=False, api_key="", cors="http://localhost:3000")) as c:
        ok = c.post("/ask", json={"question": "东盟", "k": 1}, headers={"Origin": "http://localhost:3000"})
        assert ok.headers["access-control-allow-origin"] == "http://localhost:3000"
        other = c.post("/ask", json={"question": "东盟", "k": 1}, headers={"Origin": "http://elsewhere.example"})
        assert "access-control-allow-origin" not in other.headers


def test_api_key_guards_every_endpoint_but_the_page_and_healthz(assistant, monkeypatch):
    monkeypatch.setenv("RAG_API_KEY", "k3y")
    with TestClient(create_app(assistant, warm_up=False), raise_server_exceptions=False) as c:
        guarded = [
            ("post", "/ask", {"json": {"question": "东盟", "k": 1}}),
            ("post", "/ask/batch", {"json": {"questions": [{"question": "东盟"}]}}),
            ("get", f"/passages/{ID}", {}),
            ("get", "/documents", {}),
            ("get", "/nope", {}),
        ]
        for method, path, kw in guarded:
            for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "k3y"}):
                r = getattr(c, method)(path, headers=headers, **kw)
                assert r.status_code == 401, (path, headers)
                assert isinstance(r.json()["error"], str) and "RAG_API_KEY" in r.json()["error"]
                assert r.headers["content-security-policy"] == CSP
            r = getattr(c, method)(path, headers={"Authorization": "Bearer k3y"}, **kw)
            assert r.status_code == (404 if path == "/nope" else 200), path
        for path in ("/", "/static/app.js", "/static/style.css", "/healthz", "/docs", "/openapi.json"):
            assert c.get(path).status_code == 200, path


def test_serving_beyond_loopback_warns_in_one_line(assistant, monkeypatch, capsys):
    import uvicorn

    from rag import server

    def bound_never_served(self, sockets=None):
        for sock in sockets or ():
            sock.close()

    monkeypatch.setattr(uvicorn.Server, "run", bound_never_served)
    monkeypatch.delenv("RAG_API_KEY", raising=False)
    server.serve(host="127.0.0.1", port=0, assistant=assistant)
    assert "warning" not in capsys.readouterr().err
    server.serve(host="0.0.0.0", port=0, assistant=assistant)
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning")]
    assert len(warnings) == 1 and "no authentication" in warnings[0] and "0.0.0.0" in warnings[0]


def test_the_page_has_no_inline_script_or_style_and_inserts_no_markup(client):
    html = client.get("/").text
    assert re.findall(r"<script(?![^>]*\bsrc=)", html) == []
    assert " style=" not in html and "<style" not in html
    assert re.findall(r"""(?:src|href)=["']https?://""", html) == []
    script = (STATIC / "app.js").read_text(encoding="utf-8")
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
        assert sink not in script, sink
    for ref in re.findall(r"""(?:src|href)=["']/static/([^"']+)""", html):
        assert (STATIC / ref).is_file(), ref


def test_api_docs_are_served_from_local_files(client):
    html = client.get("/docs").text
    assert "http://" not in html and "https://" not in html
    for ref in re.findall(r"""(?:src|href)=["'](/[^"']+)""", html):
        r = client.get(ref)
        assert r.status_code == 200 and len(r.content) > 100, ref


def test_documents_list_titles_publisher_year_and_outline(client):
    docs = client.get("/documents").json()["documents"]
    assert len(docs) == 1
    d = docs[0]
    assert d["title_zh"] == "亚太命运共同体展望" and d["year"] == "2022" and "Tsinghua" in d["publisher"]
    assert d["outline"]["title"] == "亚太命运共同体展望" and d["outline"]["children"]
