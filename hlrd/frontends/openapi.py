"""The HTTP API's contract, served: `GET /openapi.json` and the page `GET /docs`.

`openapi.json` beside this module is the one description of the API. The tests hold
the running daemon to it (every route is in it and every answer fits it) and CI fuzzes
the daemon against it with schemathesis, so an endpoint changes with its description
in the same commit. Both routes are open, like /healthz: the contract is no secret,
and a browser opening /docs cannot send a bearer token. The document is read and the
page rendered once, when the routes are added: both are constant while hlrd runs.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from aiohttp import web

from .api_docs import render_docs

SPEC_RESOURCE = "openapi.json"
SPEC_PATH = "/openapi.json"
DOCS_PATH = "/docs"

# The page loads nothing from anywhere and runs no script: a browser enforces that.
_DOCS_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def spec_bytes() -> bytes:
    """The document as shipped in the package."""
    return resources.files("hlrd.frontends").joinpath(SPEC_RESOURCE).read_bytes()


def load_spec() -> dict[str, Any]:
    spec: dict[str, Any] = json.loads(spec_bytes())
    return spec


def add_openapi_routes(app: web.Application) -> None:
    """Adds /openapi.json and /docs to `app`."""
    body = spec_bytes()
    page = render_docs(json.loads(body)).encode()

    async def openapi(_: web.Request) -> web.Response:
        return web.Response(body=body, content_type="application/json")

    async def docs(_: web.Request) -> web.Response:
        return web.Response(
            body=page, content_type="text/html", charset="utf-8", headers=_DOCS_HEADERS
        )

    app.router.add_get(SPEC_PATH, openapi)
    app.router.add_get(DOCS_PATH, docs)
