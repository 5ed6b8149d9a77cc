"""/r/{code}: the redirect, the event that lands in Redis (validated against the schema),
outcomes, cookies, playback seconds, commission snapshot, metrics."""

from __future__ import annotations

import hmac
import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import asyncpg
import jsonschema
import pytest
from aiohttp import ClientSession
from aiohttp.test_utils import TestServer
from redis.asyncio import Redis

from shoplink.changes import Change
from shoplink.clicks.models import CommissionTerms
from shoplink.keys import CHANGES, CLICK_RESOLVER
from shoplink.paths import SCHEMAS_DIR

from support.api import METRICS_AUTH, AccountFactory, Api, ServerFactory
from support.click_data import (
    archive_anchor,
    insert_anchor,
    insert_live,
    make_shop,
    stream_entries,
    video_anchor,
    wait_for_events,
)
from support.ulid import is_ulid

SCHEMA = json.loads((SCHEMAS_DIR / "click_event.schema.json").read_text())
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA, format_checker=jsonschema.FormatChecker())
TEST_SECRET = "test-secret-key-0123456789abcdef"


def valid(event: dict[str, Any]) -> dict[str, Any]:
    VALIDATOR.validate(event)
    return event


def expected_viewer(cookie: str) -> str:
    key = hmac.digest(TEST_SECRET.encode(), b"shoplink:viewer", "sha256")
    return hmac.digest(key, cookie.encode(), "sha256").hex()[:32]


def cookie_value(set_cookie: str) -> str:
    match = re.match(r"^sl_vid=([0-9a-f]{32});", set_cookie)
    assert match, set_cookie
    return match[1]


async def test_redirect_keeps_the_product_url_and_adds_attribution(
        make_account: AccountFactory, anon: Api, pool: asyncpg.Pool, redis: Redis) -> None:
    shop = await make_shop(await make_account("seller"))
    anchor_id, code, video_id = await video_anchor(pool, shop)
    reply = await anon.get(f"/r/{code}?t=4.5", headers={"User-Agent": "Mozilla/5.0 (iPhone) Safari",
                                                        "Referer": "https://www.tiktok.com/@me/video/1"})
    assert reply.status == 302
    assert reply.headers["Cache-Control"] == "no-store, private"
    location = reply.headers["Location"]
    event_id = location.rsplit("sl_click=", 1)[1].split("#")[0]
    assert is_ulid(event_id)
    publisher = shop.seller.account_id
    assert location == (f"https://acme.example/p/shoe?color=red&utm_source=shoplink&utm_medium=video"
                        f"&utm_campaign=publisher-{publisher}&utm_content={code}&sl_click={event_id}#reviews")
    set_cookie = reply.headers["Set-Cookie"]
    assert "HttpOnly" in set_cookie and "SameSite=Lax" in set_cookie and "Path=/" in set_cookie
    assert "Max-Age=63072000" in set_cookie and "Secure" not in set_cookie  # served over http
    cookie = cookie_value(set_cookie)

    (key, event), = [(k, e) for k, e in await _entries(redis, 1)]
    valid(event)
    assert key == f"shoplink:clicks:{{{anchor_id % 4}}}"
    assert event["event_id"] == event_id
    assert event["outcome"] == "redirected" and event["surface"] == "video"
    assert (event["anchor_id"], event["video_id"], event["product_id"], event["shop_id"]) == (
        anchor_id, video_id, shop.product_ids[0], shop.shop_id)
    assert event["creator_id"] == publisher and event["plan_id"] is None and event["commission"] is None
    assert event["playback_s"] == 4.5 and event["t_status"] == "ok"
    assert event["viewer"] == expected_viewer(cookie) and event["new_viewer"] is True
    assert cookie not in json.dumps(event)
    assert event["ua_class"] == "human" and event["referrer_host"] == "www.tiktok.com"
    assert event["net"] is not None and "127.0.0" not in json.dumps(event)
    assert "replayed" not in event


