"""What the HTTP server sends with every response, and who may call it.

* :class:`SecurityHeaders`: a Content-Security-Policy allowing only the server's own origin for
  scripts, styles, images, fonts and requests (no inline script or style, no framing), plus
  ``X-Content-Type-Options: nosniff`` and ``Referrer-Policy: no-referrer``.
* :class:`BearerKey`: when ``RAG_API_KEY`` is set, every endpoint except the page's own files
  (``/``, ``/static/…``, the offline ``/docs`` and its schema) and ``/healthz`` needs
  ``Authorization: Bearer <key>``; anything else gets a 401 JSON object.

Both are plain ASGI middleware so they also cover error responses and static files.
"""

from __future__ import annotations

import hmac
import json

#: Sent with every response (the API's JSON included: harmless there, and one rule is easier to check).
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
HEADERS = (
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
)
#: Paths open without the API key: the page's files, the offline API docs and /healthz.
PUBLIC_PATHS = ("/", "/healthz", "/docs", "/openapi.json", "/favicon.ico")
PUBLIC_PREFIXES = ("/static/", "/docs/")


def is_public(path: str) -> bool:
    return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)


class SecurityHeaders:
    """ASGI middleware adding :data:`HEADERS` to every HTTP response."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message):
            if message["type"] == "http.response.start":
                names = {k.lower() for k, _ in message.get("headers", [])}
                extra = [(k, v) for k, v in HEADERS if k not in names]
                message = dict(message, headers=list(message.get("headers", [])) + extra)
            await send(message)

        await self.app(scope, receive, with_headers)


class BearerKey:
    """ASGI middleware: require ``Authorization: Bearer <key>`` outside :func:`is_public` paths."""

    def __init__(self, app, key: str) -> None:
        self.app = app
        self.key = key.encode()

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope.get("method") == "OPTIONS" or is_public(scope.get("path", "")):
            await self.app(scope, receive, send)
            return
        auth = dict(scope.get("headers", [])).get(b"authorization", b"")
        scheme, _, token = auth.partition(b" ")
        if scheme.lower() == b"bearer" and hmac.compare_digest(token.strip(), self.key):
            await self.app(scope, receive, send)
            return
        message = "this server needs an API key: send 'Authorization: Bearer <key>' (the value of RAG_API_KEY)"
        if auth:
            message = "wrong API key (send 'Authorization: Bearer <key>' with the value of RAG_API_KEY)"
        body = json.dumps({"error": message}).encode()
        await send({
            "type": "http.response.start",
            "status": 401,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                        (b"www-authenticate", b'Bearer realm="rag"')],
        })
        await send({"type": "http.response.body", "body": body})
