"""Shops, domains and products: CRUD, ownership, URL rules, bulk import, delisting."""

from __future__ import annotations

from typing import Any

import pytest

from support.api import AccountFactory, Api
from support.domains import prove_domains


async def _shop(seller: Api, domains: list[Any] | None = None, *, verified: bool = False,
                **extra: Any) -> dict[str, Any]:
    reply = await seller.post("/api/v1/shops", {"name": "Acme", "domains": domains or ["acme.example"],
                                                **extra})
    assert reply.status == 201, reply.body
    return dict(await prove_domains(seller, reply.body) if verified else reply.body)


async def test_shop_crud_and_ownership(make_account: AccountFactory) -> None:
    seller, other, admin = await make_account("seller"), await make_account("seller"), \
        await make_account("admin")
    shop = await _shop(seller, ["Acme.Example.", {"domain": "acme-cdn.example", "include_subdomains": True}],
                       fallback_url="https://acme.example/sorry")
    assert [d["domain"] for d in shop["domains"]] == ["acme-cdn.example", "acme.example"]
    assert shop["fallback_url"] == "https://acme.example/sorry"
    path = f"/api/v1/shops/{shop['id']}"
    assert (await seller.get(path)).status == 200
    # another seller: 404 on read and write, and nothing changes
    for reply in (await other.get(path), await other.patch(path, {"name": "Mine"}),
                  await other.post(f"{path}/products", {"title": "x", "url": "https://acme.example/x"}),
                  await other.post(f"{path}/domains", {"domain": "evil.example"})):
        assert reply.status == 404, reply.body
    assert (await seller.get(path)).body["name"] == "Acme"
    assert (await other.get("/api/v1/shops")).body["items"] == []
    assert (await admin.get(path)).status == 200
    renamed = await seller.patch(path, {"name": "Acme Outdoor"})
    assert renamed.status == 200 and renamed.body["name"] == "Acme Outdoor"


async def test_domains_add_and_remove(make_account: AccountFactory) -> None:
    seller = await make_account("seller")
    shop = await _shop(seller)
    path = f"/api/v1/shops/{shop['id']}"
    added = await seller.post(f"{path}/domains", {"domain": "bücher.example"})
    assert added.status == 201 and "xn--bcher-kva.example" in [d["domain"] for d in added.body["domains"]]
    product = await seller.post(f"{path}/products", {"title": "Book", "url": "https://bücher.example/b/1"})
    assert product.status == 201 and product.body["url"] == "https://xn--bcher-kva.example/b/1"
    blocked = await seller.delete(f"{path}/domains/xn--bcher-kva.example")
    assert blocked.status == 409 and blocked.body["error"]["details"]["product_ids"] == [product.body["id"]]
    assert (await seller.delete(f"/api/v1/products/{product.body['id']}")).status == 200
    removed = await seller.delete(f"{path}/domains/bücher.example")
    assert removed.status == 200 and [d["domain"] for d in removed.body["domains"]] == ["acme.example"]
    assert (await seller.delete(f"{path}/domains/never.example")).status == 404


@pytest.mark.parametrize(("url", "reason"), [
    ("https://evil.example/p", "foreign domain"),
    ("javascript:alert(document.cookie)", "javascript"),
    ("data:text/html;base64,PHNjcmlwdD4=", "data"),
    ("https://acme.example@evil.example/", "userinfo"),
    ("http://acme.example/p", "http without dev setting"),
    ("https://sub.acme.example/p", "subdomain not allowed"),
    ("https://acme.example.evil.example/p", "suffix"),
    ("//acme.example/p", "scheme-relative"),
    ("https://acme.example/p\nx", "newline"),
])
async def test_product_url_rules(make_account: AccountFactory, url: str, reason: str) -> None:
    seller = await make_account("seller")
    shop = await _shop(seller)
    reply = await seller.post(f"/api/v1/shops/{shop['id']}/products", {"title": "Shoe", "url": url})
    assert reply.status == 422, reason
    assert reply.body["error"]["details"][0]["field"] == "url"
    assert (await seller.get(f"/api/v1/shops/{shop['id']}/products")).body["items"] == []


