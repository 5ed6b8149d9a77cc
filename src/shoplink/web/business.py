"""The business pages: a seller's shops, domains, products and promotion plans; a creator's
marketplace, plans, links and earnings. Static shells; their scripts call the JSON API."""

from __future__ import annotations

from aiohttp import web

from shoplink.http import path_id
from shoplink.web.pages import shell, signed_in, signed_in_page

routes = web.RouteTableDef()


@routes.get("/shops/{shop_id}")
async def shop(request: web.Request) -> web.Response:
    shop_id = path_id(request, "shop_id")  # a malformed URL is a 400, signed in or not
    signed_in(request)
    return shell(request, "shop.html", title="Shop", script="shop.js", shop_id=str(shop_id))


@routes.get("/shops/{shop_id}/products")
async def shop_products(request: web.Request) -> web.Response:
    shop_id = path_id(request, "shop_id")
    signed_in(request)
    return shell(request, "shop_products.html", title="Products", script="shop_products.js",
                 shop_id=str(shop_id))


@routes.get("/plans/{plan_id}")
async def plan(request: web.Request) -> web.Response:
    plan_id = path_id(request, "plan_id")
    signed_in(request)
    return shell(request, "plan.html", title="Promotion plan", script="plan.js", plan_id=str(plan_id))


# Seller and creator pages that are their shell alone: path, then the name of the template and script, and the title.
for _path, _name, _title in (("/shops", "shops", "Shops"), ("/plans", "plans", "Promotion plans"),
                             ("/marketplace", "marketplace", "Marketplace"), ("/me/plans", "my_plans", "My plans"),
                             ("/links", "links", "My links"), ("/earnings", "earnings", "Earnings")):
    routes.get(_path)(signed_in_page(_name, _title))


def setup_routes(app: web.Application) -> None:
    app.add_routes(routes)
