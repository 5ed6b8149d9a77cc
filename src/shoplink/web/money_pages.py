"""The money pages of the affiliate program (docs/affiliates.md, 5b-5c): a seller's sales with
refunds and freezes, the payouts a seller owes and records, a creator's statement. Static shells;
their scripts call the conversions, payouts and statements API."""

from __future__ import annotations

from aiohttp import web

from shoplink.web.pages import signed_in_page

routes = web.RouteTableDef()


for _path, _name, _title in (("/sales", "sales", "Sales"), ("/payouts", "payouts", "Payouts"),
                             ("/statement", "statement", "Statement")):
    routes.get(_path)(signed_in_page(_name, _title))


def setup_routes(app: web.Application) -> None:
    app.add_routes(routes)
