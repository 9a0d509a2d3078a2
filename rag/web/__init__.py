"""The reading room: the web page `rag serve` gives at `/`, and the offline API docs at `/docs`.

The page is one static HTML file, a hand-written script and a style sheet (rag/web/static/),
shipped in the package and talking to the JSON API (`POST /ask`, `GET /passages/…`,
`GET /documents`): no CDN, no build step, nothing fetched from anywhere but this server.
Everything a user or the corpus supplies is put in the page as text (`textContent`), never as markup.

`/docs` is Swagger UI from the files the `fastapi-offline` package ships, started by a script of
ours (the Content-Security-Policy forbids the inline script FastAPI's own docs page uses).
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.staticfiles import StaticFiles

from .outline import outline

STATIC = Path(__file__).resolve().parent / "static"

_DOCS_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>rag — API docs</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/docs/assets/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="/docs/assets/swagger-ui-bundle.js"></script>
<script src="/static/docs.js"></script></body></html>
"""


def swagger_assets() -> Path | None:
    """The folder of Swagger UI's files shipped by `fastapi-offline`, if installed."""
    try:
        import fastapi_offline
    except ImportError:
        return None
    folder = Path(fastapi_offline.__file__).resolve().parent / "static"
    return folder if (folder / "swagger-ui-bundle.js").is_file() else None


def documents_json(assistant) -> list[dict]:
    """The corpus's documents with their metadata (titles zh/en, publisher, year), index state
    (`Assistant.documents_status`) and section tree."""
    passages = assistant.passages()
    status = {s.source: s for s in assistant.documents_status()}
    out = []
    for doc in assistant.documents():
        info = doc.info
        tree = outline(passages, doc.source)
        st = status.get(doc.source)
        out.append({
            **(st.to_dict() if st else {}),
            "source": doc.source,
            "title_zh": info.title_zh,
            "title_en": info.title_en,
            "publisher": info.publisher,
            "year": info.year,
            "chars": len(doc.text),
            "passages": tree.passages,
            "outline": tree.to_dict(),
        })
    names = {d.source for d in assistant.documents()}
    out += [s.to_dict() for s in status.values() if s.source not in names]  # removed since indexed
    return out


def mount(app: FastAPI, assistant) -> None:
    """Add the page (`/`, `/static/…`), `GET /documents` and the offline `/docs` to `app`."""

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html; charset=utf-8")

    @app.get("/documents", summary="The corpus's documents: titles, publisher, year, section tree")
    def documents() -> dict:
        return {"documents": documents_json(assistant)}

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    assets = swagger_assets()
    if assets is not None:
        app.mount("/docs/assets", StaticFiles(directory=assets), name="docs-assets")

        @app.get("/docs", include_in_schema=False)
        async def api_docs() -> HTMLResponse:
            return HTMLResponse(_DOCS_HTML)
