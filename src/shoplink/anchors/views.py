"""HTTP: creators manage anchors on their videos; players read timelines; QR codes of links."""

from __future__ import annotations

import math

from aiohttp import web

from shoplink.anchors import qr
from shoplink.errors import BadRequest, NotFound
from shoplink.fastpath import fast_cors_route
from shoplink.http import json_response, path_id, principal, query_int
from shoplink.keys import ANCHORS, SETTINGS, TIMELINES
from shoplink.validation import read_json

routes = web.RouteTableDef()

QR_CACHE_CONTROL = "public, max-age=86400"
STATUS_FILTERS = {"active": "active", "archived": "archived", "all": None}


def _limit(request: web.Request) -> int:
    return request.app[SETTINGS].max_body_bytes


@routes.post("/api/v1/videos/{video_id}/anchors")
async def create_anchor(request: web.Request) -> web.Response:
    body = await read_json(request, "anchor_create", _limit(request))
    service = request.app[ANCHORS]
    anchor = await service.create_video_anchor(principal(request), path_id(request, "video_id"), body)
    return json_response(service.to_json(anchor), status=201)


@routes.get("/api/v1/videos/{video_id}/anchors")
async def list_anchors(request: web.Request) -> web.Response:
    """The owner's view: ?status=active (default) | archived | all."""
    raw = request.query.get("status", "active")
    if raw not in STATUS_FILTERS:
        raise BadRequest("status must be active, archived or all", code="invalid_query")
    service = request.app[ANCHORS]
    anchors = await service.list_for_owner(principal(request), path_id(request, "video_id"),
                                           STATUS_FILTERS[raw])
    return json_response({"items": [service.to_json(a) for a in anchors]})


@routes.get("/api/v1/videos/{video_id}/anchors/{anchor_id}")
async def get_anchor(request: web.Request) -> web.Response:
    service = request.app[ANCHORS]
    anchor = await service.get_video_anchor(principal(request), path_id(request, "video_id"),
                                            path_id(request, "anchor_id"))
    return json_response(service.to_json(anchor))


@routes.patch("/api/v1/videos/{video_id}/anchors/{anchor_id}")
async def update_anchor(request: web.Request) -> web.Response:
    body = await read_json(request, "anchor_update", _limit(request))
    service = request.app[ANCHORS]
    anchor = await service.update_video_anchor(principal(request), path_id(request, "video_id"),
                                               path_id(request, "anchor_id"), body)
    return json_response(service.to_json(anchor))


@routes.delete("/api/v1/videos/{video_id}/anchors/{anchor_id}")
async def archive_anchor(request: web.Request) -> web.Response:
    await request.app[ANCHORS].archive_video_anchor(principal(request), path_id(request, "video_id"),
                                                    path_id(request, "anchor_id"))
    return web.Response(status=204)


def _etag_matches(header: str, etag: str) -> bool:
    if header == etag or header.strip() == "*":
        return True
    return any(tag.strip().removeprefix("W/") == etag for tag in header.split(","))


def _at(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise BadRequest("at must be a number of seconds", code="invalid_query") from None
    if not math.isfinite(value) or value < 0:
        raise BadRequest("at must be a finite number of seconds, 0 or more", code="invalid_query")
    return value


def _at_query(request: web.Request) -> float | None:
    """?at=<seconds>; the common single-parameter query string is read without a full parse."""
    qs = request.query_string
    if not qs:
        return None
    if qs.startswith("at=") and "&" not in qs and "%" not in qs:
        return _at(qs[3:])
    raw = request.query.get("at")
    return None if raw is None else _at(raw)


@routes.get("/v1/videos/{video_id}/anchors")
@fast_cors_route  # public and hot: skips the middleware chain (shoplink/fastpath.py)
async def timeline(request: web.Request) -> web.Response:
    """Public: the anchors active at ?at=<seconds> ([start_s, end_s)), or the whole timeline.

    The hot path of players: a cache hit is a dict lookup, one bisect and pre-serialized bytes.
    """
    cache = request.app[TIMELINES]
    video_id = path_id(request, "video_id")
    entry = cache.peek(video_id) or await cache.get(video_id)
    if not entry.found:
        raise NotFound("video not found")
    at = _at_query(request)
    answer = entry.full if at is None else entry.active_at(at)
    wanted = request.headers.get("If-None-Match")
    if wanted is not None and _etag_matches(wanted, answer.etag):
        return web.Response(status=304, headers=answer.not_modified_headers)
    return web.Response(body=answer.body, headers=answer.headers)


@routes.get("/v1/anchors/{code}/qr.png")
async def qr_code(request: web.Request) -> web.Response:
    """Public: a PNG QR code of the anchor's link (?scale=2..32 pixels per module)."""
    scale = query_int(request, "scale", qr.DEFAULT_SCALE, qr.MIN_SCALE, qr.MAX_SCALE)
    png = await request.app[ANCHORS].qr_png(request.match_info["code"], scale)
    if png is None:
        raise NotFound("anchor not found")
    return web.Response(body=png, content_type="image/png",
                        headers={"Cache-Control": QR_CACHE_CONTROL})


@routes.get("/v1/anchors/{code}/qr.svg")
async def qr_code_svg(request: web.Request) -> web.Response:
    """Public: the same QR code as SVG (?scale=2..32: the declared size, pixels per module)."""
    scale = query_int(request, "scale", qr.DEFAULT_SCALE, qr.MIN_SCALE, qr.MAX_SCALE)
    svg = await request.app[ANCHORS].qr_svg(request.match_info["code"], scale)
    if svg is None:
        raise NotFound("anchor not found")
    return web.Response(body=svg, content_type="image/svg+xml",
                        headers={"Cache-Control": QR_CACHE_CONTROL})


def setup_routes(app: web.Application) -> None:
    app.add_routes(routes)
