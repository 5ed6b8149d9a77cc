"""HTTP: /api/v1/stats/... in JSON, and the same documents as CSV at the `.csv` paths (separate
operations, so that generated clients see one content type per operation)."""

from __future__ import annotations

import csv
import io
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from shoplink.analytics import keys as k
from shoplink.analytics.models import ROUTE_KINDS
from shoplink.analytics.service import summarize
from shoplink.errors import field_error
from shoplink.http import ascii_digits, json_response, path_id, principal, query_int
from shoplink.keys import STATS
from shoplink.times import parse_utc

routes = web.RouteTableDef()

SERIES_COLUMNS = ("t", "clicks", *k.CLASSES, *k.OUTCOMES, "impressions", "human_impressions", "views",
                  "human_views", "q25", "q50", "q75", "q100", "ctr")


def _when(request: web.Request, name: str) -> int | None:
    """?from= / ?to=: ISO 8601 (a zone is required, or UTC is assumed) or Unix seconds."""
    raw = request.query.get(name)
    if raw is None:
        return None
    raw = raw.strip()
    if ascii_digits(raw.lstrip("-")):
        value = int(raw)
    else:
        try:  # a "+" of the zone arrives as a space when the client did not encode it
            parsed = parse_utc(raw[:19] + raw[19:].replace(" ", "+"))
        except ValueError:
            raise field_error(name, "expected an ISO 8601 date-time or Unix seconds") from None
        value = int(parsed.timestamp())
    if not 0 <= value < 253402300800:
        raise field_error(name, "out of range")
    return value


def _csv(rows: list[list[Any]], filename: str) -> web.Response:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")  # RFC 4180, as every CSV of the API
    writer.writerows(rows)
    return web.Response(text=out.getvalue(), content_type="text/csv", charset="utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{filename}"'})


View = Callable[[web.Request], Awaitable[web.Response]]


def _entity_view(segment: str, fmt: str) -> View:
    kind = ROUTE_KINDS[segment]

    async def view(request: web.Request) -> web.Response:
        entity_id = path_id(request, "entity_id")
        service = request.app[STATS]
        who = principal(request)
        rng = service.make_range(request.query.get("granularity") or None, _when(request, "from"),
                                 _when(request, "to"))
        doc, counts = await service.entity_stats(who, kind, entity_id, rng)
        if fmt == "json":
            return json_response(doc)
        header = [*SERIES_COLUMNS, *(f"{c}_{o}" for c, o in k.PAIRS)]
        if rng.granularity == "day":
            header.extend(("unique_viewers", "unique_impressions"))
        rows: list[list[Any]] = [header]
        for bucket, item in zip(range(rng.start_s, rng.end_s, rng.size_s), doc["series"], strict=True):
            row = [item[c] for c in SERIES_COLUMNS]
            row.extend(counts.get(bucket) or [0] * len(k.PAIRS))
            if rng.granularity == "day":
                row.extend((item["unique_viewers"], item["unique_impressions"]))
            rows.append(row)
        return _csv(rows, f"{segment}-{entity_id}-{rng.granularity}.csv")

    view.__name__ = f"stats_{segment}_{fmt}"
    return view


def _heatmap_view(fmt: str) -> View:
    async def view(request: web.Request) -> web.Response:
        video_id = path_id(request, "entity_id")
        doc = await request.app[STATS].heatmap(principal(request), video_id)
        if fmt == "json":
            return json_response(doc)
        clicks = {c["second"]: c["clicks"] for c in doc["cells"]}
        shown = {c["second"]: c["impressions"] for c in doc["view_map"]}
        return _csv([["second", "clicks", "impressions"],
                     *([s, clicks.get(s, 0), shown.get(s, 0)] for s in sorted(clicks.keys() | shown.keys()))],
                    f"video-{video_id}-heatmap.csv")

    view.__name__ = f"heatmap_{fmt}"
    return view


def _top_view(segment: str, fmt: str) -> View:
    kind = ROUTE_KINDS[segment]

    async def view(request: web.Request) -> web.Response:
        parent_id = path_id(request, "entity_id")
        limit = query_int(request, "limit", 10, 1, 1000)
        doc = await request.app[STATS].top(principal(request), kind, parent_id, limit)
        if fmt == "json":
            return json_response(doc)
        child = doc["child_kind"]
        return _csv([["rank", f"{child}_id", "clicks", "impressions", "ctr"],
                     *([i["rank"], i[f"{child}_id"], i["clicks"], i["impressions"], i["ctr"]]
                       for i in doc["items"])],
                    f"{segment}-{parent_id}-top-{child}s.csv")

    view.__name__ = f"top_{segment}_{fmt}"
    return view


# The CSV routes first: `{entity_id}` alone would also match "7.csv".
for _fmt, _suffix in (("csv", ".csv"), ("json", "")):
    for _segment in ROUTE_KINDS:
        routes.get(f"/api/v1/stats/{_segment}/{{entity_id}}{_suffix}")(_entity_view(_segment, _fmt))
    routes.get(f"/api/v1/stats/videos/{{entity_id}}/heatmap{_suffix}")(_heatmap_view(_fmt))
    for _segment, _child in (("videos", "anchors"), ("live", "anchors"), ("shops", "products"),
                             ("creators", "products")):
        routes.get(f"/api/v1/stats/{_segment}/{{entity_id}}/top-{_child}{_suffix}")(_top_view(_segment, _fmt))


def setup_routes(app: web.Application) -> None:
    app.add_routes(routes)


__all__ = ["setup_routes", "summarize"]
