"""Verifying shop domains in tests the way a seller does: publish the TXT record the domain's JSON
asks for in the test DNS server (support.dns_server), then ask the API to check it. No shortcut exists in
the application for tests; the operator path (`shoplink domains approve`) is the other way in."""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any

from support import dns_server
from support.api import Api


async def prove_domain(seller: Api, shop_id: int, domain: dict[str, Any]) -> dict[str, Any]:
    """Publish the domain's TXT proof and verify it; the domain's JSON, verified."""
    txt = domain["verification"]["dns_txt"]
    dns_server.shared().add_txt(txt["name"], txt["value"])
    reply = await seller.post(f"/api/v1/shops/{shop_id}/domains/{domain['domain']}/verify")
    assert reply.status == 200, reply.body
    assert reply.body["state"] == "verified", reply.body
    result: dict[str, Any] = reply.body
    return result


async def prove_domains(seller: Api, shop: dict[str, Any]) -> dict[str, Any]:
    """Verify every domain of a shop (its JSON as the API returned it); the shop as it is now."""
    for domain in shop["domains"]:
        if domain["state"] != "verified":
            await prove_domain(seller, shop["id"], domain)
    reply = await seller.get(f"/api/v1/shops/{shop['id']}")
    assert reply.status == 200, reply.body
    result: dict[str, Any] = reply.body
    return result


async def verified_shop(seller: Api, body: dict[str, Any]) -> dict[str, Any]:
    """POST /api/v1/shops, then prove its domains: the shop, every domain verified."""
    reply = await seller.post("/api/v1/shops", body)
    assert reply.status == 201, reply.body
    return await prove_domains(seller, reply.body)


async def pending_shop(seller: Api, domains: list[Any], urls: tuple[str, ...] = (),
                       **extra: Any) -> tuple[dict[str, Any], list[int]]:
    """A shop whose domains stay as claimed (pending), and products at `urls`: (shop, product ids)."""
    reply = await seller.post("/api/v1/shops", {"name": "Shop", "domains": domains, **extra})
    assert reply.status == 201, reply.body
    shop: dict[str, Any] = reply.body
    ids = []
    for n, url in enumerate(urls):
        made = await seller.post(f"/api/v1/shops/{shop['id']}/products", {"title": f"Item {n}", "url": url})
        assert made.status == 201, made.body
        ids.append(made.body["id"])
    return shop, ids


def cli_env(settings: Any, **extra: str) -> dict[str, str]:
    """The environment of a `shoplink` subprocess on the test's database, Redis and DNS server."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHOPLINK_")}
    env.update(SHOPLINK_DATABASE_URL=settings.database_url, SHOPLINK_REDIS_URL=settings.redis_url,
               SHOPLINK_DNS_NAMESERVERS=",".join(settings.dns_nameservers), SHOPLINK_LOG_LEVEL="warning",
               SHOPLINK_DNS_TIMEOUT_S="1")
    env.update(extra)
    return env


async def run_cli(*args: str, env: dict[str, str], timeout: float = 60) -> tuple[int, str, str]:
    """`python -m shoplink ARGS`: (exit status, stdout, stderr)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "shoplink", *args, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()
