"""The money pages of the affiliate program (docs/affiliates.md, 5b-5c): a seller's sales with
refunds and freezes, the payouts a seller owes and records, a creator's statement. Static shells;
their scripts call the conversions, payouts and statements API."""

from __future__ import annotations

from aiohttp import web

from shoplink.web.pages import shell, signed_in

routes = web.RouteTableDef()


@routes.get("/sales")
async def sales(request: web.Request) -> web.Response:
    signed_in(request)
    return shell(request, "sales.html", title="Sales", script="sales.js")


@routes.get("/payouts")
async def payouts(request: web.Request) -> web.Response:
    signed_in(request)
    return shell(request, "payouts.html", title="Payouts", script="payouts.js")


@routes.get("/statement")
async def statement(request: web.Request) -> web.Response:
    signed_in(request)
    return shell(request, "statement.html", title="Statement", script="statement.js")


def setup_routes(app: web.Application) -> None:
    app.add_routes(routes)
