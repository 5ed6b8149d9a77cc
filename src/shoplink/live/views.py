"""HTTP: live sessions for hosts (/api/v1/live), current state and event stream for viewers (/v1/live)."""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import HttpVersion11, web

from shoplink.aiohttp_internals import body_transport
from shoplink.clicks.viewer import COOKIE_NAME as VIEWER_COOKIE
from shoplink.errors import BadRequest
from shoplink.http import ascii_digits, json_response, page, page_params, path_id, principal
from shoplink.keys import LIVE, SETTINGS
from shoplink.live.hub import sse
from shoplink.live.models import ENDED, LiveSession, LiveState
from shoplink.security.cors import allow_cross_origin
from shoplink.validation import read_json

log = logging.getLogger(__name__)
routes = web.RouteTableDef()

MAX_RESUME_EVENTS = 1000  # further behind than this: the viewer gets the full state instead
SSE_HEADERS = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache, no-transform",
               "X-Accel-Buffering": "no"}


def _limit(request: web.Request) -> int:
    return request.app[SETTINGS].max_body_bytes


def _base(request: web.Request) -> str:
    return request.app[SETTINGS].public_base_url


def _session_json(session: LiveSession) -> dict[str, Any]:
    return session.to_json()


# ---- hosts ---------------------------------------------------------------------------------

@routes.post("/api/v1/live")
async def create_session(request: web.Request) -> web.Response:
    body = await read_json(request, "live_create", _limit(request))
    service = request.app[LIVE]
    session = await service.create(principal(request), body)
    products = await service.products(principal(request), session.id)
    return json_response({**_session_json(session),
                          "products": [p.to_json(_base(request)) for p in products]}, status=201)


@routes.get("/api/v1/live")
async def list_sessions(request: web.Request) -> web.Response:
    limit, after = page_params(request)
    status = request.query.get("status")
    if status not in (None, "scheduled", "live", "ended"):
        raise BadRequest("status must be scheduled, live or ended", code="invalid_query")
    sessions = await request.app[LIVE].list_sessions(principal(request), status, limit, after)
    return json_response(page([_session_json(s) for s in sessions], limit))


@routes.get("/api/v1/live/{live_id}")
async def get_session(request: web.Request) -> web.Response:
    session, products, state, viewers = await request.app[LIVE].host_view(
        principal(request), path_id(request, "live_id"))
    base = _base(request)
    return json_response({**_session_json(session), "products": [p.to_json(base) for p in products],
                          "pins": [p.to_json(base) for p in state.pins], "viewers": viewers})


@routes.patch("/api/v1/live/{live_id}")
async def update_session(request: web.Request) -> web.Response:
    body = await read_json(request, "live_update", _limit(request))
    session = await request.app[LIVE].update(principal(request), path_id(request, "live_id"), body)
    return json_response(_session_json(session))


@routes.post("/api/v1/live/{live_id}/start")
async def start_session(request: web.Request) -> web.Response:
    session = await request.app[LIVE].start(principal(request), path_id(request, "live_id"))
    return json_response(_session_json(session))


@routes.post("/api/v1/live/{live_id}/end")
async def end_session(request: web.Request) -> web.Response:
    session = await request.app[LIVE].end(principal(request), path_id(request, "live_id"))
    return json_response(_session_json(session))


@routes.get("/api/v1/live/{live_id}/products")
async def list_products(request: web.Request) -> web.Response:
    products = await request.app[LIVE].products(principal(request), path_id(request, "live_id"))
    return json_response({"items": [p.to_json(_base(request)) for p in products]})


@routes.post("/api/v1/live/{live_id}/products")
async def add_products(request: web.Request) -> web.Response:
    body = await read_json(request, "live_products_add", _limit(request))
    products = await request.app[LIVE].add_products(
        principal(request), path_id(request, "live_id"), body["product_ids"])
    return json_response({"items": [p.to_json(_base(request)) for p in products]})


@routes.delete("/api/v1/live/{live_id}/products/{product_id}")
async def remove_product(request: web.Request) -> web.Response:
    await request.app[LIVE].remove_product(principal(request), path_id(request, "live_id"),
                                           path_id(request, "product_id"))
    return web.Response(status=204)


def _state_json(request: web.Request, state: LiveState) -> web.Response:
    return json_response(state.to_json(_base(request)))


@routes.post("/api/v1/live/{live_id}/pins")
async def pin(request: web.Request) -> web.Response:
    body = await read_json(request, "live_pin", _limit(request))
    state = await request.app[LIVE].pin(principal(request), path_id(request, "live_id"),
                                        body["product_id"])
    return json_response(state.to_json(_base(request)), status=201)


@routes.patch("/api/v1/live/{live_id}/pins/{product_id}")
async def update_pin(request: web.Request) -> web.Response:
    body = await read_json(request, "live_pin_update", _limit(request))
    state = await request.app[LIVE].set_sold_out(principal(request), path_id(request, "live_id"),
                                                 path_id(request, "product_id"), body["sold_out"])
    return _state_json(request, state)