async def _entries(redis: Redis, count: int) -> list[tuple[str, dict[str, Any]]]:
    await wait_for_events(redis, count)
    return await stream_entries(redis)


async def test_returning_viewer_keeps_cookie_and_hash(make_account: AccountFactory, anon: Api, pool: asyncpg.Pool,
                                                      redis: Redis) -> None:
    shop = await make_shop(await make_account("seller"))
    _, code, _ = await video_anchor(pool, shop)
    first = await anon.get(f"/r/{code}")
    cookie = cookie_value(first.headers["Set-Cookie"])
    again = await anon.get(f"/r/{code}", headers={"Cookie": f"theme=dark; sl_vid={cookie}; x=1"})
    assert again.status == 302 and "Set-Cookie" not in again.headers
    forged = await anon.get(f"/r/{code}", headers={"Cookie": "sl_vid=<script>"})
    assert forged.status == 302 and cookie_value(forged.headers["Set-Cookie"]) != cookie
    other = await anon.get(f"/r/{code}", headers={"Cookie": f"xsl_vid={cookie}"})
    assert "Set-Cookie" in other.headers  # a different cookie's value is not ours
    events = [e for _, e in await _entries(redis, 4)]
    events.sort(key=lambda e: e["event_id"])
    assert [e["new_viewer"] for e in events] == [True, False, True, True]
    assert events[0]["viewer"] == events[1]["viewer"] == expected_viewer(cookie)
    assert len({events[0]["viewer"], events[2]["viewer"], events[3]["viewer"]}) == 3


async def test_cookie_is_secure_on_https(
        make_account: AccountFactory, start_server: ServerFactory, http: ClientSession,
        pool: asyncpg.Pool) -> None:
    shop = await make_shop(await make_account("seller"))
    _, code, _ = await video_anchor(pool, shop)
    server = await start_server(public_base_url="https://shop.link")
    viewer = Api(http, str(server.make_url("")), None)
    reply = await viewer.get(f"/r/{code}")
    assert reply.status == 302 and "; Secure" in reply.headers["Set-Cookie"]


@pytest.mark.parametrize(("raw", "status", "value"), [
    (None, "absent", None), ("0", "ok", 0.0), ("29.999", "ok", 29.999), ("30", "ok", 30.0),
    ("30.01", "invalid", None), ("-1", "invalid", None), ("nan", "invalid", None),
    ("inf", "invalid", None), ("1e1", "invalid", None), ("abc", "invalid", None), ("", "invalid", None),
    ("1_0", "invalid", None), ("12.5&t=3", "ok", 12.5)])
async def test_playback_second_is_validated(make_account: AccountFactory, anon: Api, pool: asyncpg.Pool, redis: Redis,
                                            raw: str | None, status: str, value: float | None) -> None:
    shop = await make_shop(await make_account("seller"))
    _, code, _ = await video_anchor(pool, shop, duration_s=30.0)
    reply = await anon.get(f"/r/{code}" + ("" if raw is None else f"?t={raw}"))
    assert reply.status == 302
    (_, event), = await _entries(redis, 1)
    assert (valid(event)["t_status"], event["playback_s"]) == (status, value)


async def test_head_answers_the_redirect_without_counting(make_account: AccountFactory, anon: Api, pool: asyncpg.Pool,
                                                          redis: Redis) -> None:
    shop = await make_shop(await make_account("seller"))
    _, code, _ = await video_anchor(pool, shop)
    head = await anon.request("HEAD", f"/r/{code}")
    assert head.status == 302 and head.headers["Location"].startswith("https://acme.example/p/shoe?")
    assert head.headers["Cache-Control"] == "no-store, private"
    get = await anon.get(f"/r/{code}")
    assert get.status == 302
    events = [e for _, e in await _entries(redis, 1)]
    assert len(events) == 1 and events[0]["event_id"] in get.headers["Location"]