async def test_product_crud_and_delist(make_account: AccountFactory) -> None:
    seller, other = await make_account("seller"), await make_account("seller")
    shop = await _shop(seller, verified=True)
    created = await seller.post(f"/api/v1/shops/{shop['id']}/products", {
        "title": "Shoe", "url": "https://acme.example/p/1?color=red#top", "price": 89.5, "currency": "EUR",
        "image_url": "https://acme.example/img/shoe.jpg", "sku": "SH-1"})
    assert created.status == 201, created.body
    p = created.body
    assert (p["price"], p["price_minor"], p["currency"]) == ("89.50", 8950, "EUR")
    assert p["url"] == "https://acme.example/p/1?color=red#top"
    path = f"/api/v1/products/{p['id']}"
    assert (await other.get(path)).status == 404
    assert (await other.patch(path, {"title": "Hacked"})).status == 404
    updated = await seller.patch(path, {"price": "79.00"})
    assert updated.status == 200 and updated.body["price_minor"] == 7900
    bad = await seller.patch(path, {"url": "https://evil.example/x"})
    assert bad.status == 422 and (await seller.get(path)).body["url"] == p["url"]
    dup = await seller.post(f"/api/v1/shops/{shop['id']}/products",
                            {"title": "Other", "url": "https://acme.example/p/2", "sku": "SH-1"})
    assert dup.status == 422 and dup.body["error"]["details"][0]["field"] == "sku"
    delisted = await seller.delete(path)
    assert delisted.status == 200 and delisted.body["status"] == "delisted"
    assert (await seller.get(path)).body["status"] == "delisted"  # kept for history
    active = await seller.get(f"/api/v1/shops/{shop['id']}/products?status=active")
    assert active.body["items"] == []
    found = await seller.get("/api/v1/products?q=sho")
    assert [i["id"] for i in found.body["items"]] == [p["id"]]


@pytest.mark.parametrize(("body", "field"), [
    ({"title": "x", "url": "https://acme.example/p", "price": "1.999", "currency": "USD"}, "price"),
    ({"title": "x", "url": "https://acme.example/p", "price": "10"}, "price"),
    ({"title": "x", "url": "https://acme.example/p", "price": "10", "currency": "ZZZ"}, "currency"),
    ({"title": "x", "url": "https://acme.example/p", "price": "-1", "currency": "USD"}, "price"),
    ({"title": "x", "url": "https://acme.example/p", "price": "1.5", "currency": "JPY"}, "price"),
    ({"title": "   ", "url": "https://acme.example/p"}, "title"),
    ({"title": "x", "url": "https://acme.example/p", "image_url": "javascript:x"}, "image_url"),
    ({"title": "x", "url": "https://acme.example/p", "colour": "red"}, "colour"),
    ({"title": 5, "url": "https://acme.example/p"}, "title"),
    ({"url": "https://acme.example/p"}, "title"),
])
async def test_product_field_validation(make_account: AccountFactory, body: dict, field: str) -> None:
    seller = await make_account("seller")
    shop = await _shop(seller)
    reply = await seller.post(f"/api/v1/shops/{shop['id']}/products", body)
    assert reply.status == 422, reply.body
    assert reply.body["error"]["details"][0]["field"] == field


async def test_bulk_import_all_or_nothing(make_account: AccountFactory) -> None:
    seller = await make_account("seller")
    shop = await _shop(seller)
    path = f"/api/v1/shops/{shop['id']}/products/bulk"
    rows = [{"title": f"P{i}", "url": f"https://acme.example/p/{i}", "sku": f"S{i}"} for i in range(50)]
    bad = [*rows[:10], {"title": "Evil", "url": "https://evil.example/"}, *rows[10:]]
    reply = await seller.post(path, bad)
    assert reply.status == 422
    assert reply.body["error"]["details"] == [
        {"row": 10, "field": "url", "code": "invalid",
         "message": reply.body["error"]["details"][0]["message"]}]
    assert (await seller.get(f"/api/v1/shops/{shop['id']}/products")).body["items"] == []
    dup_sku = await seller.post(path, [*rows[:2], {"title": "Dup", "url": "https://acme.example/d", "sku": "S1"}])
    assert dup_sku.status == 422 and dup_sku.body["error"]["details"][0]["row"] == 2
    ok = await seller.post(path, rows)
    assert ok.status == 201 and len(ok.body["items"]) == 50
    assert [p["title"] for p in ok.body["items"]][:3] == ["P0", "P1", "P2"]
    again = await seller.post(path, rows[:1])  # sku now taken
    assert again.status == 422


