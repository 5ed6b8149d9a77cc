"""A battery of hostile domain names: public suffixes (with and without subdomains, multi-level),
other shops' domains and names under them, homographs and mixed scripts (and their punycode),
trailing dots, uppercase, IP literals, special-use names. Each one is refused, or accepted as a
claim that stays unverified; and no anchor on any of them redirects, over real HTTP, even when a
row for it is forced into the database as "verified" (legacy data from before these rules): the
click resolver applies the same name rules when it loads an anchor."""

from __future__ import annotations

from typing import Any

import asyncpg
import idna

from support.api import AccountFactory, Api
from support.click_data import insert_anchor, insert_video
from support.dns_server import DnsServer
from support.domains import verified_shop

VICTIM_WILDCARD = "victim.example"
VICTIM_EXACT = "victim-exact.example"

HOSTILE: list[Any] = [
    # public suffixes, ICANN and private sections, with and without include_subdomains
    "co.uk", {"domain": "co.uk", "include_subdomains": True}, "CO.UK.", "github.io",
    {"domain": "github.io", "include_subdomains": True}, "GitHub.IO.", "s3.amazonaws.com",
    "blogspot.com", "myshopify.com", "vercel.app", "com", "uk", "xn--p1ai", "рф",
    # multi-level suffixes
    "gov.uk", "act.edu.au", "pvt.k12.ma.us", {"domain": "pvt.k12.ma.us", "include_subdomains": True},
    "x.kawasaki.jp", "com.br",
    # other shops' domains and the names under them, in every spelling
    VICTIM_WILDCARD, VICTIM_WILDCARD.upper() + ".", "login." + VICTIM_WILDCARD, "a.b." + VICTIM_WILDCARD,
    {"domain": VICTIM_WILDCARD, "include_subdomains": True}, VICTIM_EXACT, VICTIM_EXACT + ".",
    "LOGIN." + VICTIM_EXACT.upper(), "accounts.google.com",
    # homographs, mixed scripts, and their punycode forms
    "аррӏе.com", "xn--80ak6aa92e.com", "ɑpple.com", "xn--pple-p5b.com", "раураl.com", "xn--l-7sbahl3b.com",
    "vісtіm.example", "xn--vtm-4ed8hc.example", "gооgle.com", "xn--ggle-55da.com", "login.аррӏе.com",
    "ＡＰＰＬＥ．com．",
    # IP literals, in several spellings
    "127.0.0.1", "10.0.0.1", "[::1]", "169.254.169.254", "192.168.1.1", "2130706433", "0x7f.0.0.1",
    "１２７．０．０．１", "[::ffff:127.0.0.1]",
    # special-use names
    "localhost", "shop.localhost", "router.local", "metadata.google.internal", "abc.onion",
    "1.0.0.127.in-addr.arpa",
]


def _name(entry: Any) -> str:
    return entry if isinstance(entry, str) else entry["domain"]


def _legacy_form(raw: str) -> str:
    """How an older version could have stored the name (lower case, IDNA when it encodes)."""
    host = raw.strip().rstrip(".").strip("[]")
    try:
        return idna.encode(host, uts46=True).decode().lower()
    except idna.IDNAError:
        return host.lower()


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


async def _anchor(pool: asyncpg.Pool, seller: Api, product_id: int) -> str:
    assert seller.account_id is not None
    video_id = await insert_video(pool, seller.account_id)
    return (await insert_anchor(pool, product_id=product_id, publisher_id=seller.account_id,
                                video_id=video_id))[1]


