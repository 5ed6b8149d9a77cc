"""HTTP: promotion plans (sellers), marketplace and enrolment (creators), conversions (shops),
and reports."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_CEILING, Decimal, InvalidOperation
from typing import Any

from aiohttp import web

from shoplink.affiliates.reports import Period, to_csv
from shoplink.affiliates.statements import DUE_CSV, EARNINGS_CSV
from shoplink.affiliates.statements import to_csv as statements_csv
from shoplink.errors import BadRequest, field_error
from shoplink.http import json_response, page, page_params, path_id, principal, query_int
from shoplink.keys import (
    AFFILIATE_REPORTS,
    AFFILIATES,
    AUTH,
    CONVERSIONS,
    SETTINGS,
    SETTLEMENT,
    STATEMENTS,
)
from shoplink.times import parse_utc
from shoplink.validation import read_json

routes = web.RouteTableDef()
_MAX_ID = 2**63 - 1
DEFAULT_REPORT_DAYS = 30
MAX_REPORT_DAYS = 731
ATTRIBUTIONS = ("pending", "attributed", "unattributed")


def _limit(request: web.Request) -> int:
    return request.app[SETTINGS].max_body_bytes


def _optional_id(request: web.Request, name: str) -> int | None:
    value = query_int(request, name, 0, 1, _MAX_ID)
    return value or None


# ---- plans (sellers) -------------------------------------------------------------------------

@routes.post("/api/v1/plans")
async def create_plan(request: web.Request) -> web.Response:
    body = await read_json(request, "plan_create", _limit(request))
    plan = await request.app[AFFILIATES].create_plan(principal(request), body)
    return json_response(plan, status=201)


@routes.get("/api/v1/plans")
async def list_plans(request: web.Request) -> web.Response:
    limit, after = page_params(request)
    items = await request.app[AFFILIATES].list_plans(principal(request), limit, after)
    next_after = items[-1]["id"] if len(items) == limit else None
    return json_response({"items": items, "next_after": next_after})


@routes.get("/api/v1/plans/{plan_id}")
async def get_plan(request: web.Request) -> web.Response:
    plan = await request.app[AFFILIATES].get_plan(principal(request), path_id(request, "plan_id"))
    return json_response(plan)


@routes.patch("/api/v1/plans/{plan_id}")
async def update_plan(request: web.Request) -> web.Response:
    body = await read_json(request, "plan_update", _limit(request))
    plan = await request.app[AFFILIATES].update_plan(principal(request),
                                                     path_id(request, "plan_id"), body)
    return json_response(plan)


@routes.post("/api/v1/plans/{plan_id}/products")
async def add_product(request: web.Request) -> web.Response:
    body = await read_json(request, "plan_product_add", _limit(request))
    plan = await request.app[AFFILIATES].add_product(principal(request),
                                                     path_id(request, "plan_id"), body)
    return json_response(plan, status=201)


@routes.post("/api/v1/plans/{plan_id}/rate-changes")
async def change_rate(request: web.Request) -> web.Response:
    body = await read_json(request, "plan_rate_change", _limit(request))
    change = await request.app[AFFILIATES].change_rate(principal(request),
                                                       path_id(request, "plan_id"), body)
    return json_response(change.to_json(), status=201)


@routes.get("/api/v1/plans/{plan_id}/rate-changes")
async def rate_history(request: web.Request) -> web.Response:
    changes = await request.app[AFFILIATES].rate_history(principal(request),
                                                         path_id(request, "plan_id"))
    return json_response({"items": [c.to_json() for c in changes]})


async def _transition(request: web.Request, action: str) -> web.Response:
    plan = await request.app[AFFILIATES].transition(principal(request),
                                                    path_id(request, "plan_id"), action)
    return json_response(plan)


@routes.post("/api/v1/plans/{plan_id}/pause")
async def pause_plan(request: web.Request) -> web.Response:
    return await _transition(request, "pause")


@routes.post("/api/v1/plans/{plan_id}/resume")
async def resume_plan(request: web.Request) -> web.Response:
    return await _transition(request, "resume")


@routes.post("/api/v1/plans/{plan_id}/end")
async def end_plan(request: web.Request) -> web.Response:
    return await _transition(request, "end")


@routes.post("/api/v1/plans/{plan_id}/invitations")
async def invite(request: web.Request) -> web.Response:
    body = await read_json(request, "plan_invite", _limit(request))
    enrolment = await request.app[AFFILIATES].invite(principal(request),
                                                     path_id(request, "plan_id"), body["creator_id"])
    return json_response(enrolment.to_json(), status=201)


@routes.get("/api/v1/plans/{plan_id}/enrolments")
async def list_enrolments(request: web.Request) -> web.Response:
    enrolments = await request.app[AFFILIATES].list_enrolments(principal(request),
                                                               path_id(request, "plan_id"))
    names = await request.app[AUTH].account_names([e.creator_id for e in enrolments])
    return json_response({"items": [{**e.to_json(), "creator_name": names.get(e.creator_id)}
                                    for e in enrolments]})


# ---- marketplace and enrolment (creators) ----------------------------------------------------

@routes.get("/api/v1/marketplace/plans")
async def marketplace(request: web.Request) -> web.Response:
    limit, after = page_params(request)
    min_rate = request.query.get("min_rate")
    min_rate_bp = None
    if min_rate is not None:
        try:
            scaled = Decimal(min_rate) * 100
        except InvalidOperation:
            scaled = Decimal("NaN")
        if not scaled.is_finite() or not 0 <= scaled <= 10_000:
            raise BadRequest("min_rate must be a percentage between 0 and 100, e.g. 12.5",
                             code="invalid_query")
        min_rate_bp = int(scaled.to_integral_value(rounding=ROUND_CEILING))
    items, next_after = await request.app[AFFILIATES].marketplace(
        principal(request), shop_id=_optional_id(request, "shop_id"),
        product_id=_optional_id(request, "product_id"), min_rate_bp=min_rate_bp,
        limit=limit, after_id=after)
    return json_response({"items": items, "next_after": next_after})


@routes.post("/api/v1/plans/{plan_id}/join")
async def join(request: web.Request) -> web.Response:
    enrolment = await request.app[AFFILIATES].join(principal(request), path_id(request, "plan_id"))
    return json_response(enrolment.to_json(), status=201)


@routes.post("/api/v1/plans/{plan_id}/invitation/accept")
async def accept(request: web.Request) -> web.Response:
    enrolment = await request.app[AFFILIATES].accept(principal(request), path_id(request, "plan_id"))
    return json_response(enrolment.to_json())


@routes.post("/api/v1/plans/{plan_id}/invitation/decline")
async def decline(request: web.Request) -> web.Response:
    enrolment = await request.app[AFFILIATES].decline(principal(request),
                                                      path_id(request, "plan_id"))
    return json_response(enrolment.to_json())


@routes.post("/api/v1/plans/{plan_id}/leave")
async def leave(request: web.Request) -> web.Response:
    enrolment = await request.app[AFFILIATES].leave(principal(request), path_id(request, "plan_id"))
    return json_response(enrolment.to_json())


@routes.get("/api/v1/me/plans")
async def my_plans(request: web.Request) -> web.Response:
    items = await request.app[AFFILIATES].my_enrolments(principal(request), ("enrolled",))
    return json_response({"items": items})


@routes.get("/api/v1/me/invitations")
async def my_invitations(request: web.Request) -> web.Response:
    items = await request.app[AFFILIATES].my_enrolments(principal(request), ("invited",))
    return json_response({"items": items})


# ---- conversions (a seller's server) ---------------------------------------------------------

@routes.post("/api/v1/conversions")
async def report_conversion(request: web.Request) -> web.Response:
    body = await read_json(request, "conversion_create", _limit(request))
    service = request.app[CONVERSIONS]
    conversion, created = await service.report(principal(request), body)
    return json_response(service.to_json(conversion), status=201 if created else 200)


@routes.get("/api/v1/conversions")
async def list_conversions(request: web.Request) -> web.Response:
    limit, after = page_params(request)
    attribution = request.query.get("attribution")
    if attribution is not None and attribution not in ATTRIBUTIONS:
        raise BadRequest(f"attribution must be one of {', '.join(ATTRIBUTIONS)}",
                         code="invalid_query")
    service = request.app[CONVERSIONS]
    items = await service.list_visible(principal(request), plan_id=_optional_id(request, "plan_id"),
                               attribution=attribution, after_id=after, limit=limit)
    return json_response(page([service.to_json(c) for c in items], limit))


@routes.get("/api/v1/conversions/{conversion_id}")
async def get_conversion(request: web.Request) -> web.Response:
    service = request.app[CONVERSIONS]
    conversion = await service.get(principal(request), path_id(request, "conversion_id"))
    return json_response(service.to_json(conversion))


@routes.post("/api/v1/conversions/{conversion_id}/refund")
async def refund_conversion(request: web.Request) -> web.Response:
    body: dict[str, Any] = {}  # no body at all: a whole refund (as before partial refunds)
    if request.body_exists:
        body = await read_json(request, "conversion_refund", _limit(request))
    service = request.app[CONVERSIONS]
    conversion, _ = await service.refund(principal(request), path_id(request, "conversion_id"),
                                         body)
    return json_response(service.to_json(conversion))


@routes.post("/api/v1/conversions/{conversion_id}/freeze")
async def freeze_conversion(request: web.Request) -> web.Response:
    body = await read_json(request, "conversion_hold", _limit(request))
    conversion = await request.app[SETTLEMENT].freeze(
        principal(request), path_id(request, "conversion_id"), body["reason"])
    return json_response(request.app[CONVERSIONS].to_json(conversion))


@routes.post("/api/v1/conversions/{conversion_id}/unfreeze")
async def unfreeze_conversion(request: web.Request) -> web.Response:
    body = await read_json(request, "conversion_hold", _limit(request))
    conversion = await request.app[SETTLEMENT].unfreeze(
        principal(request), path_id(request, "conversion_id"), body["reason"])
    return json_response(request.app[CONVERSIONS].to_json(conversion))


# ---- payouts and statements ------------------------------------------------------------------

@routes.post("/api/v1/payouts")
async def record_payout(request: web.Request) -> web.Response:
    body = await read_json(request, "payout_create", _limit(request))
    payout, created = await request.app[SETTLEMENT].pay(principal(request), body)
    return json_response(payout.to_json(), status=201 if created else 200)


@routes.get("/api/v1/payouts/{payout_id}")
async def get_payout(request: web.Request) -> web.Response:
    payout = await request.app[SETTLEMENT].get_payout(principal(request),
                                                      path_id(request, "payout_id"))
    return json_response(payout.to_json())


async def _earnings(request: web.Request) -> dict[str, Any]:
    return await request.app[STATEMENTS].earnings(
        principal(request), period=_period(request),
        creator_id=_optional_id(request, "creator_id"), plan_id=_optional_id(request, "plan_id"))


def _csv(text: str, name: str) -> web.Response:
    return web.Response(text=text, content_type="text/csv", charset="utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})


@routes.get("/api/v1/statements/earnings")
async def earnings_statement(request: web.Request) -> web.Response:
    return json_response(await _earnings(request))


@routes.get("/api/v1/statements/earnings.csv")
async def earnings_statement_csv(request: web.Request) -> web.Response:
    """One line per plan and currency (RFC 4180: CRLF line ends)."""
    statement = await _earnings(request)
    start, end = (datetime.fromisoformat(statement[k]) for k in ("from", "to"))
    return _csv(statements_csv(statement["items"], EARNINGS_CSV),
                f"earnings-{statement['creator_id']}-{start:%Y%m%d}-{end:%Y%m%d}.csv")


@routes.get("/api/v1/statements/payouts-due")
async def payouts_due(request: web.Request) -> web.Response:
    return json_response(await request.app[STATEMENTS].payouts_due(principal(request)))


@routes.get("/api/v1/statements/payouts-due.csv")
async def payouts_due_csv(request: web.Request) -> web.Response:
    """One line per creator and currency (RFC 4180: CRLF line ends)."""
    statement = await request.app[STATEMENTS].payouts_due(principal(request))
    return _csv(statements_csv(statement["items"], DUE_CSV),
                f"payouts-due-{statement['seller_id']}.csv")


# ---- reports ---------------------------------------------------------------------------------

def _query_time(request: web.Request, name: str) -> datetime | None:
    raw = request.query.get(name)
    if raw is None:
        return None
    try:
        if len(raw) == 10:
            return datetime.combine(date.fromisoformat(raw), datetime.min.time(), UTC)
        return parse_utc(raw)
    except ValueError:
        raise BadRequest(f"{name} must be a date (2025-01-31) or an ISO 8601 date-time",
                         code="invalid_query") from None


def _period(request: web.Request) -> Period:
    end = _query_time(request, "to") or request.app[AFFILIATES].now()
    start = _query_time(request, "from") or end - timedelta(days=DEFAULT_REPORT_DAYS)
    if start >= end:
        raise field_error("from", "must be before `to`", code="empty_period")
    if end - start > timedelta(days=MAX_REPORT_DAYS):
        raise field_error("from", f"a report covers at most {MAX_REPORT_DAYS} days", code="period_too_long")
    return Period(start, end)


async def _report(request: web.Request) -> tuple[str, Period, list[dict[str, Any]]]:
    group_by = request.query.get("group_by", "plan")
    if group_by not in ("plan", "creator"):
        raise BadRequest("group_by must be plan or creator", code="invalid_query")
    period = _period(request)
    items = await request.app[AFFILIATE_REPORTS].report(
        principal(request), group_by=group_by, period=period,
        plan_id=_optional_id(request, "plan_id"), creator_id=_optional_id(request, "creator_id"))
    return group_by, period, items


@routes.get("/api/v1/reports/affiliates")
async def affiliate_report(request: web.Request) -> web.Response:
    group_by, period, items = await _report(request)
    return json_response({"group_by": group_by, "from": period.start.isoformat(),
                          "to": period.end.isoformat(), "items": items})


@routes.get("/api/v1/reports/affiliates.csv")
async def affiliate_report_csv(request: web.Request) -> web.Response:
    """The same report as CSV (RFC 4180: CRLF line ends), one line per plan or creator and currency."""
    group_by, period, items = await _report(request)
    name = f"affiliates-by-{group_by}-{period.start:%Y%m%d}-{period.end:%Y%m%d}.csv"
    return _csv(to_csv(items, group_by), name)


def setup_routes(app: web.Application) -> None:
    app.add_routes(routes)
