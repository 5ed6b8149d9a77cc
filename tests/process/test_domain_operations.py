"""`shoplink domains` as an operator runs it (subprocesses on the test's database, Redis and DNS
server): the background re-check job, approvals and revocations with their audit log, and the
click resolver of a running server following every state change these other processes make."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time
from typing import Any

import asyncpg
from aiohttp import ClientSession
from aiohttp.test_utils import TestServer

from shoplink.auth.service import AuthService
from shoplink.config import Settings
from shoplink.keys import CHANGES

from support.api import AccountFactory, Api, ServerFactory
from support.click_data import insert_anchor, insert_video
from support.dns_server import DnsServer
from support.domains import cli_env, pending_shop, run_cli, verified_shop


async def _anchor(pool: asyncpg.Pool, seller: Api, product_id: int) -> str:
    assert seller.account_id is not None
    video_id = await insert_video(pool, seller.account_id)
    return (await insert_anchor(pool, product_id=product_id, publisher_id=seller.account_id,
                                video_id=video_id))[1]


async def _wait_state(seller: Api, shop_id: int, domain: str, state: str, timeout: float = 15.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        reply = await seller.get(f"/api/v1/shops/{shop_id}/domains/{domain}")
        if reply.body["state"] == state:
            result: dict[str, Any] = reply.body
            return result
        assert time.monotonic() < deadline, f"{domain} still {reply.body['state']}, not {state}: {reply.body}"
        await asyncio.sleep(0.05)


async def _click_answers(anon: Api, code: str, status: int, timeout: float = 5.0) -> None:
    """The click answers `status` within `timeout`: another process's change reaches this server
    through Redis pub/sub a moment after that process committed (the cache TTL is 60 s)."""
    deadline = time.monotonic() + timeout
    while (got := (await anon.get(f"/r/{code}")).status) != status:
        assert time.monotonic() < deadline, f"/r/{code} still answers {got}, not {status}"
        await asyncio.sleep(0.02)


def _lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


async def test_watch_verifies_lapses_and_recovers_and_servers_follow(
        start_server: ServerFactory, pool: asyncpg.Pool, http: ClientSession, dns: DnsServer,
        settings: Settings) -> None:
    schedule = {"domain_retry_min_s": 0.1, "domain_retry_max_s": 0.2, "domain_recheck_s": 0.2,
                "domain_lapse_after_s": 0.5}
    server = await start_server(**schedule)
    await asyncio.wait_for(server.app[CHANGES].connected.wait(), 10)  # it hears other processes
    account, token = await AuthService(pool).create_account("watched seller", ["seller"])
    seller = Api(http, str(server.make_url("")).rstrip("/"), token.token, account.id)
    anon = Api(http, seller.base_url, None)
    shop, (product,) = await pending_shop(seller, ["watched.example"], ("https://watched.example/p",))
    code = await _anchor(pool, seller, product)
    assert (await anon.get(f"/r/{code}")).status == 404  # not active yet, and now cached

    env = cli_env(settings, SHOPLINK_DOMAIN_WATCH_INTERVAL_S="0.05",
                  **{f"SHOPLINK_{k.upper()}": str(v) for k, v in schedule.items()})
    watcher = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "shoplink", "domains", "watch", env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        deadline = time.monotonic() + 15
        while (pending := await seller.get(f"/api/v1/shops/{shop['id']}/domains/watched.example")
               ).body["last_checked_at"] is None:  # the watcher looks, without being asked
            assert time.monotonic() < deadline, "the watcher never checked"
            await asyncio.sleep(0.05)
        assert pending.body["state"] == "pending" and pending.body["failure"]["reason"] == "nxdomain"

        txt = shop["domains"][0]["verification"]["dns_txt"]
        dns.set_txt(txt["name"], txt["value"])
        await _wait_state(seller, shop["id"], "watched.example", "verified")
        # the server's cached "not active" answer is dropped by the watcher's change message
        await _click_answers(anon, code, 302)

        dns.set_txt(txt["name"])
        lapsed = await _wait_state(seller, shop["id"], "watched.example", "lapsed")
        assert lapsed["proof_missing_since"] is not None
        await _click_answers(anon, code, 410)

        dns.set_txt(txt["name"], txt["value"])
        await _wait_state(seller, shop["id"], "watched.example", "verified")
        await _click_answers(anon, code, 302)
        assert dns.asked(txt["name"]) >= 4
    finally:
        watcher.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(watcher.communicate(), 30)
    assert watcher.returncode == 0, err.decode()


async def test_watch_once_and_several_watchers_share_the_work(
        make_account: AccountFactory, pool: asyncpg.Pool, dns: DnsServer, settings: Settings) -> None:
    seller = await make_account("seller")
    names = [f"n{i}.example" for i in range(12)]
    shop, _ = await pending_shop(seller, names)
    await pool.execute("UPDATE shop_domains SET next_check_at = now() - interval '1 second'")
    for domain in shop["domains"]:
        txt = domain["verification"]["dns_txt"]
        dns.set_txt(txt["name"], txt["value"])
    env = cli_env(settings)
    results = await asyncio.gather(*(run_cli("domains", "watch", "--once", env=env) for _ in range(3)))
    for status, _, err in results:
        assert status == 0, err
    checked = [_lines(out)[0]["checked"] for _, out, _ in results]
    assert sum(checked) == len(names)  # every domain checked once, by one of the three
    states = {r["state"] for r in await pool.fetch("SELECT state FROM shop_domains")}
    assert states == {"verified"}
    assert sum(dns.asked(d["verification"]["dns_txt"]["name"]) for d in shop["domains"]) == len(names)


async def test_operator_approves_and_revokes_with_an_audit_log(
        make_account: AccountFactory, server: TestServer, anon: Api, pool: asyncpg.Pool, dns: DnsServer,
        settings: Settings) -> None:
    await asyncio.wait_for(server.app[CHANGES].connected.wait(), 10)  # it hears other processes
    seller, other = await make_account("seller"), await make_account("seller")
    shop, (product,) = await pending_shop(seller, ["trusted.example"], ("https://trusted.example/p",))
    code = await _anchor(pool, seller, product)
    assert (await anon.get(f"/r/{code}")).status == 404
    env = cli_env(settings)

    status, out, err = await run_cli("domains", "approve", "trusted.example", "--shop", str(shop["id"]),
                                     "--reason", "contract signed, ticket OPS-42", "--by", "alice", env=env)
    assert status == 0, err
    approved = _lines(out)[0]
    assert (approved["state"], approved["verified_by"]) == ("verified", "operator")
    await _click_answers(anon, code, 302)  # the running server follows
    # an approval is its own proof: a seller's check leaves it alone (no DNS record exists)
    again = await seller.post(f"/api/v1/shops/{shop['id']}/domains/trusted.example/verify")
    assert again.status == 200 and again.body["state"] == "verified" and again.body["verified_by"] == "operator"

    # the one-owner rule holds for operators too; names nobody may own are refused
    rival, _ = await pending_shop(other, ["other.example"])
    status, _, err = await run_cli("domains", "approve", "trusted.example", "--shop", str(rival["id"]),
                                   "--reason", "oops", env=env)
    assert status == 1 and "domain_taken" in err
    status, _, err = await run_cli("domains", "approve", "github.io", "--shop", str(rival["id"]),
                                   "--reason", "oops", env=env)
    assert status == 1 and "public_suffix" in err
    status, _, err = await run_cli("domains", "approve", "x.example", "--shop", "999999", "--reason", "r", env=env)
    assert status == 1 and "does not exist" in err

    status, out, err = await run_cli("domains", "revoke", "trusted.example", "--shop", str(shop["id"]),
                                     "--reason", "phishing report #7", "--by", "bob", env=env)
    assert status == 0, err
    revoked = _lines(out)[0]
    assert revoked["state"] == "failed" and revoked["failure"]["reason"] == "revoked"
    await _click_answers(anon, code, 410)
    # the seller cannot undo it: checking again, or claiming it again, is refused
    txt = shop["domains"][0]["verification"]["dns_txt"]
    dns.set_txt(txt["name"], txt["value"])
    verify = await seller.post(f"/api/v1/shops/{shop['id']}/domains/trusted.example/verify")
    assert verify.status == 409 and verify.error_code == "domain_revoked"
    readd = await seller.post(f"/api/v1/shops/{shop['id']}/domains", {"domain": "trusted.example"})
    assert readd.status == 409 and readd.error_code == "domain_revoked"

    status, out, err = await run_cli("domains", "audit", "--shop", str(shop["id"]), env=env)
    assert status == 0, err
    log = _lines(out)
    assert [(e["action"], e["actor"], e["reason"]) for e in log] == [
        ("revoke", "bob", "phishing report #7"), ("approve", "alice", "contract signed, ticket OPS-42")]
    assert all(e["created_at"] for e in log)

    # approving again lifts the revocation; the default actor is the user running the command
    status, out, err = await run_cli("domains", "approve", "trusted.example", "--shop", str(shop["id"]),
                                     "--reason", "cleared", env=env)
    assert status == 0, err
    actor = await pool.fetchval("SELECT actor FROM domain_audit ORDER BY id DESC LIMIT 1")
    assert "@" in actor
    await _click_answers(anon, code, 302)
    status, out, _ = await run_cli("domains", "list", "--state", "verified", env=env)
    assert [d["domain"] for d in _lines(out)] == ["trusted.example"]


async def test_approve_can_take_subdomains_and_fails_pending_rivals(
        make_account: AccountFactory, pool: asyncpg.Pool, dns: DnsServer, settings: Settings) -> None:
    owner, squatter = await make_account("seller"), await make_account("seller")
    squat, _ = await pending_shop(squatter, ["shop.big.example"])
    shop = await verified_shop(owner, {"name": "Big", "domains": ["elsewhere.example"]})
    status, out, err = await run_cli("domains", "approve", "BIG.example.", "--shop", str(shop["id"]),
                                     "--include-subdomains", "--reason", "enterprise onboarding",
                                     env=cli_env(settings))
    assert status == 0, err
    assert _lines(out)[0]["include_subdomains"] is True
    lost = await squatter.get(f"/api/v1/shops/{squat['id']}/domains/shop.big.example")
    assert lost.body["state"] == "failed" and lost.body["failure"]["reason"] == "claimed_by_another_shop"
