"""HTTP: shops, shop domains, products, bulk import."""

from __future__ import annotations

import csv
import io
from typing import Any

from aiohttp import web

from shoplink.errors import BadRequest, UnsupportedMediaType, ValidationFailed
from shoplink.http import json_response, page, page_params, parse_id, path_id, principal
from shoplink.keys import CATALOG, SETTINGS
from shoplink.validation import parse_json, read_body, read_json, reject_nul, validate

routes = web.RouteTableDef()
CSV_COLUMNS = ("title", "url", "price", "currency", "image_url", "sku")


def _limit(request: web.Request) -> int:
    return request.app[SETTINGS].max_body_bytes


@routes.post("/api/v1/shops")
async def create_shop(request: web.Request) -> web.Response:
    body = await read_json(request, "shop_create", _limit(request))
    shop = await request.app[CATALOG].create_shop(principal(request), body)
    return json_response(shop.to_json(), status=201)


@routes.get("/api/v1/shops")
async def list_shops(request: web.Request) -> web.Response:
    limit, after = page_params(request)
    shops = await request.app[CATALOG].list_shops(principal(request), limit, after)
    return json_response(page([s.to_json() for s in shops], limit))


@routes.get("/api/v1/shops/{shop_id}")
async def get_shop(request: web.Request) -> web.Response:
    shop = await request.app[CATALOG].get_shop(principal(request), path_id(request, "shop_id"))
    return json_response(shop.to_json())


@routes.patch("/api/v1/shops/{shop_id}")
async def update_shop(request: web.Request) -> web.Response:
    body = await read_json(request, "shop_update", _limit(request))
    shop = await request.app[CATALOG].update_shop(principal(request), path_id(request, "shop_id"), body)
    return json_response(shop.to_json())


@routes.post("/api/v1/shops/{shop_id}/domains")
async def add_domain(request: web.Request) -> web.Response:
    body = await read_json(request, "domain_add", _limit(request))
    shop = await request.app[CATALOG].add_domain(principal(request), path_id(request, "shop_id"), body)
    return json_response(shop.to_json(), status=201)


@routes.get("/api/v1/shops/{shop_id}/domains/{domain}")
async def get_domain(request: web.Request) -> web.Response:
    """One domain: its state, proof instructions and the last failure."""
    domain = await request.app[CATALOG].get_domain(
        principal(request), path_id(request, "shop_id"), request.match_info["domain"])
    return json_response(domain.to_json())


@routes.post("/api/v1/shops/{shop_id}/domains/{domain}/verify")
async def verify_domain(request: web.Request) -> web.Response:
    """Look for the proof now; the domain with its new state (and, on failure, why)."""
    domain = await request.app[CATALOG].verify_domain(
        principal(request), path_id(request, "shop_id"), request.match_info["domain"])
    return json_response(domain.to_json())


@routes.delete("/api/v1/shops/{shop_id}/domains/{domain}")
async def remove_domain(request: web.Request) -> web.Response:
    shop = await request.app[CATALOG].remove_domain(
        principal(request), path_id(request, "shop_id"), request.match_info["domain"])
    return json_response(shop.to_json())


@routes.post("/api/v1/shops/{shop_id}/products")
async def create_product(request: web.Request) -> web.Response:
    body = await read_json(request, "product_create", _limit(request))
    products = await request.app[CATALOG].create_products(
        principal(request), path_id(request, "shop_id"), [body])
    return json_response(products[0].to_json(), status=201)


def _search(request: web.Request) -> str | None:
    return reject_nul(request.query.get("q", "")) or None


def _csv_rows(raw: bytes) -> list[dict[str, Any]]:
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise BadRequest("CSV body must be UTF-8", code="malformed_csv") from None
    reader = csv.DictReader(io.StringIO(reject_nul(text)))
    header = reader.fieldnames or []
    unknown = [c for c in header if c not in CSV_COLUMNS]
    if unknown or "title" not in header or "url" not in header:
        raise BadRequest(f"CSV header must be a subset of {', '.join(CSV_COLUMNS)} with title and url; "
                         f"unknown: {', '.join(unknown) or 'none'}", code="malformed_csv")
    rows = []
    for row in reader:
        if None in row:
            raise BadRequest(f"CSV line {reader.line_num} has more cells than the header",
                             code="malformed_csv")
        rows.append({k: v for k, v in row.items() if v not in ("", None)})
    return rows


def _dry_run(request: web.Request) -> bool:
    raw = request.query.get("dry_run", "false")
    if raw not in ("true", "false", "1", "0"):
        raise BadRequest("dry_run must be true or false", code="invalid_query")
    return raw in ("true", "1")


