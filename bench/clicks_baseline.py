"""The benchmark's baseline: a bare aiohttp handler answering a fixed 302 the way /r/{code} does
(web.Response with Location and Cache-Control), on uvloop, no middleware, no access log."""

from __future__ import annotations

import sys

import uvloop
from aiohttp import web

LOCATION = ("https://acme.example/p/1?utm_source=shoplink&utm_medium=video&utm_campaign=publisher-1"
            "&utm_content=AbCdEfGh&sl_click=01JB0000000000000000000000")


async def redirect(request: web.Request) -> web.Response:
    return web.Response(status=302, headers={"Location": LOCATION, "Cache-Control": "no-store, private"})


def main() -> None:
    app = web.Application()
    app.router.add_get("/r/{code}", redirect)
    loop = uvloop.new_event_loop()
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), loop=loop, access_log=None, print=None)


if __name__ == "__main__":
    main()
