"""Verified shop domains against a real DNS server on loopback (support.dns_server): every state change,
what a failed check says, the race of two claims, lapse and recovery, the redirect rule and the
click resolver dropping a shop's anchors the moment a domain changes state."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import asyncpg
from aiohttp import ClientSession
from aiohttp.test_utils import TestServer
from redis.asyncio import Redis

from shoplink.auth.service import AuthService

from support.api import AccountFactory, Api, ServerFactory
from support.click_data import insert_anchor, insert_video, wait_for_events
from support.dns_server import DnsServer
from support.domains import pending_shop, prove_domain, prove_domains, verified_shop
from support.https import HttpsProofServer, Reply


async def _account(pool: asyncpg.Pool, http: ClientSession, server: TestServer, role: str = "seller") -> Api:
    """An account calling `server` (a server started with its own settings)."""
    account, token = await AuthService(pool).create_account(f"{role}-{id(server)}-{role}", [role])
    return Api(http, str(server.make_url("")).rstrip("/"), token.token, account.id)


async def _anchor(pool: asyncpg.Pool, seller: Api, product_id: int) -> str:
    assert seller.account_id is not None
    video_id = await insert_video(pool, seller.account_id)
    _, code = await insert_anchor(pool, product_id=product_id, publisher_id=seller.account_id,
                                  video_id=video_id)
    return code


async def _verify(api: Api, shop_id: int, domain: str) -> dict[str, Any]:
    reply = await api.post(f"/api/v1/shops/{shop_id}/domains/{domain}/verify")
    assert reply.status == 200, reply.body
    result: dict[str, Any] = reply.body
    return result


async def test_a_new_domain_is_pending_and_says_how_to_prove_it(make_account: AccountFactory) -> None:
    seller, other = await make_account("seller"), await make_account("seller")
    shop, _ = await pending_shop(seller, ["acme.example", {"domain": "brand.example", "include_subdomains": True}])
    by_name = {d["domain"]: d for d in shop["domains"]}
    acme = by_name["acme.example"]
    assert acme["state"] == "pending" and acme["verified_at"] is None and acme["failure"] is None
    token = acme["verification"]["token"]
    assert len(token) == 32
    assert acme["verification"]["dns_txt"] == {"name": "_shoplink-verify.acme.example", "type": "TXT",
                                               "value": f"shoplink-verify={token}"}
    assert acme["verification"]["https_file"] == {
        "url": "https://acme.example/.well-known/shoplink-verify.txt", "content": f"shoplink-verify={token}"}
    assert by_name["brand.example"]["verification"]["https_file"] is None  # only DNS proves subdomains
    one = await seller.get(f"/api/v1/shops/{shop['id']}/domains/ACME.example.")
    assert one.status == 200 and one.body == acme
    assert (await other.get(f"/api/v1/shops/{shop['id']}/domains/acme.example")).status == 404
    assert (await other.post(f"/api/v1/shops/{shop['id']}/domains/acme.example/verify")).status == 404
    # another shop's claim on the same name has its own token: one shop's record proves nothing for another
    rival, _ = await pending_shop(other, ["acme.example"])
    assert rival["domains"][0]["verification"]["token"] != token


async def test_verify_says_why_a_check_failed_then_verifies(make_account: AccountFactory, dns: DnsServer) -> None:
    seller = await make_account("seller")
    shop, _ = await pending_shop(seller, ["acme.example"])
    domain = shop["domains"][0]
    name, value = domain["verification"]["dns_txt"]["name"], domain["verification"]["dns_txt"]["value"]

    nothing = await _verify(seller, shop["id"], "acme.example")
    assert nothing["state"] == "pending"
    assert nothing["failure"]["reason"] == "nxdomain"
    assert nothing["failure"]["dns_txt"] == {"ok": False, "reason": "nxdomain",
                                             "message": nothing["failure"]["message"]}
    assert nothing["failure"]["https_file"]["reason"] == "nxdomain"  # the host itself does not resolve

    dns.set(name, "A", "192.0.2.1")  # the name exists, without a TXT record
    assert (await _verify(seller, shop["id"], "acme.example"))["failure"]["reason"] == "no_record"
    dns.set(name, "A")
    dns.set_txt(name, "shoplink-verify=0123456789abcdef0123456789abcdef", "v=spf1 -all")
    wrong = await _verify(seller, shop["id"], "acme.example")
    assert wrong["failure"]["reason"] == "wrong_value" and "2 TXT record(s)" in wrong["failure"]["message"]
    dns.misbehave(name, "timeout")
    assert (await _verify(seller, shop["id"], "acme.example"))["failure"]["reason"] == "timeout"
    dns.misbehave(name, "servfail")
    assert (await _verify(seller, shop["id"], "acme.example"))["failure"]["reason"] == "dns_error"
    dns.misbehave(name, None)

    dns.add_txt(name, value)  # next to the others, as a real zone would have it
    verified = await _verify(seller, shop["id"], "acme.example")
    assert verified["state"] == "verified" and verified["verified_by"] == "dns_txt"
    assert verified["failure"] is None and verified["verified_at"] is not None
    assert verified["next_check_at"] > verified["verified_at"]  # re-checked later by `domains watch`
    assert dns.asked(name) >= 6


async def test_a_pending_domain_answers_not_active_then_redirects_the_moment_it_is_verified(
        make_account: AccountFactory, anon: Api, pool: asyncpg.Pool, redis: Redis, dns: DnsServer) -> None:
    seller = await make_account("seller")
    shop, (product,) = await pending_shop(seller, ["acme.example"], ("https://acme.example/p/1",),
                                          fallback_url="https://acme.example/")
    code = await _anchor(pool, seller, product)
    page = await anon.get(f"/r/{code}")
    assert page.status == 404 and "Link not active yet" in page.body and "Location" not in page.headers
    as_json = await anon.get(f"/r/{code}", headers={"Accept": "application/json"})
    assert as_json.status == 404 and as_json.error_code == "link_not_active"
    events = await wait_for_events(redis, 2)
    assert {e["outcome"] for e in events} == {"gone"} and events[0]["anchor_id"] is not None

    await prove_domain(seller, shop["id"], shop["domains"][0])  # the cached answer is dropped at once
    now = await anon.get(f"/r/{code}")
    assert now.status == 302 and now.headers["Location"].startswith("https://acme.example/p/1?utm_source=")


async def test_a_pending_product_domain_falls_back_to_a_verified_one(
        make_account: AccountFactory, anon: Api, pool: asyncpg.Pool, dns: DnsServer) -> None:
    seller = await make_account("seller")
    shop, (product,) = await pending_shop(seller, ["acme.example", "acme-new.example"],
                                          ("https://acme-new.example/p/1",), fallback_url="https://acme.example/all")
    by_name = {d["domain"]: d for d in shop["domains"]}
    await prove_domain(seller, shop["id"], by_name["acme.example"])
    code = await _anchor(pool, seller, product)
    fallback = await anon.get(f"/r/{code}")
    assert fallback.status == 302 and fallback.headers["Location"].startswith("https://acme.example/all?")
    await prove_domain(seller, shop["id"], by_name["acme-new.example"])
    assert (await anon.get(f"/r/{code}")).headers["Location"].startswith("https://acme-new.example/p/1?")


async def test_two_claims_race_and_the_first_to_verify_wins(make_account: AccountFactory, dns: DnsServer) -> None:
    for round_ in range(5):
        name = f"race{round_}.example"
        a, b = await make_account("seller"), await make_account("seller")
        (shop_a, _), (shop_b, _) = await pending_shop(a, [name]), await pending_shop(b, [name])
        for shop in (shop_a, shop_b):  # both manage to publish a record (say, a shared DNS provider)
            txt = shop["domains"][0]["verification"]["dns_txt"]
            dns.add_txt(txt["name"], txt["value"])
        results = await asyncio.gather(_verify(a, shop_a["id"], name), _verify(b, shop_b["id"], name))
        states = sorted(r["state"] for r in results)
        assert states == ["failed", "verified"], results
        loser = next(r for r in results if r["state"] == "failed")
        assert loser["failure"]["reason"] == "claimed_by_another_shop"
        assert "verified by another shop" in loser["failure"]["message"]
        # the loser stays out: checking again, or preparing products there, does not help
        loser_api, loser_shop = (a, shop_a) if results[0] is loser else (b, shop_b)
        assert (await _verify(loser_api, loser_shop["id"], name))["state"] == "failed"
        product = await loser_api.post(f"/api/v1/shops/{loser_shop['id']}/products",
                                       {"title": "x", "url": f"https://{name}/p"})
        assert product.status == 422 and product.body["error"]["details"][0]["code"] == "domain_failed"

    late = await make_account("seller")
    taken = await late.post("/api/v1/shops", {"name": "Late", "domains": ["race0.example"]})
    assert taken.status == 409 and taken.error_code == "domain_taken"
    below = await late.post("/api/v1/shops", {"name": "Late", "domains": ["shop.race0.example"]})
    assert below.status == 201  # race0.example was verified without its subdomains


async def test_a_verified_wildcard_keeps_every_name_under_it(make_account: AccountFactory, dns: DnsServer) -> None:
    owner, other = await make_account("seller"), await make_account("seller")
    await verified_shop(owner, {"name": "Wild", "domains": [{"domain": "wild.example", "include_subdomains": True},
                                                            "exact.example"]})
    shop, _ = await pending_shop(other, ["mine.example"])
    for body in ({"domain": "wild.example"}, {"domain": "deep.shop.wild.example"}, {"domain": "WILD.example."},
                 {"domain": "exact.example"}, {"domain": "example.wild.example", "include_subdomains": True}):
        reply = await other.post(f"/api/v1/shops/{shop['id']}/domains", body)
        assert reply.status == 409 and reply.error_code == "domain_taken", (body, reply.body)
    # a wildcard claim that would cover a name another shop verified
    await verified_shop(owner, {"name": "Sub", "domains": ["x.cover.example"]})
    cover = await other.post(f"/api/v1/shops/{shop['id']}/domains",
                             {"domain": "cover.example", "include_subdomains": True})
    assert cover.status == 409 and "would cover x.cover.example" in cover.body["error"]["message"]
    plain = await other.post(f"/api/v1/shops/{shop['id']}/domains", {"domain": "cover.example"})
    assert plain.status == 201


async def test_verifying_a_wildcard_fails_the_other_shops_claims_under_it(
        make_account: AccountFactory, dns: DnsServer) -> None:
    owner, squatter = await make_account("seller"), await make_account("seller")
    squat, _ = await pending_shop(squatter, ["login.brand.example"])
    shop, _ = await pending_shop(owner, [{"domain": "brand.example", "include_subdomains": True}])
    await prove_domains(owner, shop)
    lost = await squatter.get(f"/api/v1/shops/{squat['id']}/domains/login.brand.example")
    assert lost.body["state"] == "failed" and lost.body["failure"]["reason"] == "claimed_by_another_shop"


async def test_lapse_and_recovery(start_server: ServerFactory, pool: asyncpg.Pool, http: ClientSession,
                                  dns: DnsServer, redis: Redis) -> None:
    server = await start_server(domain_lapse_after_s=1.0, domain_retry_min_s=0.05)
    seller = await _account(pool, http, server)
    anon = Api(http, seller.base_url, None)
    shop, (product,) = await pending_shop(seller, ["acme.example"], ("https://acme.example/p/1",))
    domain = await prove_domain(seller, shop["id"], shop["domains"][0])
    code = await _anchor(pool, seller, product)
    assert (await anon.get(f"/r/{code}")).status == 302
    txt = domain["verification"]["dns_txt"]

    dns.set_txt(txt["name"])  # the proof disappears: a grace period first
    missing = await _verify(seller, shop["id"], "acme.example")
    assert missing["state"] == "verified" and missing["proof_missing_since"] is not None
    assert missing["failure"]["reason"] == "nxdomain"
    assert (await anon.get(f"/r/{code}")).status == 302
    await asyncio.sleep(1.1)
    lapsed = await _verify(seller, shop["id"], "acme.example")
    assert lapsed["state"] == "lapsed" and lapsed["next_check_at"] is not None  # still watched, for recovery
    gone = await anon.get(f"/r/{code}")  # as for a delisted product: the fallback, or 410
    assert gone.status == 410 and "no longer available" in gone.body

    dns.set_txt(txt["name"], txt["value"])
    recovered = await _verify(seller, shop["id"], "acme.example")
    assert recovered["state"] == "verified" and recovered["proof_missing_since"] is None
    assert (await anon.get(f"/r/{code}")).status == 302


async def test_an_unproven_claim_fails_after_its_window_and_can_start_over(
        start_server: ServerFactory, pool: asyncpg.Pool, http: ClientSession, dns: DnsServer) -> None:
    server = await start_server(domain_pending_max_s=0.5)
    seller = await _account(pool, http, server)
    shop, _ = await pending_shop(seller, ["slow.example"])
    assert (await _verify(seller, shop["id"], "slow.example"))["state"] == "pending"
    await asyncio.sleep(0.6)
    failed = await _verify(seller, shop["id"], "slow.example")
    assert failed["state"] == "failed" and failed["failure"]["reason"] == "not_proven_in_time"
    assert failed["next_check_at"] is None  # the background job stops looking
    again = await seller.post(f"/api/v1/shops/{shop['id']}/domains", {"domain": "slow.example"})
    assert again.status == 201
    restarted = next(d for d in again.body["domains"] if d["domain"] == "slow.example")
    assert restarted["state"] == "pending" and restarted["failure"] is None
    assert restarted["verification"]["token"] == failed["verification"]["token"]
    assert (await prove_domain(seller, shop["id"], restarted))["state"] == "verified"
    # a failed claim can also be proven directly, without re-adding it
    other, _ = await pending_shop(seller, ["slower.example"])
    await asyncio.sleep(0.6)
    assert (await _verify(seller, other["id"], "slower.example"))["state"] == "failed"
    assert (await prove_domain(seller, other["id"], other["domains"][0]))["state"] == "verified"


async def test_a_lapsed_domain_can_change_hands(start_server: ServerFactory, pool: asyncpg.Pool, http: ClientSession,
                                                dns: DnsServer) -> None:
    server = await start_server(domain_lapse_after_s=0.3)
    old_owner, new_owner = await _account(pool, http, server), await _account(pool, http, server)
    shop, _ = await pending_shop(old_owner, ["expired.example"])
    await prove_domain(old_owner, shop["id"], shop["domains"][0])
    taken = await new_owner.post("/api/v1/shops", {"name": "New", "domains": ["expired.example"]})
    assert taken.status == 409  # verified: nobody else may claim it
    dns.clear()  # the domain expired; its DNS is gone
    await _verify(old_owner, shop["id"], "expired.example")
    await asyncio.sleep(0.4)
    assert (await _verify(old_owner, shop["id"], "expired.example"))["state"] == "lapsed"
    # the new registrant claims and proves it; the old shop's lapsed claim loses
    new_shop, _ = await pending_shop(new_owner, ["expired.example"])
    assert (await prove_domain(new_owner, new_shop["id"], new_shop["domains"][0]))["state"] == "verified"
    old = await old_owner.get(f"/api/v1/shops/{shop['id']}/domains/expired.example")
    assert old.body["state"] == "failed" and old.body["failure"]["reason"] == "claimed_by_another_shop"


async def test_widening_a_dns_verified_domain_keeps_it_verified_unless_it_would_cover_another_shop(
        make_account: AccountFactory, dns: DnsServer) -> None:
    owner, other = await make_account("seller"), await make_account("seller")
    await verified_shop(other, {"name": "Other", "domains": ["shop.wide.example"]})
    shop = await verified_shop(owner, {"name": "Wide", "domains": ["wide.example", "alone.example"]})
    covered = await owner.post(f"/api/v1/shops/{shop['id']}/domains",
                               {"domain": "wide.example", "include_subdomains": True})
    assert covered.status == 409 and covered.error_code == "domain_taken"
    wider = await owner.post(f"/api/v1/shops/{shop['id']}/domains",
                             {"domain": "alone.example", "include_subdomains": True})
    entry = next(d for d in wider.body["domains"] if d["domain"] == "alone.example")
    assert (entry["state"], entry["include_subdomains"], entry["verified_by"]) == ("verified", True, "dns_txt")


async def test_https_file_proof_in_development_mode(start_server: ServerFactory, pool: asyncpg.Pool,
                                                    http: ClientSession,
                                                    dns: DnsServer, tmp_path: Path) -> None:
    files = HttpsProofServer()
    port = await files.start("files.example", "moved.example", "big.example", "wrong.example", "wild.example")
    untrusted = HttpsProofServer()  # a certificate from a CA the application does not trust
    other_port = await untrusted.start("tls.example")
    try:
        server = await start_server(allow_http_urls=True, domain_proof_https_port=port,
                                    domain_proof_ca_file=files.write_ca(tmp_path))
        seller = await _account(pool, http, server)
        names = ["files.example", "moved.example", "big.example", "wrong.example", "tls.example",
                 {"domain": "wild.example", "include_subdomains": True}]
        shop, _ = await pending_shop(seller, names)
        tokens = {d["domain"]: d["verification"]["token"] for d in shop["domains"]}
        for name in ("files.example", "moved.example", "big.example", "wrong.example", "wild.example",
                     "tls.example"):
            dns.set_address(name, "127.0.0.1")
        path = "/.well-known/shoplink-verify.txt"
        files.replies[path] = Reply(body=f"# shoplink\nshoplink-verify={tokens['files.example']}\n".encode())
        proven = await _verify(seller, shop["id"], "files.example")
        assert proven["state"] == "verified" and proven["verified_by"] == "https_file", proven
        assert (f"files.example:{port}", path) in files.requests
        # asking for the subdomains too needs the DNS proof: back to pending
        wider = await seller.post(f"/api/v1/shops/{shop['id']}/domains",
                                  {"domain": "files.example", "include_subdomains": True})
        assert next(d for d in wider.body["domains"] if d["domain"] == "files.example")["state"] == "pending"

        # a same-origin redirect is followed; one to another host is not
        files.replies["/elsewhere"] = Reply(status=302, headers={"Location": "https://evil.example/x"})
        files.replies["/here"] = Reply(status=301, headers={"Location": path})
        files.replies[path] = Reply(status=302, headers={"Location": "/here"})
        moved = await _verify(seller, shop["id"], "moved.example")
        assert moved["failure"]["https_file"]["reason"] == "https_redirect"  # /here -> path -> /here ...
        files.replies[path] = Reply(status=302, headers={"Location": "https://evil.example/x"})
        assert (await _verify(seller, shop["id"], "moved.example"))["failure"]["https_file"]["reason"] == \
            "https_redirect"
        files.replies[path] = Reply(status=302, headers={"Location": "/real"})
        files.replies["/real"] = Reply(body=f"shoplink-verify={tokens['moved.example']}".encode())
        assert (await _verify(seller, shop["id"], "moved.example"))["state"] == "verified"

        files.replies[path] = Reply(body=b"x" * 5000 + f"\nshoplink-verify={tokens['big.example']}".encode())
        assert (await _verify(seller, shop["id"], "big.example"))["failure"]["https_file"]["reason"] == \
            "https_too_large"
        files.replies[path] = Reply(body=b"shoplink-verify=someone-else")
        assert (await _verify(seller, shop["id"], "wrong.example"))["failure"]["https_file"]["reason"] == \
            "https_wrong_value"
        files.replies.pop(path)
        assert (await _verify(seller, shop["id"], "wrong.example"))["failure"]["https_file"]["reason"] == \
            "https_status"
        # the untrusted server listens on another port: point the proof port there for this check
        tls_server = await start_server(allow_http_urls=True, domain_proof_https_port=other_port,
                                        domain_proof_ca_file=files.write_ca(tmp_path))
        tls_api = Api(http, str(tls_server.make_url("")).rstrip("/"), seller.token, seller.account_id)
        tls = await _verify(tls_api, shop["id"], "tls.example")
        assert tls["state"] == "pending" and tls["failure"]["https_file"]["reason"] == "https_tls"

        before = len(files.requests)
        files.replies[path] = Reply(body=f"shoplink-verify={tokens['wild.example']}".encode())
        wild = await _verify(seller, shop["id"], "wild.example")  # a file proves no subdomain
        assert wild["state"] == "pending" and "https_file" not in wild["failure"]
        assert len(files.requests) == before
    finally:
        await files.close()
        await untrusted.close()


async def test_https_file_proof_never_fetches_a_private_address_in_production(
        start_server: ServerFactory, pool: asyncpg.Pool, http: ClientSession, dns: DnsServer, tmp_path: Path) -> None:
    files = HttpsProofServer()
    port = await files.start("inside.example", "mixed.example")
    try:
        server = await start_server(domain_proof_https_port=port, domain_proof_ca_file=files.write_ca(tmp_path))
        seller = await _account(pool, http, server)
        shop, _ = await pending_shop(seller, ["inside.example", "mixed.example"])
        tokens = {d["domain"]: d["verification"]["token"] for d in shop["domains"]}
        files.replies["/.well-known/shoplink-verify.txt"] = Reply(
            body=f"shoplink-verify={tokens['inside.example']}".encode())
        dns.set_address("inside.example", "127.0.0.1")
        dns.set_address("mixed.example", "100.64.0.1", "fe80::1")  # shared and link-local: not public either
        for name in ("inside.example", "mixed.example"):
            result = await _verify(seller, shop["id"], name)
            assert result["state"] == "pending"
            assert result["failure"]["https_file"]["reason"] == "private_address", result
        assert files.requests == []  # nothing was fetched
    finally:
        await files.close()


async def test_dev_mode_verifies_loopback_hosts_by_itself(start_server: ServerFactory, pool: asyncpg.Pool,
                                                          http: ClientSession) -> None:
    server = await start_server(allow_http_urls=True)
    first, second = await _account(pool, http, server), await _account(pool, http, server)
    shop, _ = await pending_shop(first, ["127.0.0.1", "localhost", "shop.example"])
    states = {d["domain"]: (d["state"], d["verified_by"]) for d in shop["domains"]}
    assert states == {"127.0.0.1": ("verified", "dev_loopback"), "localhost": ("verified", "dev_loopback"),
                      "shop.example": ("pending", None)}
    again, _ = await pending_shop(second, ["127.0.0.1"])  # every developer's shop is on localhost
    assert again["domains"][0]["state"] == "verified"
    audit = await pool.fetch("SELECT shop_id, domain, action, actor FROM domain_audit ORDER BY id")
    assert [(r["domain"], r["action"], r["actor"]) for r in audit] == [
        ("127.0.0.1", "auto_verify", "development mode"), ("localhost", "auto_verify", "development mode"),
        ("127.0.0.1", "auto_verify", "development mode")]


async def test_image_url_must_come_from_a_verified_domain_or_our_media(
        start_server: ServerFactory, pool: asyncpg.Pool, http: ClientSession, dns: DnsServer) -> None:
    server = await start_server(public_base_url="https://links.example")
    seller = await _account(pool, http, server)
    shop, _ = await pending_shop(seller, ["acme.example", "later.example"])
    await prove_domain(seller, shop["id"], shop["domains"][0])
    path = f"/api/v1/shops/{shop['id']}/products"
    base = {"title": "Shoe", "url": "https://acme.example/p"}
    for image, code in (("https://tracker.example/pixel.gif", "invalid"),
                        ("https://later.example/shoe.jpg", "domain_not_verified"),
                        ("https://links.example/other/x.jpg", "invalid")):
        reply = await seller.post(path, {**base, "image_url": image})
        assert reply.status == 422, reply.body
        detail = reply.body["error"]["details"][0]
        assert (detail["field"], detail["code"]) == ("image_url", code), detail
    for image in ("https://acme.example/img/shoe.jpg", "https://links.example/media/thumbnails/a.jpg"):
        assert (await seller.post(path, {**base, "image_url": image})).status == 201
    made = await seller.post(path, {**base, "title": "Later"})
    patched = await seller.patch(f"/api/v1/products/{made.body['id']}",
                                 {"image_url": "https://tracker.example/p.gif"})
    assert patched.status == 422 and patched.body["error"]["details"][0]["field"] == "image_url"


BAD_URLS = ["https://[shop.example]/", "https://shop.example\uff0fevil.com/", "https://[::1/",
            "https://acme.example\uff03/", "https://acme\u2100.example/", "https://ac\uff03me.example/p",
            "https://xn--abc.example/"]


async def test_malformed_urls_answer_422_naming_the_field_never_500(
        make_account: AccountFactory, dns: DnsServer) -> None:
    seller = await make_account("seller")
    shop = await verified_shop(seller, {"name": "Acme", "domains": ["acme.example"]})
    path = f"/api/v1/shops/{shop['id']}"
    for bad in BAD_URLS:
        product = await seller.post(f"{path}/products", {"title": "x", "url": bad})
        image = await seller.post(f"{path}/products", {"title": "x", "url": "https://acme.example/p",
                                                       "image_url": bad})
        fallback = await seller.patch(path, {"fallback_url": bad})
        created = await seller.post("/api/v1/shops", {"name": "B", "domains": ["b.example"], "fallback_url": bad})
        csv = await seller.post(f"{path}/products/bulk", data=f"title,url\nok,https://acme.example/a\nx,{bad}\n",
                                headers={"Content-Type": "text/csv"})
        for reply, field in ((product, "url"), (image, "image_url"), (fallback, "fallback_url"),
                             (created, "fallback_url"), (csv, "url")):
            assert reply.status == 422, (bad, field, reply.status, reply.body)
            detail = reply.body["error"]["details"][0]
            assert detail["field"] == field, (bad, detail)
        assert csv.body["error"]["details"][0]["row"] == 1
    assert (await seller.get(f"{path}/products")).body["items"] == []


async def test_migration_left_nothing_verified_by_itself(make_account: AccountFactory, pool: asyncpg.Pool) -> None:
    """A shop created through the API is pending, and its row carries what the watcher needs."""
    seller = await make_account("seller")
    shop, _ = await pending_shop(seller, ["acme.example"])
    row = await pool.fetchrow("SELECT * FROM shop_domains WHERE shop_id = $1", shop["id"])
    assert row is not None
    assert row["state"] == "pending" and row["verified_at"] is None and row["next_check_at"] is not None


async def test_shop_json_lists_domain_states(make_account: AccountFactory, dns: DnsServer) -> None:
    seller = await make_account("seller")
    shop = await verified_shop(seller, {"name": "Acme", "domains": ["acme.example"]})
    listed = await seller.get("/api/v1/shops")
    assert listed.body["items"][0]["domains"][0]["state"] == "verified"
    assert shop["domains"][0]["verified_by"] == "dns_txt"
