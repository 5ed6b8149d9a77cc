"""Promotion plans and enrolment over the real HTTP API; PROMOTION_RIGHTS and terms_lookup
through the running app."""

from __future__ import annotations

from typing import Any

import asyncpg
from aiohttp.test_utils import TestServer

from shoplink.auth.models import Principal, Role
from shoplink.changes import Change
from shoplink.errors import ValidationFailed
from shoplink.keys import AFFILIATES, PROMOTION_RIGHTS

from support.affiliate_data import Clock, create_plan, seller_with_products
from support.api import AccountFactory, Api


def _clock(server: TestServer) -> Clock:
    clock = Clock()
    server.app[AFFILIATES].now = clock
    return clock


def _creator(api: Api) -> Principal:
    assert api.account_id is not None
    return Principal(api.account_id, "creator", frozenset({Role.CREATOR}))


async def _check(server: TestServer, creator: Api, product_id: int) -> Any:
    try:
        return await server.app[PROMOTION_RIGHTS].check(_creator(creator), product_id)
    except ValidationFailed as exc:
        return exc.details[0]["code"]


async def test_plan_validation(server: TestServer, make_account: AccountFactory) -> None:
    _clock(server)
    seller, _, products = await seller_with_products(make_account, prices=["10.00", "20.00"])
    other, _, foreign = await seller_with_products(make_account, prices=["5.00"],
                                                   domain="other.example")
    body = {"name": "P", "kind": "open", "rate": "10.00",
            "products": [{"product_id": products[0]}]}
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"rate": "0.50"}, 422, "rate"),
        ({"rate": "80.01"}, 422, "rate"),
        ({"rate": "12.345"}, 422, "rate"),
        ({"kind": "secret"}, 422, "kind"),
        ({"products": [{"product_id": foreign[0]}]}, 422, "products.0.product_id"),
        ({"products": [{"product_id": 999_999}]}, 422, "products.0.product_id"),
        ({"products": [{"product_id": products[0]}, {"product_id": products[0]}]}, 422,
         "products.1.product_id"),
        ({"products": [{"product_id": products[0], "rate": "95"}]}, 422, "products.0.rate"),
        ({"starts_at": "2030-02-01T00:00:00Z", "ends_at": "2030-01-15T00:00:00Z"}, 422, "ends_at"),
        ({"ends_at": "2029-06-01T00:00:00Z"}, 422, "ends_at"),
        ({"starts_at": "2030-02-01T00:00:00"}, 422, "starts_at"),
        ({"extra": 1}, 422, "extra"),
    ]
    for change, status, field in cases:
        reply = await seller.post("/api/v1/plans", {**body, **change})
        assert reply.status == status, (change, reply.body)
        assert reply.body["error"]["details"][0]["field"] == field, (change, reply.body)
    creator = await make_account("creator")
    assert (await creator.post("/api/v1/plans", body)).status == 403
    # nothing was stored
    assert (await seller.get("/api/v1/plans")).body["items"] == []
    plan = await create_plan(seller, products, rate="12.50",
                             ends_at="2030-03-01T00:00:00+01:00")
    assert plan["rate"] == "12.50" and plan["rate_bp"] == 1250 and plan["status"] == "active"
    assert plan["ends_at"] == "2030-02-28T23:00:00+00:00"
    # another seller neither sees nor changes it
    assert (await other.get(f"/api/v1/plans/{plan['id']}")).status == 404
    assert (await other.post(f"/api/v1/plans/{plan['id']}/pause")).status == 404
    # a product of another seller cannot be added later either
    reply = await seller.post(f"/api/v1/plans/{plan['id']}/products", {"product_id": foreign[0]})
    assert reply.status == 422 and reply.body["error"]["code"] == "validation_failed"


