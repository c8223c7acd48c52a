"""The web page for compliance staff: `GET /ui` and its two assets, `/` sending there.

The page is static (HTML, one script, one style sheet shipped in the package) and
holds no data: everything it shows it asks the /v1 API for, with the same bearer
token a dialer uses (typed once, kept in the tab's sessionStorage; downloads and
the progress stream, which a browser cannot give a header, send it as
`access_token`). So the page is open like /docs while what it shows is behind the
same auth as the API. It loads nothing from anywhere else — hlrd runs where there is
no internet — and its Content-Security-Policy makes the browser enforce that.
"""

from __future__ import annotations

from importlib import resources

from aiohttp import web

PAGE_PATH = "/ui"
ASSET_PATH = "/ui/{asset}"
_ASSETS = {"app.js": "text/javascript", "app.css": "text/css"}

_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def _read(name: str) -> bytes:
    return resources.files("hlrd.frontends").joinpath("web", name).read_bytes()


def add_web_routes(app: web.Application) -> None:
    """Adds / (a redirect), /ui and /ui/{asset}; the files are read once, here."""
    page = _read("index.html")
    assets = {name: (_read(name), kind) for name, kind in _ASSETS.items()}

    async def root(_: web.Request) -> web.Response:
        return web.Response(status=302, headers={"Location": PAGE_PATH})

    async def index(_: web.Request) -> web.Response:
        return web.Response(body=page, content_type="text/html", charset="utf-8", headers=_HEADERS)

    async def asset(request: web.Request) -> web.Response:
        found = assets.get(request.match_info["asset"])
        if found is None:
            raise web.HTTPNotFound()
        body, kind = found
        return web.Response(body=body, content_type=kind, charset="utf-8", headers=_HEADERS)

    app.router.add_get("/", root)
    app.router.add_get(PAGE_PATH, index)
    app.router.add_get(ASSET_PATH, asset)
