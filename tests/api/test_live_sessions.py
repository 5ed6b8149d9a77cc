"""Live sessions over HTTP: state machine, product set, pins, ownership."""

from __future__ import annotations

import asyncpg
from aiohttp import ClientSession

from support.api import AccountFactory, Api, ServerFactory
from support.live_data import live_with_products, seller_with_products


async def test_create_list_read_update(make_account: AccountFactory) -> None:
    creator, ids = await seller_with_products(make_account, 2)
    reply = await creator.post("/api/v1/live", {"title": "  Spring drop ",
                                                "planned_start_at": "2030-05-01T18:00:00+02:00",
                                                "product_ids": [*ids, ids[0]]})
    assert reply.status == 201, reply.body
    body = reply.body
    assert body["title"] == "Spring drop" and body["status"] == "scheduled" and body["seq"] == 0
    assert body["planned_start_at"].startswith("2030-05-01T16:00:00")
    assert [p["product_id"] for p in body["products"]] == ids  # duplicates collapse
    codes = [p["code"] for p in body["products"]]
    assert len(set(codes)) == 2
    assert body["products"][0]["link"] == f"http://127.0.0.1:8080/r/{codes[0]}"
    live_id = body["id"]

    listed = await creator.get("/api/v1/live")
    assert [s["id"] for s in listed.body["items"]] == [live_id]
    assert (await creator.get("/api/v1/live?status=live")).body["items"] == []
    assert (await creator.get("/api/v1/live?status=nope")).status == 400

    got = await creator.get(f"/api/v1/live/{live_id}")
    assert got.status == 200 and got.body["viewers"] == 0 and got.body["pins"] == []

    patched = await creator.patch(f"/api/v1/live/{live_id}", {"title": "Renamed",
                                                              "planned_start_at": None})
    assert patched.status == 200 and patched.body["title"] == "Renamed"
    assert patched.body["planned_start_at"] is None

    bad = await creator.patch(f"/api/v1/live/{live_id}", {"planned_start_at": "tomorrow"})
    assert bad.status == 422 and bad.body["error"]["details"][0]["field"] == "planned_start_at"
    naive = await creator.patch(f"/api/v1/live/{live_id}", {"planned_start_at": "2030-01-01T10:00:00"})
    assert naive.status == 422
    assert (await creator.patch(f"/api/v1/live/{live_id}", {})).status == 422
    assert (await creator.patch(f"/api/v1/live/{live_id}", {"status": "live"})).status == 422


async def test_state_machine_and_every_illegal_transition(make_account: AccountFactory) -> None:
    host, ids = await seller_with_products(make_account, 1)
    live_id = await live_with_products(host, ids)
    base = f"/api/v1/live/{live_id}"

    ended_early = await host.post(f"{base}/end")
    assert ended_early.status == 409 and ended_early.body["error"]["code"] == "illegal_transition"
    assert "not started" in ended_early.body["error"]["message"]
    assert (await host.post(f"{base}/pins", {"product_id": ids[0]})).body["error"]["code"] == "not_live"

    started = await host.post(f"{base}/start")
    assert started.status == 200 and started.body["status"] == "live" and started.body["started_at"]
    again = await host.post(f"{base}/start")
    assert again.status == 409 and "already live" in again.body["error"]["message"]
    moved = await host.patch(base, {"planned_start_at": "2030-01-01T10:00:00Z"})
    assert moved.status == 409 and moved.body["error"]["code"] == "illegal_state"
    assert (await host.patch(base, {"title": "Still fine"})).status == 200

    ended = await host.post(f"{base}/end")
    assert ended.status == 200 and ended.body["status"] == "ended" and ended.body["ended_at"]
    for action, words in (("start", "has ended"), ("end", "already ended")):
        reply = await host.post(f"{base}/{action}")
        assert reply.status == 409, reply.body
        assert reply.body["error"]["code"] == "illegal_transition"
        assert words in reply.body["error"]["message"]
    assert (await host.post(f"{base}/pins", {"product_id": ids[0]})).status == 409
    assert (await host.delete(f"{base}/pins/{ids[0]}")).status == 409
    assert (await host.post(f"{base}/products", {"product_ids": ids})).status == 409

    timeline = await host.get(f"{base}/timeline")
    assert [(e["seq"], e["type"]) for e in timeline.body["items"]] == [(1, "start"), (2, "end")]
    assert timeline.body["items"][0]["offset_s"] == 0


