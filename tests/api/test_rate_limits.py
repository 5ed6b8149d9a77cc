"""Rate limits: per token and per client on /api/v1, and failed authentications (keyed so that
they hurt the guesser, never the holders of valid tokens).

Buckets live in the test's real Redis; redirects and public viewer endpoints are never limited.
"""

from __future__ import annotations

import asyncio
import secrets
from typing import Any, cast

from aiohttp import ClientSession, CookieJar, TCPConnector
from redis.asyncio import Redis

from shoplink.auth.service import new_token
from shoplink.security.ratelimit import TARGET_CHARS, Charge, Limit, RateLimiter

from support.affiliate_data import seller_with_products
from support.api import AccountFactory, Api, Reply, ServerFactory


async def _server_api(start_server: ServerFactory, http: ClientSession, **overrides: Any) -> str:
    server = await start_server(**overrides)
    return str(server.make_url("")).rstrip("/")


def _assert_429(reply: Reply) -> int:
    assert reply.status == 429, reply.body
    assert reply.error_code == "too_many_requests"
    retry_after = int(reply.headers["Retry-After"])
    assert retry_after >= 1 and reply.body["error"]["details"]["retry_after_s"] == retry_after
    return retry_after


async def test_token_over_its_burst_gets_429_and_other_tokens_do_not(
        start_server: ServerFactory, http: ClientSession, make_account: AccountFactory) -> None:
    base = await _server_api(start_server, http, rate_api_token_burst=3, rate_api_token_per_s=0.01)
    seller_one, seller_two = await make_account("seller"), await make_account("seller")
    one, two = Api(http, base, seller_one.token), Api(http, base, seller_two.token)
    for _ in range(3):
        assert (await one.get("/api/v1/me")).status == 200
    refused = await one.get("/api/v1/me")
    retry_after = _assert_429(refused)
    assert retry_after >= 90  # one token per 100 s
    assert "with this token" in refused.body["error"]["message"]
    assert (await two.get("/api/v1/me")).status == 200
    assert (await one.get("/api/v1/shops")).status == 429  # per token, whatever the route


async def test_client_over_its_burst_gets_429_but_redirects_and_viewer_endpoints_do_not(
        start_server: ServerFactory, http: ClientSession, make_account: AccountFactory) -> None:
    base = await _server_api(start_server, http, rate_api_client_burst=4, rate_api_client_per_s=0.01)
    seller, creator = await make_account("seller"), await make_account("creator")
    one, two = Api(http, base, seller.token), Api(http, base, creator.token)
    for api in (one, two, one, two):
        assert (await api.get("/api/v1/me")).status == 200
    _assert_429(refused := await one.get("/api/v1/me"))
    assert "from this client" in refused.body["error"]["message"]
    _assert_429(await two.get("/api/v1/me"))  # same client address, another token
    anon = Api(http, base, None)
    for _ in range(10):
        assert (await anon.get("/r/nosuchcode")).status == 404
        assert (await anon.get("/v1/player.js")).status == 200
        assert (await anon.get("/v1/videos/999/anchors")).status == 404
        assert (await anon.get("/healthz")).status == 200


async def test_bad_tokens_from_an_address_never_lock_out_valid_tokens_from_it(
        start_server: ServerFactory, http: ClientSession, make_account: AccountFactory) -> None:
    """Behind a load balancer every client has one address: a few bad tokens (and anonymous
    calls) from it must not lock the integrations that send good ones out, conversion postbacks
    included. The guesser itself is answered 429 once over its failure budget."""
    base = await _server_api(start_server, http, rate_auth_fail_burst=3, rate_auth_fail_per_s=0.01)
    seller, shop_id, _ = await seller_with_products(make_account, prices=["1.00"])
    good = Api.of(seller, base)
    other = Api(http, base, (await make_account("creator")).token)
    anon = Api(http, base, None)
    for n in range(10):
        wrong = Api(http, base, new_token())  # well-formed, random: a blind guess
        reply = await wrong.get("/api/v1/me")
        if n < 3:
            assert (reply.status, reply.error_code) == (401, "invalid_token")
        else:
            assert "from this client" in reply.body["error"]["message"], reply.body
            assert _assert_429(reply) >= 90  # the client's failures: one forgiven per 100 s
        assert (await anon.get("/api/v1/me")).status == 401  # no credential: not an attempt
    assert (await good.get("/api/v1/me")).status == 200
    assert (await other.get("/api/v1/me")).status == 200
    postback = await good.post("/api/v1/conversions", {
        "shop_id": shop_id, "order_id": "LB-1", "amount": "1.00", "currency": "USD",
        "click_id": "01ARZ3NDEKTSV4RRFFQ69G5FAV"})
    assert postback.status == 201 and postback.body["reason"] == "pending_attribution", postback.body
    async with http.post(f"{base}/signin", data={"token": other.token}, allow_redirects=False) as resp:
        assert resp.status == 303  # a correct sign-in from the same address
    _assert_429(await Api(http, base, "slk_wrong").get("/api/v1/me"))  # still over its budget