@routes.delete("/api/v1/live/{live_id}/pins/{product_id}")
async def unpin(request: web.Request) -> web.Response:
    state = await request.app[LIVE].unpin(principal(request), path_id(request, "live_id"),
                                          path_id(request, "product_id"))
    return _state_json(request, state)


@routes.get("/api/v1/live/{live_id}/timeline")
async def timeline(request: web.Request) -> web.Response:
    events = await request.app[LIVE].timeline(principal(request), path_id(request, "live_id"))
    return json_response({"items": [e.timeline_json() for e in events]})


@routes.post("/api/v1/live/{live_id}/replay")
async def attach_replay(request: web.Request) -> web.Response:
    body = await read_json(request, "live_replay", _limit(request))
    session, anchors, skipped = await request.app[LIVE].attach_replay(
        principal(request), path_id(request, "live_id"), body["video_id"],
        float(body.get("offset_s", 0.0)))
    return json_response({**_session_json(session), "anchors": anchors, "skipped": skipped},
                         status=201)


# ---- viewers (public) ------------------------------------------------------------------------

@routes.get("/v1/live/{live_id}")
async def public_state(request: web.Request) -> web.Response:
    state = await request.app[LIVE].public_state(path_id(request, "live_id"))
    return json_response(state.to_json(_base(request)), headers={"Cache-Control": "no-store"})


def _last_event_id(request: web.Request) -> int | None:
    raw = request.headers.get("Last-Event-ID", request.query.get("last_event_id"))
    if raw is None:
        return None
    raw = raw.strip()  # EventSource sends the header only with an id: an empty one is malformed
    if not ascii_digits(raw) or len(raw) > 10:
        raise BadRequest("Last-Event-ID must be a non-negative integer (an event id)",
                         code="invalid_last_event_id")
    return int(raw)


def _end_chunk(state: LiveState) -> bytes:
    """The `end` event of an ended live, as the stored one reads (for a viewer that joins late)."""
    ended, started = state.ended_at, state.started_at
    offset = (ended - started).total_seconds() if ended and started else 0.0
    return sse(state.seq, "end", {"seq": state.seq, "type": "end", "offset_s": offset,
                                  "at": ended.isoformat() if ended else None, "status": ENDED,
                                  "ended_at": ended.isoformat() if ended else None})


@routes.get("/v1/live/{live_id}/events")
async def event_stream(request: web.Request) -> web.StreamResponse:
    """Server-Sent Events: the state (or, with Last-Event-ID, what was missed), then each change.

    Event ids are the session's sequence numbers; a `: hb` comment is sent every heartbeat
    interval; the stream ends after the `end` event. A client that reconnects once it has the
    `end` (Last-Event-ID: the end's id) gets 204 No Content: the status that tells a standard
    EventSource to stop reconnecting.
    """
    session_id = path_id(request, "live_id")
    last_id = _last_event_id(request)
    service = request.app[LIVE]
    hub = service.hub
    base = _base(request)
    who = hub.viewer_keys.of(request.remote, request.cookies.get(VIEWER_COOKIE))
    viewer, state = await hub.join(session_id, who)  # 404 for an unknown session
    if state.status == ENDED and last_id == state.seq:  # the viewer has seen everything, the end too
        hub.leave(viewer)
        done = web.Response(status=204, headers={"Cache-Control": "no-store"})
        allow_cross_origin(done.headers)
        return done
    response = web.StreamResponse(status=200, headers=SSE_HEADERS)
    allow_cross_origin(response.headers)  # prepared here: the CORS middleware would be too late
    try:
        first: list[bytes] = [b"retry: 2000\n\n"]
        resumed = last_id is not None and last_id <= state.seq <= last_id + MAX_RESUME_EVENTS
        replayed_end = False
        if resumed:
            assert last_id is not None
            missed = await service.events_between(session_id, last_id, state.seq) \
                if last_id < state.seq else []
            first.extend(sse(e.seq, e.type, e.to_json(base)) for e in missed)
            replayed_end = any(e.type == "end" for e in missed)
        else:
            first.append(sse(state.seq, "state", state.to_json(base)))
        ended = state.status == ENDED
        if ended and not replayed_end:
            first.append(_end_chunk(state))
        chunked = request.version >= HttpVersion11
        if chunked:
            response.enable_chunked_encoding()
        await response.prepare(request)
        await response.write(b"".join(first))
        transport = body_transport(request, response)  # the hub writes to it directly
        if not ended and transport is not None and viewer.attach(transport, chunked):
            await viewer.done  # the hub writes each change straight to the transport
        await response.write_eof()
    except ConnectionError:  # the viewer went away
        pass
    finally:
        hub.leave(viewer)
    return response


def setup_routes(app: web.Application) -> None:
    app.add_routes(routes)