async def test_pins_limit_sold_out_and_unpin(make_account: AccountFactory, anon: Api) -> None:
    host, ids = await seller_with_products(make_account, 4)
    live_id = await live_with_products(host, ids, start=True)
    base = f"/api/v1/live/{live_id}"
    for pid in ids[:3]:
        reply = await host.post(f"{base}/pins", {"product_id": pid})
        assert reply.status == 201, reply.body
    full = await host.post(f"{base}/pins", {"product_id": ids[3]})
    assert full.status == 409 and full.body["error"]["code"] == "pin_limit"
    dup = await host.post(f"{base}/pins", {"product_id": ids[0]})
    assert dup.status == 409 and dup.body["error"]["code"] == "already_pinned"

    sold = await host.patch(f"{base}/pins/{ids[1]}", {"sold_out": True})
    assert sold.status == 200
    assert [p["sold_out"] for p in sold.body["pins"]] == [False, True, False]
    same = await host.patch(f"{base}/pins/{ids[1]}", {"sold_out": True})  # no change, no event
    assert same.body["seq"] == sold.body["seq"]
    assert (await host.patch(f"{base}/pins/{ids[3]}", {"sold_out": True})).status == 404

    unpinned = await host.delete(f"{base}/pins/{ids[0]}")
    assert unpinned.status == 200 and [p["product_id"] for p in unpinned.body["pins"]] == ids[1:3]
    assert (await host.delete(f"{base}/pins/{ids[0]}")).status == 404
    assert (await host.post(f"{base}/pins", {"product_id": ids[3]})).status == 201

    state = await anon.get(f"/v1/live/{live_id}")
    assert state.status == 200
    assert [p["product_id"] for p in state.body["pins"]] == [ids[1], ids[2], ids[3]]
    pin = state.body["pins"][0]
    assert pin["title"] == "Product 1" and pin["price"] == "11.50" and pin["currency"] == "EUR"
    assert pin["image_url"] == "https://shop.example/img/1.jpg" and pin["sold_out"] is True
    assert pin["link"] == f"http://127.0.0.1:8080/r/{pin['code']}"
    # start, pin×3, sold_out, unpin, pin
    assert state.body["seq"] == 7 and state.body["status"] == "live"
    timeline = (await host.get(f"{base}/timeline")).body["items"]
    assert [e["type"] for e in timeline] == ["start", "pin", "pin", "pin", "sold_out", "unpin", "pin"]
    offsets = [e["offset_s"] for e in timeline]
    assert offsets == sorted(offsets)


async def test_pin_outside_set_or_delisted(make_account: AccountFactory) -> None:
    host, ids = await seller_with_products(make_account, 3)
    live_id = await live_with_products(host, ids[:2], start=True)
    outside = await host.post(f"/api/v1/live/{live_id}/pins", {"product_id": ids[2]})
    assert outside.status == 422 and outside.body["error"]["details"][0]["code"] == "not_in_set"
    unknown = await host.post(f"/api/v1/live/{live_id}/pins", {"product_id": 999999})
    assert unknown.status == 422
    assert (await host.delete(f"/api/v1/products/{ids[1]}")).status == 200  # delist
    delisted = await host.post(f"/api/v1/live/{live_id}/pins", {"product_id": ids[1]})
    assert delisted.status == 422
    assert delisted.body["error"]["details"][0]["code"] == "product_delisted"
    bad = await host.post(f"/api/v1/live/{live_id}/pins", {"product_id": "1"})
    assert bad.status == 422
    state = await host.get(f"/api/v1/live/{live_id}")
    assert state.body["pins"] == [] and state.body["seq"] == 1  # nothing stored


async def test_other_accounts_session_is_404(make_account: AccountFactory) -> None:
    host, ids = await seller_with_products(make_account, 1)
    live_id = await live_with_products(host, ids, start=True)
    other = await make_account("creator")
    base = f"/api/v1/live/{live_id}"
    for method, path, body in (("GET", base, None), ("PATCH", base, {"title": "x"}),
                               ("POST", f"{base}/start", None), ("POST", f"{base}/end", None),
                               ("POST", f"{base}/pins", {"product_id": ids[0]}),
                               ("DELETE", f"{base}/pins/{ids[0]}", None),
                               ("GET", f"{base}/products", None), ("GET", f"{base}/timeline", None),
                               ("POST", f"{base}/replay", {"video_id": 1})):
        reply = await other.request(method, path, json=body)
        assert reply.status == 404, (method, path, reply.body)
    assert (await other.get("/api/v1/live")).body["items"] == []
    admin = await make_account("admin")
    assert (await admin.get(base)).status == 200


async def test_roles_and_promotion_rights(make_account: AccountFactory) -> None:
    _seller, ids = await seller_with_products(make_account, 1)
    analyst = await make_account("analyst")
    assert (await analyst.post("/api/v1/live", {"title": "x"})).status == 403
    creator = await make_account("creator")
    refused = await creator.post("/api/v1/live", {"title": "x", "product_ids": ids})
    assert refused.status == 422
    assert refused.body["error"]["details"][0]["code"] == "not_promotable"
    assert (await creator.get("/api/v1/live")).body["items"] == []  # nothing stored
    ok = await creator.post("/api/v1/live", {"title": "Just me"})
    assert ok.status == 201 and ok.body["products"] == []
    assert (await creator.post(f"/api/v1/live/{ok.body['id']}/products",
                               {"product_ids": ids})).status == 422