async def test_failed_sign_ins_never_block_a_correct_sign_in(
        start_server: ServerFactory, http: ClientSession, make_account: AccountFactory) -> None:
    base = await _server_api(start_server, http, rate_auth_fail_burst=2, rate_auth_fail_per_s=0.01)
    token = (await make_account("seller")).token
    for n in range(4):
        async with http.post(f"{base}/signin", data={"token": new_token()}, allow_redirects=False) as resp:
            assert resp.status == (401 if n < 2 else 429)
            if resp.status == 429:
                assert int(resp.headers["Retry-After"]) >= 1
                assert (await resp.json())["error"]["code"] == "too_many_requests"
    async with http.post(f"{base}/signin", data={"token": token}, allow_redirects=False) as resp:
        assert resp.status == 303
    assert (await Api(http, base, token).get("/api/v1/me")).status == 200


async def test_guessing_the_rest_of_a_token_is_bounded_from_every_address(
        start_server: ServerFactory, http: ClientSession, make_account: AccountFactory) -> None:
    """The bound on guessing: attempts that share a token's head (or tail) share a bucket, from
    any address. Once it is empty that head is refused before any check, the real token too
    (whose head the guesser knows: it should be rotated); other tokens are not affected."""
    base = await _server_api(start_server, http, rate_auth_fail_burst=3, rate_auth_fail_per_s=1.0)
    victim = (await make_account("seller")).token
    bystander = (await make_account("seller")).token
    head, tail = victim[:4 + TARGET_CHARS], victim[-TARGET_CHARS:]
    middle = len(victim) - len(head) - len(tail)
    for n in range(3):
        guess = Api(http, base, head + secrets.token_urlsafe(64)[:middle] + f"{n:0{TARGET_CHARS}d}")
        assert (await guess.get("/api/v1/me")).status == 401
    # From another address (127.0.0.2) the same head is refused, before the token is looked up.
    async with ClientSession(connector=TCPConnector(local_addr=("127.0.0.2", 0))) as elsewhere:
        refused = await Api(elsewhere, base, victim).get("/api/v1/me")
        assert "with this token" in refused.body["error"]["message"], refused.body
        _assert_429(refused)
        async with elsewhere.post(f"{base}/signin", data={"token": victim}, allow_redirects=False) as resp:
            assert resp.status == 429
        assert (await Api(elsewhere, base, bystander).get("/api/v1/me")).status == 200
    # The tail works the same way: guesses that vary the head.
    for n in range(3):
        guess = Api(http, base, f"slk_{n:0{TARGET_CHARS}d}" + secrets.token_urlsafe(64)[:middle + 4] + tail)
        assert (await guess.get("/api/v1/me")).status in (401, 429)  # 429: this client's own budget
    refused = await Api(http, base, "slk_" + secrets.token_urlsafe(64)[:35] + tail).get("/api/v1/me")
    _assert_429(refused)
    assert "with this token" in refused.body["error"]["message"], refused.body
    assert (await Api(http, base, bystander).get("/api/v1/me")).status == 200
    await asyncio.sleep(1.2)  # a clock, not another task: one failure forgiven per second
    assert (await Api(http, base, victim).get("/api/v1/me")).status == 200