async def test_unknown_code_is_404_and_counted_not_streamed(
        make_account: AccountFactory, anon: Api, redis: Redis, pool: asyncpg.Pool) -> None:
    html = await anon.get("/r/NoSuchCode1")
    assert html.status == 404 and html.headers["Content-Type"].startswith("text/html")
    assert "Location" not in html.headers and "Link not found" in html.body
    assert html.headers["Cache-Control"] == "no-store, private"
    js = await anon.get("/r/NoSuchCode1", headers={"Accept": "application/json"})
    assert js.status == 404 and js.body["error"]["code"] == "not_found"
    bogus = await anon.get("/r/" + "x" * 100)
    assert bogus.status == 404
    shop = await make_shop(await make_account("seller"))
    _, code, _ = await video_anchor(pool, shop)
    assert (await anon.get(f"/r/{code}")).status == 302  # flushed after the unknown ones
    entries = await _entries(redis, 1)
    assert [e["code"] for _, e in entries] == [code]  # junk wrote nothing (docs/security.md)
    text = (await anon.get("/metrics", headers=METRICS_AUTH)).body
    assert 'shoplink_click_redirects_total{outcome="not_found"} 3' in text


async def test_archived_anchor_goes_to_the_shop_fallback_or_410(
        make_account: AccountFactory, anon: Api, pool: asyncpg.Pool, redis: Redis) -> None:
    seller = await make_account("seller")
    with_fallback = await make_shop(seller, fallback_url="https://acme.example/sale?from=link#top")
    _, code, _ = await video_anchor(pool, with_fallback, status="archived")
    reply = await anon.get(f"/r/{code}")
    assert reply.status == 302
    location = reply.headers["Location"]
    assert location.startswith("https://acme.example/sale?from=link&utm_source=shoplink&")
    assert location.endswith("#top")

    without = await make_shop(seller, domains=["acme-two.example"], urls=("https://acme-two.example/p",))
    _, code2, _ = await video_anchor(pool, without, status="archived")
    gone = await anon.get(f"/r/{code2}")
    assert gone.status == 410 and "Location" not in gone.headers
    gone_json = await anon.get(f"/r/{code2}", headers={"Accept": "application/json"})
    assert gone_json.status == 410 and gone_json.body["error"]["code"] == "gone"
    events = sorted((e for _, e in await _entries(redis, 3)), key=lambda e: e["event_id"])
    assert [valid(e)["outcome"] for e in events] == ["fallback", "gone", "gone"]


async def test_delisting_and_archiving_take_effect_at_once(
        make_account: AccountFactory, server: TestServer, anon: Api, pool: asyncpg.Pool, redis: Redis) -> None:
    shop = await make_shop(await make_account("seller"), fallback_url="https://acme.example/")
    anchor_id, code, _ = await video_anchor(pool, shop)
    assert (await anon.get(f"/r/{code}")).headers["Location"].startswith("https://acme.example/p/shoe")
    reply = await shop.seller.patch(f"/api/v1/products/{shop.product_ids[0]}", {"status": "delisted"})
    assert reply.status == 200, reply.body
    fallback = await anon.get(f"/r/{code}")
    assert fallback.headers["Location"].startswith("https://acme.example/?utm_source=shoplink")
    await shop.seller.patch(f"/api/v1/products/{shop.product_ids[0]}", {"status": "active"})
    assert (await anon.get(f"/r/{code}")).headers["Location"].startswith("https://acme.example/p/shoe")
    await archive_anchor(pool, anchor_id)
    await server.app[CHANGES].publish(Change("anchor", anchor_id))  # what the anchors API does
    assert (await anon.get(f"/r/{code}")).headers["Location"].startswith("https://acme.example/?")
    outcomes = [e["outcome"] for e in sorted((e for _, e in await _entries(redis, 4)),
                                               key=lambda e: e["event_id"])]
    assert outcomes == ["redirected", "fallback", "redirected", "fallback"]