@routes.post("/api/v1/shops/{shop_id}/products/bulk")
async def bulk_create(request: web.Request) -> web.Response:
    """Every row stored, or none (a 422 lists each bad row); `?dry_run=true` checks the same
    and stores nothing: 200 with the report (`valid`, the rows as they would be stored, or
    `errors` as the 422 would list them)."""
    dry_run = _dry_run(request)
    raw = await read_body(request, _limit(request))
    if request.content_type == "text/csv":
        rows = _csv_rows(raw)
    elif request.content_type == "application/json":
        rows = parse_json(raw)
    else:
        raise UnsupportedMediaType("send application/json (an array) or text/csv")
    if not isinstance(rows, list) or not rows:
        raise ValidationFailed("body must be a non-empty array of products")
    errors: list[dict[str, Any]] = []
    for n, row in enumerate(rows):
        try:
            validate(row, "product_create")
        except ValidationFailed as exc:
            errors.extend({"row": n, **d} for d in exc.details)
    # Rows the schema refused are reported with the others' problems (the service checks those).
    if dry_run:  # the answer is the check's report, good or bad: 200 either way
        try:
            checked = await request.app[CATALOG].check_products(
                principal(request), path_id(request, "shop_id"), rows, errors)
        except ValidationFailed as exc:
            problems = exc.details if isinstance(exc.details, list) and exc.details else [{"message": exc.message}]
            return json_response({"dry_run": True, "valid": False, "message": exc.message, "count": 0,
                                  "items": [], "errors": problems})
        return json_response({"dry_run": True, "valid": True, "message": f"{len(checked)} product(s) ready",
                              "count": len(checked), "items": [_preview(row) for row in checked], "errors": []})
    products = await request.app[CATALOG].create_products(
        principal(request), path_id(request, "shop_id"), rows, errors)
    return json_response({"items": [p.to_json() for p in products]}, status=201)


def _preview(fields: dict[str, Any]) -> dict[str, Any]:
    """A checked row as the product would be stored (no id: nothing was)."""
    return {"title": fields.get("title"), "url": fields.get("url"), "sku": fields.get("sku"),
            "image_url": fields.get("image_url"), "currency": fields.get("currency"),
            "price_minor": fields.get("price_minor")}


@routes.get("/api/v1/products")
async def list_products(request: web.Request) -> web.Response:
    limit, after = page_params(request)
    shop_raw = request.query.get("shop_id")
    shop_id = parse_id(shop_raw) if shop_raw is not None else None
    if shop_raw is not None and shop_id is None:
        raise BadRequest("shop_id must be a positive integer", code="invalid_query")
    status = request.query.get("status")
    if status not in (None, "active", "delisted"):
        raise BadRequest("status must be active or delisted", code="invalid_query")
    products = await request.app[CATALOG].list_products(
        principal(request), shop_id=shop_id, status=status,
        search=_search(request), limit=limit, after_id=after)
    return json_response(page([p.to_json() for p in products], limit))


@routes.get("/api/v1/shops/{shop_id}/products")
async def list_shop_products(request: web.Request) -> web.Response:
    limit, after = page_params(request)
    status = request.query.get("status")
    if status not in (None, "active", "delisted"):
        raise BadRequest("status must be active or delisted", code="invalid_query")
    products = await request.app[CATALOG].list_products(
        principal(request), shop_id=path_id(request, "shop_id"), status=status,
        search=_search(request), limit=limit, after_id=after)
    return json_response(page([p.to_json() for p in products], limit))


@routes.get("/api/v1/products/{product_id}")
async def get_product(request: web.Request) -> web.Response:
    product = await request.app[CATALOG].get_product(principal(request), path_id(request, "product_id"))
    return json_response(product.to_json())


@routes.patch("/api/v1/products/{product_id}")
async def update_product(request: web.Request) -> web.Response:
    body = await read_json(request, "product_update", _limit(request))
    product = await request.app[CATALOG].update_product(
        principal(request), path_id(request, "product_id"), body)
    return json_response(product.to_json())


@routes.delete("/api/v1/products/{product_id}")
async def delist_product(request: web.Request) -> web.Response:
    """Delisting keeps the product for history; its anchors stop redirecting to it."""
    product = await request.app[CATALOG].delist_product(
        principal(request), path_id(request, "product_id"))
    return json_response(product.to_json())


def setup_routes(app: web.Application) -> None:
    app.add_routes(routes)