async def test_transitions(server: TestServer, make_account: AccountFactory) -> None:
    _clock(server)
    seller, _, products = await seller_with_products(make_account, prices=["10.00"])
    plan = await create_plan(seller, products)
    url = f"/api/v1/plans/{plan['id']}"
    assert (await seller.post(f"{url}/resume")).status == 409
    reply = await seller.post(f"{url}/pause")
    assert reply.status == 200 and reply.body["status"] == "paused"
    assert (await seller.post(f"{url}/pause")).body["error"]["code"] == "illegal_transition"
    assert (await seller.post(f"{url}/resume")).body["status"] == "active"
    assert (await seller.post(f"{url}/end")).body["status"] == "ended"
    for action in ("pause", "resume", "end"):
        reply = await seller.post(f"{url}/{action}")
        assert reply.status == 409, action
    assert (await seller.patch(url, {"name": "x"})).status == 409
    assert (await seller.post(f"{url}/rate-changes", {"rate": "20"})).status == 409


async def test_enrolment_and_promotion_rights(server: TestServer, make_account: AccountFactory) -> None:
    clock = _clock(server)
    seller, shop_id, products = await seller_with_products(make_account, prices=["10.00", "5.00"])
    open_plan = await create_plan(seller, [products[0]], rate="15.00")
    targeted = await create_plan(seller, [products[1]], kind="targeted")
    alice = await make_account("creator")
    bob = await make_account("creator")

    # marketplace: open plans only, filters
    market = await alice.get(f"/api/v1/marketplace/plans?shop_id={shop_id}")
    assert [p["id"] for p in market.body["items"]] == [open_plan["id"]]
    assert (await alice.get("/api/v1/marketplace/plans?min_rate=15.5")).body["items"] == []
    assert len((await alice.get("/api/v1/marketplace/plans?min_rate=15")).body["items"]) == 1
    assert (await alice.get(f"/api/v1/marketplace/plans?product_id={products[1]}")).body[
        "items"] == []
    assert (await alice.get("/api/v1/marketplace/plans?min_rate=abc")).status == 400
    assert (await seller.get("/api/v1/marketplace/plans")).status == 403

    # before enrolment: not promotable
    assert await _check(server, alice, products[0]) == "not_promotable"
    join = await alice.post(f"/api/v1/plans/{open_plan['id']}/join")
    assert join.status == 201 and join.body["status"] == "enrolled"
    assert (await alice.post(f"/api/v1/plans/{open_plan['id']}/join")).status == 409
    right = await _check(server, alice, products[0])
    assert right.plan_id == open_plan["id"] and right.product.id == products[0]
    # the open plan does not cover the targeted plan's product
    assert await _check(server, alice, products[1]) == "not_promotable"

    # targeted: 403 without invitation; creators not invited do not even see it
    reply = await bob.post(f"/api/v1/plans/{targeted['id']}/join")
    assert reply.status == 403 and reply.body["error"]["code"] == "invitation_required"
    assert (await bob.get(f"/api/v1/plans/{targeted['id']}")).status == 404
    assert (await bob.post(f"/api/v1/plans/{targeted['id']}/invitation/accept")).status == 404
    assert (await seller.post(f"/api/v1/plans/{open_plan['id']}/invitations",
                              {"creator_id": bob.account_id})).status == 409
    assert (await seller.post(f"/api/v1/plans/{targeted['id']}/invitations",
                              {"creator_id": 999_999})).status == 422
    for creator in (alice, bob):
        reply = await seller.post(f"/api/v1/plans/{targeted['id']}/invitations",
                                  {"creator_id": creator.account_id})
        assert reply.status == 201 and reply.body["status"] == "invited"
    invitations = (await bob.get("/api/v1/me/invitations")).body["items"]
    assert [i["plan_id"] for i in invitations] == [targeted["id"]]
    assert (await bob.get(f"/api/v1/plans/{targeted['id']}")).status == 200
    assert (await alice.post(f"/api/v1/plans/{targeted['id']}/invitation/decline")).body[
        "status"] == "declined"
    assert (await alice.post(f"/api/v1/plans/{targeted['id']}/join")).status == 403
    assert (await bob.post(f"/api/v1/plans/{targeted['id']}/invitation/accept")).body[
        "status"] == "enrolled"
    assert (await _check(server, bob, products[1])).plan_id == targeted["id"]
    assert await _check(server, alice, products[1]) == "not_promotable"
    enrolments = (await seller.get(f"/api/v1/plans/{targeted['id']}/enrolments")).body["items"]
    assert {(e["creator_id"], e["status"]) for e in enrolments} == {
        (alice.account_id, "declined"), (bob.account_id, "enrolled")}
    names = {e["creator_id"]: e["creator_name"] for e in enrolments}  # the seller sees them by name
    assert names[alice.account_id] == (await alice.get("/api/v1/me")).body["name"]
    assert [p["plan_id"] for p in (await bob.get("/api/v1/me/plans")).body["items"]] == [
        targeted["id"]]

    # leaving ends the right
    assert (await bob.post(f"/api/v1/plans/{targeted['id']}/leave")).body["status"] == "left"
    assert (await bob.post(f"/api/v1/plans/{targeted['id']}/leave")).status == 409
    assert await _check(server, bob, products[1]) == "not_promotable"

    # paused: no right, no joining; resumed: right again
    assert (await seller.post(f"/api/v1/plans/{open_plan['id']}/pause")).status == 200
    assert await _check(server, alice, products[0]) == "not_promotable"
    assert (await bob.post(f"/api/v1/plans/{open_plan['id']}/join")).body["error"][
        "code"] == "plan_paused"
    assert (await seller.post(f"/api/v1/plans/{open_plan['id']}/resume")).status == 200
    assert (await _check(server, alice, products[0])).plan_id == open_plan["id"]

    # the end date passes: the plan has ended by itself
    reply = await seller.patch(f"/api/v1/plans/{open_plan['id']}",
                               {"ends_at": "2030-01-10T00:00:00Z"})
    assert reply.status == 200
    clock.advance(days=10)
    assert await _check(server, alice, products[0]) == "not_promotable"
    plan = (await seller.get(f"/api/v1/plans/{open_plan['id']}")).body
    assert plan["status"] == "ended"
    assert (await bob.post(f"/api/v1/plans/{open_plan['id']}/join")).status == 409
    assert (await alice.get("/api/v1/marketplace/plans")).body["items"] == []