async def test_product_set_limit_and_removal(
        start_server: ServerFactory, make_account: AccountFactory, http: ClientSession,
        pool: asyncpg.Pool) -> None:
    server = await start_server(live_max_products=2)
    seller, ids = await seller_with_products(make_account, 3)
    host = Api(http, str(server.make_url("")), seller.token, seller.account_id)
    too_many = await host.post("/api/v1/live", {"title": "x", "product_ids": ids})
    assert too_many.status == 422
    assert too_many.body["error"]["details"][0]["code"] == "too_many_products"
    live_id = await live_with_products(host, ids[:1])
    added = await host.post(f"/api/v1/live/{live_id}/products", {"product_ids": [ids[1], ids[0]]})
    assert added.status == 200 and [p["product_id"] for p in added.body["items"]] == ids[:2]
    over = await host.post(f"/api/v1/live/{live_id}/products", {"product_ids": [ids[2]]})
    assert over.status == 422

    await host.post(f"/api/v1/live/{live_id}/start")
    await host.post(f"/api/v1/live/{live_id}/pins", {"product_id": ids[0]})
    pinned = await host.delete(f"/api/v1/live/{live_id}/products/{ids[0]}")
    assert pinned.status == 409 and pinned.body["error"]["code"] == "pinned"
    old_code = added.body["items"][1]["code"]
    assert (await host.delete(f"/api/v1/live/{live_id}/products/{ids[1]}")).status == 204
    assert (await host.delete(f"/api/v1/live/{live_id}/products/{ids[1]}")).status == 404
    status = await pool.fetchval("SELECT status FROM anchors WHERE code = $1", old_code)
    assert status == "archived"  # kept, so the code is never reused
    readded = await host.post(f"/api/v1/live/{live_id}/products", {"product_ids": [ids[1]]})
    assert readded.status == 200
    new_code = next(p["code"] for p in readded.body["items"] if p["product_id"] == ids[1])
    assert new_code != old_code
    rows = await pool.fetch("SELECT surface, live_session_id, publisher_id, plan_id FROM anchors "
                            "WHERE live_session_id = $1", live_id)
    assert all(r["surface"] == "live" and r["publisher_id"] == seller.account_id
               and r["plan_id"] is None for r in rows)


async def test_bad_ids_and_bodies(make_account: AccountFactory, anon: Api) -> None:
    host = await make_account("creator")
    assert (await host.get("/api/v1/live/abc")).status == 400
    assert (await host.get("/api/v1/live/999")).status == 404
    assert (await anon.get("/v1/live/999")).status == 404
    assert (await anon.get("/v1/live/999/events")).status == 404
    assert (await anon.get("/api/v1/live")).status == 401
    assert (await host.post("/api/v1/live", {"title": ""})).status == 422
    assert (await host.post("/api/v1/live", {"title": "   "})).status == 422
    assert (await host.post("/api/v1/live", data=b"{", headers={
        "Content-Type": "application/json"})).status == 400
    assert (await host.get("/api/v1/live")).body["items"] == []


async def test_stream_url_is_validated_and_public(make_account: AccountFactory, anon: Api,
                                                  start_server: ServerFactory, http: ClientSession) -> None:
    creator, _ = await seller_with_products(make_account, 1)
    made = await creator.post("/api/v1/live", {"title": "Streamed",
                                               "stream_url": " https://CDN.example/live/main.m3u8 "})
    assert made.status == 201, made.body
    assert made.body["stream_url"] == "https://cdn.example/live/main.m3u8"
    live_id = made.body["id"]
    public = await anon.get(f"/v1/live/{live_id}")
    assert public.body["stream_url"] == "https://cdn.example/live/main.m3u8"
    for bad in ("http://cdn.example/a.m3u8", "javascript:alert(1)", "ftp://cdn.example/a.m3u8", "/relative.m3u8",
                "https://user@cdn.example/a.m3u8", ""):
        reply = await creator.patch(f"/api/v1/live/{live_id}", {"stream_url": bad})
        assert reply.status == 422, (bad, reply.body)
        assert reply.body["error"]["details"][0]["field"] == "stream_url", reply.body
    changed = await creator.patch(f"/api/v1/live/{live_id}", {"stream_url": "https://cdn.example/b.m3u8"})
    assert changed.status == 200 and changed.body["stream_url"] == "https://cdn.example/b.m3u8"
    assert (await anon.get(f"/v1/live/{live_id}")).body["stream_url"] == "https://cdn.example/b.m3u8"
    cleared = await creator.patch(f"/api/v1/live/{live_id}", {"stream_url": None})
    assert cleared.status == 200 and cleared.body["stream_url"] is None
    assert (await creator.post("/api/v1/live", {"title": "x", "stream_url": "http://cdn.example/a"})).status == 422

    # Development mode (SHOPLINK_ALLOW_HTTP_URLS): plain http is accepted too.
    server = await start_server(allow_http_urls=True)
    dev = Api.of(creator, str(server.make_url("")).rstrip("/"))
    reply = await dev.patch(f"/api/v1/live/{live_id}", {"stream_url": "http://127.0.0.1:9000/live.m3u8"})
    assert reply.status == 200 and reply.body["stream_url"] == "http://127.0.0.1:9000/live.m3u8"
