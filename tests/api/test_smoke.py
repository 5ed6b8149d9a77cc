from __future__ import annotations

from support.api import AccountFactory, Api


async def test_health_and_first_shop(anon: Api, make_account: AccountFactory) -> None:
    assert (await anon.get("/healthz")).status == 200
    ready = await anon.get("/readyz")
    assert ready.status == 200, ready.body
    seller = await make_account("seller")
    reply = await seller.post("/api/v1/shops", {"name": "Acme", "domains": ["acme.example"]})
    assert reply.status == 201, reply.body
    shop_id = reply.body["id"]
    reply = await seller.post(f"/api/v1/shops/{shop_id}/products",
                              {"title": "Shoe", "url": "https://acme.example/p/1", "price": "19.99",
                               "currency": "USD"})
    assert reply.status == 201, reply.body
    assert reply.body["price"] == "19.99" and reply.body["price_minor"] == 1999
