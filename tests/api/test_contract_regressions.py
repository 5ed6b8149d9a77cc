"""What schemathesis found where the server and its contract (schemas/openapi.yaml) disagreed,
each kept as the test that would have caught it (tests/contract/test_schemathesis.py)."""

from __future__ import annotations

from aiohttp import ClientSession

from support.api import AccountFactory, Api
from support.domains import pending_shop
from support.live_data import live_with_products, open_stream, seller_with_products


async def test_an_empty_query_value_is_malformed_not_absent(make_account: AccountFactory) -> None:
    """`?limit=` is not an integer (the contract says integer): 400, where it used to mean "absent"."""
    seller = await make_account("seller")
    creator = await make_account("creator")
    for api, query in ((seller, "/api/v1/products?limit="), (seller, "/api/v1/shops?after="),
                       (creator, "/api/v1/marketplace/plans?shop_id="),
                       (creator, "/api/v1/marketplace/plans?min_rate="),
                       (seller, "/api/v1/reports/affiliates?to=")):
        reply = await api.get(query)
        assert (reply.status, reply.error_code) == (400, "invalid_query"), (query, reply.body)
    analyst = await make_account("analyst")
    reply = await analyst.get(f"/api/v1/stats/creators/{creator.account_id}?from=")
    assert reply.status == 422 and reply.body["error"]["details"][0]["field"] == "from", reply.body


async def test_pages_refuse_a_malformed_url_before_asking_to_sign_in(anon: Api) -> None:
    """A malformed page URL was a 303 to /signin when signed out: its 400 (or 404) comes first."""
    for path in ("/studio/videos/-3.7e-56", "/studio/live/x", "/dashboard/videos/0"):
        assert (await anon.get(path)).status == 400, path
    assert (await anon.get("/dashboard/nope/1")).status == 404
    reply = await anon.get("/studio/videos/7")
    assert reply.status == 303 and reply.headers["Location"] == "/signin?next=/studio/videos/7"


async def test_an_empty_last_event_id_is_malformed(make_account: AccountFactory, http: ClientSession,
                                                   base_url: str) -> None:
    host, ids = await seller_with_products(make_account, 1)
    live_id = await live_with_products(host, ids, start=True)
    for headers, query in (({"Last-Event-ID": ""}, ""), ({}, "?last_event_id=")):
        async with http.get(f"{base_url}/v1/live/{live_id}/events{query}", headers=headers) as resp:
            assert resp.status == 400 and (await resp.json())["error"]["code"] == "invalid_last_event_id"


async def test_the_end_event_of_a_live_that_has_ended_reads_like_the_stored_one(
        make_account: AccountFactory, http: ClientSession, base_url: str) -> None:
    """A late viewer's `end` lacked `offset_s` and `at` (the contract's LiveEvent requires them)."""
    host, ids = await seller_with_products(make_account, 1)
    live_id = await live_with_products(host, ids, start=True)
    ended = (await host.post(f"/api/v1/live/{live_id}/end")).body
    async with open_stream(http, base_url, live_id) as stream:
        assert (await stream.next()).event == "state"  # type: ignore[union-attr]
        end = await stream.next()
    assert end is not None and end.event == "end"
    assert end.data["at"] == ended["ended_at"] and end.data["offset_s"] >= 0
    assert set(end.data) == {"seq", "type", "offset_s", "at", "status", "ended_at"}


async def test_a_conversion_without_click_or_viewer_names_its_rule(make_account: AccountFactory) -> None:
    """The rule's code was `required`, a JSON Schema keyword: it read as the schema refusing a valid body."""
    seller = await make_account("seller")
    shop, _ = await pending_shop(seller, ["acme.example"])
    reply = await seller.post("/api/v1/conversions", {"shop_id": shop["id"], "order_id": "A", "amount": "1.00",
                                                      "currency": "EUR"})
    assert reply.status == 422 and reply.body["error"]["details"][0]["code"] == "click_or_viewer_required", \
        reply.body
