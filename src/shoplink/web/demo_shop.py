"""A stand-in shop for the demo: the product pages that demo anchors redirect to.

It shows the attribution parameters the redirect appended, so a newcomer can see what a real
shop receives (and what it would send back with a conversion).
"""

from __future__ import annotations

import html

from aiohttp import web

from shoplink.http import ascii_digits
from shoplink.web.demo_content import DEMO_PRODUCTS
from shoplink.web.views import page

routes = web.RouteTableDef()
ATTRIBUTION_PARAMS = ("utm_source", "utm_medium", "utm_campaign", "utm_content", "sl_click")


@routes.get("/demo/shop/products/{number}")
async def demo_product(request: web.Request) -> web.Response:
    raw = request.match_info["number"]
    if not ascii_digits(raw) or not 1 <= int(raw) <= len(DEMO_PRODUCTS):
        raise web.HTTPNotFound(text="no such demo product")
    title, price = DEMO_PRODUCTS[int(raw) - 1]
    rows = "".join(
        f"<tr><th>{html.escape(name)}</th><td data-param='{html.escape(name)}'>"
        f"{html.escape(request.query.get(name, '—'))}</td></tr>" for name in ATTRIBUTION_PARAMS)
    body = f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)} · Demo Shop</title><link rel="stylesheet" href="/static/app.css"></head>
<body><main class="card narrow"><p>Demo Shop</p><h1 id="product-title">{html.escape(title)}</h1>
<p class="price">USD {html.escape(price)}</p>
<h2>What the shop received</h2><table class="attribution">{rows}</table>
<p>A real shop keeps <code>sl_click</code> with the order and reports it to
<code>POST /api/v1/conversions</code> when the order is placed.</p></main></body></html>"""
    return page(body)


def setup_routes(app: web.Application) -> None:
    app.add_routes(routes)