async def test_live_anchor_records_offset_since_start(make_account: AccountFactory, anon: Api, pool: asyncpg.Pool,
                                                      redis: Redis) -> None:
    shop = await make_shop(await make_account("seller"))
    assert shop.seller.account_id is not None
    live_id = await insert_live(pool, shop.seller.account_id,
                                started_at=datetime.now(UTC) - timedelta(seconds=100))
    _, code = await insert_anchor(pool, product_id=shop.product_ids[0],
                                  publisher_id=shop.seller.account_id, live_session_id=live_id)
    reply = await anon.get(f"/r/{code}?t=5")
    assert reply.status == 302 and "utm_medium=live" in reply.headers["Location"]
    (_, event), = await _entries(redis, 1)
    valid(event)
    assert event["surface"] == "live" and event["live_session_id"] == live_id and event["video_id"] is None
    assert 100 <= event["playback_s"] < 200 and event["t_status"] == "not_applicable"


async def test_commission_snapshot_from_the_terms_hook(make_account: AccountFactory, server: TestServer, anon: Api,
                                                        pool: asyncpg.Pool, redis: Redis) -> None:
    shop = await make_shop(await make_account("seller"))
    calls: list[tuple[int, int, int, int]] = []

    class Program:  # stands in for the affiliate program the resolver was built with
        async def terms_lookup(self, plan_id: int, product_id: int, at_ms: int,
                               creator_id: int) -> CommissionTerms:
            calls.append((plan_id, product_id, at_ms, creator_id))
            return CommissionTerms(rate_bp=1250, source="plan_rate", valid_until_ms=None)

    server.app[CLICK_RESOLVER].terms = Program()
    _, code, _ = await video_anchor(pool, shop, plan_id=7)
    _, own_code, _ = await video_anchor(pool, shop)
    for _ in range(3):
        reply = await anon.get(f"/r/{code}")
        assert "utm_campaign=plan-7&" in reply.headers["Location"]
    await anon.get(f"/r/{own_code}")
    events = [valid(e) for _, e in await _entries(redis, 4)]
    with_plan = [e for e in events if e["code"] == code]
    assert len(with_plan) == 3
    assert all(e["plan_id"] == 7 and e["commission"] == {"rate_bp": 1250, "source": "plan_rate"}
               for e in with_plan)
    assert [e["commission"] for e in events if e["code"] == own_code] == [None]
    assert len(calls) == 1 and calls[0][:2] == (7, shop.product_ids[0])  # once per cache fill


async def test_link_previews_and_bots_are_classified_not_dropped(
        make_account: AccountFactory, anon: Api, pool: asyncpg.Pool, redis: Redis) -> None:
    shop = await make_shop(await make_account("seller"))
    _, code, _ = await video_anchor(pool, shop)
    agents = {"Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)": ("link_preview", "slack"),
              "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)":
                  ("bot", "googlebot"),
              "Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 Chrome/124.0 Mobile Safari/537.36":
                  ("human", None)}
    for agent in agents:
        assert (await anon.get(f"/r/{code}", headers={"User-Agent": agent})).status == 302
    events = sorted((e for _, e in await _entries(redis, 3)), key=lambda e: e["event_id"])
    assert [(valid(e)["ua_class"], e["ua_family"]) for e in events] == list(agents.values())


async def test_metrics_count_redirects_and_writes(make_account: AccountFactory, anon: Api, pool: asyncpg.Pool,
                                                  redis: Redis) -> None:
    shop = await make_shop(await make_account("seller"))
    _, code, _ = await video_anchor(pool, shop)
    for _ in range(5):
        await anon.get(f"/r/{code}")
    await anon.get("/r/Unknown123")
    await _entries(redis, 5)
    text = (await anon.get("/metrics", headers=METRICS_AUTH)).body
    assert 'shoplink_click_redirects_total{outcome="redirected"} 5' in text
    assert 'shoplink_click_redirects_total{outcome="not_found"} 1' in text
    assert "shoplink_click_events_written_total 5" in text
    assert "shoplink_click_events_buffered 0" in text
    assert 'shoplink_click_cache_total{result="hit"} 4' in text
    assert "shoplink_click_flush_seconds_count" in text


def _query(location: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(location).query))