async def test_hostile_names_are_refused_or_stay_unverified_and_never_redirect(
        make_account: AccountFactory, anon: Api, pool: asyncpg.Pool, dns: DnsServer) -> None:
    assert len(HOSTILE) >= 40
    victim, attacker = await make_account("seller"), await make_account("seller")
    await verified_shop(victim, {"name": "Victim", "domains": [
        {"domain": VICTIM_WILDCARD, "include_subdomains": True}, VICTIM_EXACT]})
    shop = await verified_shop(attacker, {"name": "Attacker", "domains": ["attacker.example"]})
    path = f"/api/v1/shops/{shop['id']}"
    outcomes: dict[str, str] = {}
    codes: list[tuple[str, str]] = []
    refused: list[tuple[str, str, bool]] = []  # (raw name, stored form, include_subdomains)
    for entry in HOSTILE:
        raw = _name(entry)
        body = entry if isinstance(entry, dict) else {"domain": entry}
        claim = await attacker.post(f"{path}/domains", body)
        host = _legacy_form(raw)
        if claim.status == 201:
            checked = await attacker.post(f"{path}/domains/{host}/verify")
            assert checked.status == 200 and checked.body["state"] != "verified", (raw, checked.body)
            outcomes[raw] = "unverified"
            product = await attacker.post(f"{path}/products", {"title": "Login", "url": f"https://{host}/login"})
            assert product.status == 201, (raw, product.body)
            codes.append((raw, await _anchor(pool, attacker, product.body["id"])))
            continue
        assert claim.status in (409, 422), (raw, claim.status, claim.body)
        outcomes[raw] = claim.error_code or ""
        if claim.status == 422:
            assert claim.body["error"]["details"][0]["field"] == "domain"
        # nothing can be prepared on it through the API
        product = await attacker.post(f"{path}/products", {"title": "Login", "url": f"https://{_url_host(host)}/p"})
        assert product.status == 422, (raw, product.body)
        refused.append((raw, host, bool(body.get("include_subdomains"))))

    # Force the refused ones in, as rows an older version may have left: a "verified" claim (pending
    # where the victim's verified rows hold the name: one owner) and an active product with an anchor.
    for raw, host, subs in refused:
        async with pool.acquire() as con:
            taken = await con.fetchval(  # the victim's (their verified rows hold these names)
                """SELECT count(*) FROM shop_domains WHERE state = 'verified' AND shop_id <> $2
                      AND (domain = $1 OR (include_subdomains AND $1 LIKE '%.' || domain))""", host, shop["id"])
            await con.execute(
                """INSERT INTO shop_domains (shop_id, domain, include_subdomains, token, state, verified_at,
                                             verified_by)
                   VALUES ($1, $2, $3, $4, $5, CASE WHEN $5 = 'verified' THEN now() END,
                           CASE WHEN $5 = 'verified' THEN 'dns_txt' END)
                   ON CONFLICT (shop_id, domain) DO NOTHING""",
                shop["id"], host, subs, "0" * 32, "pending" if taken else "verified")
            product_id = await con.fetchval(
                "INSERT INTO products (shop_id, title, url) VALUES ($1, 'Login', $2) RETURNING id",
                shop["id"], f"https://{_url_host(host)}/login")
        codes.append((raw, await _anchor(pool, attacker, product_id)))

    assert len(codes) == len(HOSTILE)
    for raw, code in codes:
        reply = await anon.get(f"/r/{code}")
        assert reply.status in (404, 410), (raw, reply.status, reply.headers.get("Location"))
        assert "Location" not in reply.headers
    # the refusals name their reason
    assert outcomes["co.uk"] == outcomes["github.io"] == outcomes["gov.uk"] == "validation_failed"
    assert outcomes[VICTIM_WILDCARD] == outcomes["login." + VICTIM_WILDCARD] == "domain_taken"
    assert outcomes[VICTIM_EXACT + "."] == "domain_taken"
    assert outcomes["accounts.google.com"] == outcomes["LOGIN." + VICTIM_EXACT.upper()] == "unverified"
    # and the attacker's own verified domain still works: the battery did not break the shop
    own = await attacker.post(f"{path}/products", {"title": "Real", "url": "https://attacker.example/p"})
    assert (await anon.get(f"/r/{await _anchor(pool, attacker, own.body['id'])}")).status == 302


async def test_refusal_codes_name_the_rule(make_account: AccountFactory) -> None:
    seller = await make_account("seller")
    expected = {"co.uk": "public_suffix", "github.io": "public_suffix", "аррӏе.com": "confusable",
                "раураl.com": "mixed_script", "127.0.0.1": "ip_address", "router.local": "special_use",
                "com": "not_registrable", "shop.example\uff0fevil.com": "invalid_name"}
    for name, code in expected.items():
        reply = await seller.post("/api/v1/shops", {"name": "S", "domains": ["ok.example", name]})
        assert reply.status == 422, (name, reply.body)
        assert reply.body["error"]["details"] == [
            {"field": "domains.1", "code": code, "message": reply.body["error"]["details"][0]["message"]}]
    assert (await seller.get("/api/v1/shops")).body["items"] == []