async def test_bulk_import_csv(make_account: AccountFactory) -> None:
    seller = await make_account("seller")
    shop = await _shop(seller)
    path = f"/api/v1/shops/{shop['id']}/products/bulk"
    csv_ok = "title,url,price,currency,sku\nMug,https://acme.example/mug,12.00,USD,M1\nCup,https://acme.example/cup,,,\n"
    reply = await seller.post(path, data=csv_ok, headers={"Content-Type": "text/csv"})
    assert reply.status == 201, reply.body
    assert [(p["title"], p["price"]) for p in reply.body["items"]] == [("Mug", "12.00"), ("Cup", None)]
    csv_bad = "title,url,price,currency\nA,https://acme.example/a,1,USD\nB,https://evil.example/b,1,USD\n"
    bad = await seller.post(path, data=csv_bad, headers={"Content-Type": "text/csv"})
    assert bad.status == 422 and bad.body["error"]["details"][0]["row"] == 1
    header = await seller.post(path, data="name,link\nx,y\n", headers={"Content-Type": "text/csv"})
    assert header.status == 400 and header.error_code == "malformed_csv"
    assert len((await seller.get(f"/api/v1/shops/{shop['id']}/products")).body["items"]) == 2


async def test_bulk_import_dry_run_checks_every_row_and_stores_nothing(make_account: AccountFactory) -> None:
    seller = await make_account("seller")
    shop = await _shop(seller)
    path = f"/api/v1/shops/{shop['id']}/products/bulk"
    stored = await seller.post(path, [{"title": "Old", "url": "https://acme.example/old", "sku": "OLD"}])
    assert stored.status == 201
    csv_bad = ("title,url,price,currency,sku\nA,https://evil.example/a,1,USD,A1\n"
               "B,https://acme.example/b,1,XXX,OLD\nC,https://acme.example/c,2.50,EUR,C1\n")
    bad = await seller.post(f"{path}?dry_run=true", data=csv_bad, headers={"Content-Type": "text/csv"})
    assert bad.status == 200 and bad.body["valid"] is False and bad.body["count"] == 0, bad.body
    problems = [(d["row"], d["field"]) for d in bad.body["errors"]]
    assert problems == [(0, "url"), (1, "currency")]  # each bad row, in order, the good one not listed
    # The row numbers stay the rows' own even when an earlier row failed: a duplicate SKU after a bad row.
    dup = [{"title": "X", "url": "https://evil.example/x"},
           {"title": "Y", "url": "https://acme.example/y", "sku": "OLD"}]
    dup_reply = await seller.post(f"{path}?dry_run=true", dup)
    assert [(d["row"], d["field"]) for d in dup_reply.body["errors"]] == [(0, "url"), (1, "sku")]
    real_bad = await seller.post(path, dup)  # the same rows without dry_run: the same problems, a 422
    assert real_bad.status == 422 and real_bad.body["error"]["details"] == dup_reply.body["errors"]
    csv_ok = "title,url,price,currency,sku\nC,https://acme.example/c,2.50,EUR,C1\nD,https://acme.example/d,,,\n"
    ok = await seller.post(f"{path}?dry_run=true", data=csv_ok, headers={"Content-Type": "text/csv"})
    assert ok.status == 200, ok.body
    assert ok.body["dry_run"] is True and ok.body["valid"] is True and ok.body["count"] == 2
    assert ok.body["items"][0] == {"title": "C", "url": "https://acme.example/c", "sku": "C1", "image_url": None,
                                   "currency": "EUR", "price_minor": 250}
    listed = (await seller.get(f"/api/v1/shops/{shop['id']}/products")).body["items"]
    assert [p["title"] for p in listed] == ["Old"]  # the dry runs stored nothing
    assert (await seller.post(f"{path}?dry_run=maybe", dup)).status == 400
    real = await seller.post(path, data=csv_ok, headers={"Content-Type": "text/csv"})
    assert real.status == 201 and len(real.body["items"]) == 2


async def test_fallback_url_must_be_on_shop_domain(make_account: AccountFactory) -> None:
    seller = await make_account("seller")
    reply = await seller.post("/api/v1/shops", {"name": "A", "domains": ["acme.example"],
                                                "fallback_url": "https://evil.example/"})
    assert reply.status == 422 and reply.body["error"]["details"][0]["field"] == "fallback_url"
    shop = await _shop(seller)
    bad = await seller.patch(f"/api/v1/shops/{shop['id']}", {"fallback_url": "https://evil.example/"})
    assert bad.status == 422