async def test_ended_plan_denies_anchoring(server: TestServer, make_account: AccountFactory) -> None:
    _clock(server)
    seller, _, products = await seller_with_products(make_account, prices=["10.00"])
    plan = await create_plan(seller, products)
    creator = await make_account("creator")
    await creator.post(f"/api/v1/plans/{plan['id']}/join")
    assert (await _check(server, creator, products[0])).plan_id == plan["id"]
    await seller.post(f"/api/v1/plans/{plan['id']}/end")
    assert await _check(server, creator, products[0]) == "not_promotable"
    # the seller anchors their own product without a plan
    own = Principal(seller.account_id or 0, "s", frozenset({Role.SELLER}))
    assert (await server.app[PROMOTION_RIGHTS].check(own, products[0])).plan_id is None


async def test_rate_cut_notice_and_terms_snapshot(server: TestServer, make_account: AccountFactory) -> None:
    clock = _clock(server)
    service = server.app[AFFILIATES]
    seller, _, products = await seller_with_products(make_account, prices=["10.00", "30.00"])
    plan = await create_plan(seller, products, rate="20.00")
    pid = plan["id"]
    early = await make_account("creator")
    assert (await early.post(f"/api/v1/plans/{pid}/join")).status == 201

    terms = await service.terms_lookup(pid, products[0], clock.ms(), creator_id=early.account_id)
    assert (terms.rate_bp, terms.source, terms.valid_until_ms) == (2000, "plan_rate", None)
    assert terms.snapshot() == {"rate_bp": 2000, "source": "plan_rate"}

    clock.advance(days=1)
    cut = await seller.post(f"/api/v1/plans/{pid}/rate-changes", {"rate": "12.00"})
    assert cut.status == 201 and cut.body["kind"] == "cut"
    assert cut.body["effective_at"] == "2030-02-01T12:00:00+00:00"  # 30 days' notice
    late = await make_account("creator")
    await late.post(f"/api/v1/plans/{pid}/join")

    # the cache is refreshed by the Change("plan", id) the service published
    clock.advance(days=1)
    terms = await service.terms_lookup(pid, products[0], clock.ms(), creator_id=early.account_id)
    assert terms.rate_bp == 2000 and terms.valid_until_ms is not None
    assert (await service.terms_lookup(pid, products[0], clock.ms(),
                                       creator_id=late.account_id)).rate_bp == 1200
    assert (await service.terms_lookup(pid, products[0], clock.ms())).rate_bp == 2000
    clock.advance(days=29)
    assert clock.ms() >= terms.valid_until_ms
    assert (await service.terms_lookup(pid, products[0], clock.ms(),
                                       creator_id=early.account_id)).rate_bp == 1200

    # a raise (here: a product override above the plan rate) applies at once to everyone
    raise_ = await seller.post(f"/api/v1/plans/{pid}/rate-changes",
                               {"rate": "25.00", "product_id": products[1]})
    assert raise_.status == 201 and raise_.body["kind"] == "raise_or_same"
    terms = await service.terms_lookup(pid, products[1], clock.ms(), creator_id=early.account_id)
    assert (terms.rate_bp, terms.source) == (2500, "product_override")
    history = (await seller.get(f"/api/v1/plans/{pid}/rate-changes")).body["items"]
    assert [(h["product_id"], h["rate"]) for h in history] == [
        (None, "20.00"), (None, "12.00"), (products[1], "25.00")]
    assert (await seller.post(f"/api/v1/plans/{pid}/rate-changes",
                              {"rate": "5", "product_id": 999_999})).status == 422
    assert (await seller.post(f"/api/v1/plans/{pid}/rate-changes", {"rate": None})).status == 422

    # leave / pause / end: the reason is recorded instead of a rate
    await early.post(f"/api/v1/plans/{pid}/leave")
    terms = await service.terms_lookup(pid, products[0], clock.ms(), creator_id=early.account_id)
    assert (terms.rate_bp, terms.source) == (None, "not_enrolled")
    await seller.post(f"/api/v1/plans/{pid}/pause")
    assert (await service.terms_lookup(pid, products[0], clock.ms(),
                                       creator_id=late.account_id)).source == "plan_paused"
    await seller.post(f"/api/v1/plans/{pid}/end")
    assert (await service.terms_lookup(pid, products[0], clock.ms(),
                                       creator_id=late.account_id)).source == "plan_ended"


async def test_terms_cache_forgets_on_change_from_elsewhere(server: TestServer, make_account: AccountFactory,
                                                           pool: asyncpg.Pool) -> None:
    """Another instance's change arrives as a Change on the bus: the cached terms are dropped."""
    clock = _clock(server)
    service = server.app[AFFILIATES]
    seller, _, products = await seller_with_products(make_account, prices=["10.00"])
    plan = await create_plan(seller, products, rate="20.00")
    creator = await make_account("creator")
    await creator.post(f"/api/v1/plans/{plan['id']}/join")
    args = (plan["id"], products[0], clock.ms())
    assert (await service.terms_lookup(*args, creator_id=creator.account_id)).rate_bp == 2000
    async with pool.acquire() as con:  # a write this instance missed
        await con.execute("UPDATE plans SET status = 'paused' WHERE id = $1", plan["id"])
    assert (await service.terms_lookup(*args, creator_id=creator.account_id)).rate_bp == 2000
    service.on_change(Change("plan", plan["id"]))
    assert (await service.terms_lookup(*args, creator_id=creator.account_id)).source == \
        "plan_paused"
