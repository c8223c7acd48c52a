"""The HTTP ceiling: an aiohttp handler that answers "0" and does nothing else.

`python -m bench.trivial_http` prints the port it bound on stdout.
"""

from __future__ import annotations

import asyncio

from aiohttp import web


async def _check(_: web.Request) -> web.Response:
    return web.Response(text="0", content_type="text/plain")


async def _serve() -> None:
    app = web.Application()
    app.router.add_get("/v1/check/{number}", _check)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    print(runner.addresses[0][1], flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(_serve())
