"""Inputs the API fuzzer (tests/contract/test_schemathesis.py) found answered with 500: each now a clear 400."""

from __future__ import annotations

from support.affiliate_data import create_plan, seller_with_products
from support.api import AccountFactory, Api
from support.click_data import make_shop


async def test_nul_characters_in_json_text_are_refused_not_a_500(make_account: AccountFactory) -> None:
    seller, _, product_ids = await seller_with_products(make_account, prices=["10.00"])
    plan = await create_plan(seller, product_ids)
    reply = await seller.patch(f"/api/v1/plans/{plan['id']}", {"name": "bad\u0000name"})
    assert (reply.status, reply.error_code) == (400, "invalid_character"), reply.body
    reply = await seller.patch(f"/api/v1/plans/{plan['id']}", {"name\u0000": "x"})
    assert (reply.status, reply.error_code) == (400, "invalid_character"), reply.body
    reply = await seller.post("/api/v1/shops", {"name": "A\u0000", "domains": ["a.example"]})
    assert (reply.status, reply.error_code) == (400, "invalid_character"), reply.body
    assert (await seller.get(f"/api/v1/plans/{plan['id']}")).body["name"] == plan["name"]


async def test_nul_characters_in_csv_and_search_are_refused(make_account: AccountFactory) -> None:
    seller = await make_account("seller")
    shop = await make_shop(seller)
    reply = await seller.post(f"/api/v1/shops/{shop.shop_id}/products/bulk",
                              data="title,url\nShoe\u0000,https://acme.example/p/2\n".encode(),
                              headers={"Content-Type": "text/csv"})
    assert (reply.status, reply.error_code) == (400, "invalid_character"), reply.body
    for path in ("/api/v1/products?q=a%00b", f"/api/v1/shops/{shop.shop_id}/products?q=%00"):
        reply = await seller.get(path)
        assert (reply.status, reply.error_code) == (400, "invalid_character"), (path, reply.body)
    assert len((await seller.get("/api/v1/products")).body["items"]) == 1


async def test_multipart_part_with_a_bad_header_is_a_400(make_account: AccountFactory) -> None:
    creator = await make_account("creator")
    boundary = "b0undary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"ti\x10tle\"\r\n\r\nx\r\n"
            f"--{boundary}--\r\n").encode()
    reply = await creator.post("/api/v1/videos", data=body,
                               headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert (reply.status, reply.error_code) == (400, "malformed_multipart"), reply.body
    assert (await creator.get("/api/v1/videos")).body["items"] == []


async def test_integers_beyond_bigint_are_refused_not_a_500(make_account: AccountFactory) -> None:
    seller, _, product_ids = await seller_with_products(make_account, prices=["10.00"])
    for product_id in (2**63, 2**64 - 1):  # integers beyond bigint: refused while parsing
        reply = await seller.post("/api/v1/plans", {"name": "P", "kind": "open", "rate": "10.00",
                                                    "products": [{"product_id": product_id}]})
        assert (reply.status, reply.error_code) == (400, "invalid_number"), reply.body
    for big in (2**127, 1e19):  # read as floats: the schema's int64 bound refuses them
        reply = await seller.post("/api/v1/plans", {"name": "P", "kind": "open", "rate": "10.00",
                                                    "products": [{"product_id": big}]})
        assert reply.status == 422 and reply.body["error"]["details"][0]["code"] == "maximum", reply.body
    plan = await create_plan(seller, product_ids)  # the largest id that fits is just not found
    assert plan["products"][0]["product_id"] == product_ids[0]
    reply = await seller.post("/api/v1/plans", {"name": "P", "kind": "open", "rate": "10.00",
                                                "products": [{"product_id": 2**63 - 1}]})
    assert reply.status in (404, 422), reply.body


async def test_ids_with_non_ascii_digits_or_thousands_of_digits_are_400_not_500(make_account: AccountFactory, anon: Api,
                                                                               base_url: str) -> None:
    """str.isdigit() accepts '³' and int() refuses it; int() also refuses more than 4300 digits."""
    seller = await make_account("seller")
    shop = await make_shop(seller)
    for bad in ("%C2%B35", "1" * 5000, "99999999999999999999"):
        for api, path in ((seller, f"/api/v1/shops/{bad}"), (anon, f"/watch/live/{bad}"),
                          (anon, f"/v1/live/{bad}"), (seller, f"/api/v1/products?shop_id={bad}")):
            reply = await api.get(path)
            assert reply.status == 400, (path[:60], reply.status)
        reply = await anon.get(f"/demo/shop/products/{bad}")
        assert reply.status == 404
        reply = await seller.get(f"/api/v1/stats/shops/{shop.shop_id}?from={bad}")
        assert reply.status in (400, 422), reply.body
    reply = await anon.get("/v1/live/1/events", headers={"Last-Event-ID": "\u00b35"})
    assert reply.status == 400
