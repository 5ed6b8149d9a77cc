"""The business pages: a seller's shops, domains, products and promotion plans; a creator's
marketplace, plans, links and earnings. Static shells; their scripts call the JSON API."""

from __future__ import annotations

from aiohttp import web

from shoplink.http import path_id
from shoplink.web.pages import shell, signed_in

routes = web.RouteTableDef()


# ---- sellers ---------------------------------------------------------------------------------

@routes.get("/shops")
async def shops(request: web.Request) -> web.Response:
    signed_in(request)
    return shell(request, "shops.html", title="Shops", script="shops.js")


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


@routes.get("/plans")
async def plans(request: web.Request) -> web.Response:
    signed_in(request)
    return shell(request, "plans.html", title="Promotion plans", script="plans.js")


@routes.get("/plans/{plan_id}")
async def plan(request: web.Request) -> web.Response:
    plan_id = path_id(request, "plan_id")
    signed_in(request)
    return shell(request, "plan.html", title="Promotion plan", script="plan.js", plan_id=str(plan_id))


# ---- creators --------------------------------------------------------------------------------

@routes.get("/marketplace")
async def marketplace(request: web.Request) -> web.Response:
    signed_in(request)
    return shell(request, "marketplace.html", title="Marketplace", script="marketplace.js")


@routes.get("/me/plans")
async def my_plans(request: web.Request) -> web.Response:
    signed_in(request)
    return shell(request, "my_plans.html", title="My plans", script="my_plans.js")


@routes.get("/links")
async def links(request: web.Request) -> web.Response:
    signed_in(request)
    return shell(request, "links.html", title="My links", script="links.js")


@routes.get("/earnings")
async def earnings(request: web.Request) -> web.Response:
    signed_in(request)
    return shell(request, "earnings.html", title="Earnings", script="earnings.js")


def setup_routes(app: web.Application) -> None:
    app.add_routes(routes)