async def test_exempt_tokens_are_not_limited_and_others_still_are(
        start_server: ServerFactory, http: ClientSession, make_account: AccountFactory) -> None:
    """SHOPLINK_RATE_EXEMPT_TOKENS (for fuzzing runs): only the listed tokens skip the limits."""
    fuzzer = (await make_account("seller")).token
    base = await _server_api(start_server, http, rate_api_token_burst=2, rate_api_token_per_s=0.01,
                             rate_api_client_burst=4, rate_api_client_per_s=0.01,
                             rate_auth_fail_burst=1, rate_auth_fail_per_s=0.01,
                             rate_exempt_tokens=(fuzzer,))
    exempt = Api(http, base, fuzzer)
    for _ in range(8):
        assert (await exempt.get("/api/v1/me")).status == 200
    other = Api(http, base, (await make_account("seller")).token)
    assert [(await other.get("/api/v1/me")).status for _ in range(3)] == [200, 200, 429]
    for _ in range(3):
        async with http.post(f"{base}/signin", data={"token": fuzzer}, allow_redirects=False) as resp:
            assert resp.status == 303
    assert (await exempt.get("/api/v1/me")).status == 200


async def test_limits_off_for_benchmarks(
        start_server: ServerFactory, http: ClientSession, make_account: AccountFactory) -> None:
    base = await _server_api(start_server, http, rate_limits=False, rate_api_token_burst=1,
                             rate_api_client_burst=1, rate_auth_fail_burst=1)
    good = Api(http, base, (await make_account("seller")).token)
    wrong = Api(http, base, "slk_wrong")
    for _ in range(5):
        assert (await good.get("/api/v1/me")).status == 200
        assert (await wrong.get("/api/v1/me")).status == 401


async def test_buckets_hold_no_address_and_expire(
        start_server: ServerFactory, http: ClientSession, make_account: AccountFactory, redis: Redis) -> None:
    base = await _server_api(start_server, http)
    token = (await make_account("seller")).token
    good = Api(http, base, token)
    assert (await good.get("/api/v1/me")).status == 200
    assert (await Api(http, base, "slk_wrong").get("/api/v1/me")).status == 401
    keys = [k.decode() for k in cast(list[bytes], await redis.keys("shoplink:rl:*"))]
    assert len(keys) == 4, keys  # client calls, client failures, each of the two tokens
    for key in keys:
        assert "127.0.0.1" not in key and token not in key and "slk_wrong" not in key
        assert 0 < await redis.pttl(key) <= 3_600_000


async def test_limiter_fails_open_when_redis_is_unreachable() -> None:
    dead = Redis.from_url("redis://127.0.0.1:9/0", socket_connect_timeout=0.2)  # discard port: refused
    try:
        limiter = RateLimiter(dead)
        charge = Charge("shoplink:rl:t:{x}", Limit(rate=0.001, burst=1))
        for _ in range(3):
            assert (await limiter.check([charge], [charge])).allowed
    finally:
        await dead.aclose()


async def test_a_web_session_is_limited_like_a_token(
        start_server: ServerFactory, http: ClientSession, make_account: AccountFactory) -> None:
    base = await _server_api(start_server, http, rate_api_token_burst=3, rate_api_token_per_s=0.01)
    token = (await make_account("seller")).token
    async with ClientSession(cookie_jar=CookieJar(unsafe=True)) as browser:
        async with browser.post(f"{base}/signin", data={"token": token}, allow_redirects=False) as resp:
            assert resp.status == 303
        statuses = []
        for _ in range(4):
            async with browser.get(f"{base}/api/v1/me") as resp:
                statuses.append(resp.status)
                retry_after = resp.headers.get("Retry-After")
        assert statuses == [200, 200, 200, 429] and retry_after is not None
        async with browser.get(f"{base}/studio", allow_redirects=False) as resp:
            assert resp.status == 200  # pages are not limited


async def test_limits_survive_a_script_cache_flush(
        start_server: ServerFactory, http: ClientSession, make_account: AccountFactory, redis: Redis) -> None:
    base = await _server_api(start_server, http, rate_api_token_burst=2, rate_api_token_per_s=0.01)
    api = Api(http, base, (await make_account("seller")).token)
    assert (await api.get("/api/v1/me")).status == 200
    await redis.script_flush()  # as after a Redis restart: the script is loaded again
    assert (await api.get("/api/v1/me")).status == 200
    _assert_429(await api.get("/api/v1/me"))
