"""Anchors on video timestamps over real HTTP: rules, thumbnails, snap, the public timeline, QR."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import asyncpg
import numpy as np
import pytest
from aiohttp import ClientSession
from aiohttp.test_utils import TestServer

from shoplink.anchors.codes import CODE_ALPHABET
from shoplink.catalog.models import Product
from shoplink.keys import CHANGES, PROMOTION_RIGHTS

from support.api import AccountFactory, Api, ServerFactory
from support.video_data import GeneratedVideo, decode_image, frame_number, make_video, read_qr, upload
from support.wait import until


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> GeneratedVideo:
    # 4 s at 25 fps, hard cuts at frames 30 (1.2 s) and 70 (2.8 s).
    return make_video(tmp_path_factory.mktemp("clips") / "clip.mp4")


async def _setup(make_account: AccountFactory, clip: GeneratedVideo) -> tuple[Api, int, list[dict[str, Any]]]:
    """A seller selling on their own: a shop with products and an uploaded video."""
    from support.video_data import shop_with_products

    seller = await make_account("seller")
    products = await shop_with_products(seller, 3)
    reply = await upload(seller, clip)
    assert reply.status == 201, reply.body
    return seller, reply.body["id"], products


def _path(url: str) -> str:
    return "/" + url.split("/", 3)[3]


async def test_create_anchor_returns_code_link_and_exact_thumbnail(
        make_account: AccountFactory, clip: GeneratedVideo, anon: Api) -> None:
    seller, video_id, products = await _setup(make_account, clip)
    reply = await seller.post(f"/api/v1/videos/{video_id}/anchors", {
        "product_id": products[0]["id"], "start_s": 1.52, "end_s": 2.5, "label": " Shoes ",
        "position": {"x": 0.1, "y": 0.2, "w": 0.3, "h": 0.3}})
    assert reply.status == 201, reply.body
    anchor = reply.body
    code = anchor["code"]
    assert len(code) == 8 and set(code) <= set(CODE_ALPHABET)
    assert anchor["link"] == f"http://127.0.0.1:8080/r/{code}"
    assert anchor["plan_id"] is None and anchor["label"] == "Shoes"
    assert anchor["position"] == {"x": 0.1, "y": 0.2, "w": 0.3, "h": 0.3}
    thumb = await anon.get(_path(anchor["thumbnail_url"]))
    assert thumb.status == 200
    assert thumb.headers["Content-Type"] == "image/jpeg"
    assert thumb.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert frame_number(decode_image(thumb.body)) == 38  # floor(1.52 * 25)

    # A chosen thumbnail time, and moving the start: new frames, new URLs.
    chosen = await seller.post(f"/api/v1/videos/{video_id}/anchors", {
        "product_id": products[1]["id"], "start_s": 0.0, "end_s": 1.0, "thumbnail_s": 0.44})
    assert chosen.status == 201, chosen.body
    img = decode_image((await anon.get(_path(chosen.body["thumbnail_url"]))).body)
    assert frame_number(img) == 11
    moved = await seller.patch(f"/api/v1/videos/{video_id}/anchors/{anchor['id']}", {"start_s": 3.0,
                                                                                    "end_s": 3.9})
    assert moved.status == 200, moved.body
    assert moved.body["thumbnail_url"] != anchor["thumbnail_url"]
    assert moved.body["code"] == code
    img = decode_image((await anon.get(_path(moved.body["thumbnail_url"]))).body)
    assert frame_number(img) == 75
    assert (await anon.get("/media/thumbnails/../../etc/passwd")).status == 404
    assert (await anon.get("/media/thumbnails/" + "0" * 32 + ".jpg")).status == 404


async def test_codes_are_unique(make_account: AccountFactory, clip: GeneratedVideo) -> None:
    seller, video_id, products = await _setup(make_account, clip)
    codes = set()
    for n in range(6):
        reply = await seller.post(f"/api/v1/videos/{video_id}/anchors", {
            "product_id": products[n % 3]["id"], "start_s": n * 0.5, "end_s": n * 0.5 + 1})
        assert reply.status == 201, reply.body
        codes.add(reply.body["code"])
    assert len(codes) == 6


@pytest.mark.parametrize(("body", "status", "field"), [
    ({"start_s": 2.0, "end_s": 2.0}, 422, "end_s"),            # start == end
    ({"start_s": 3.0, "end_s": 2.0}, 422, "end_s"),            # start > end
    ({"start_s": 1.0, "end_s": 4.01}, 422, "end_s"),           # past the duration (4 s)
    ({"start_s": 4.0, "end_s": 5.0}, 422, "end_s"),            # wholly outside
    ({"start_s": -0.5, "end_s": 1.0}, 422, "start_s"),         # negative
    ({"start_s": 0, "end_s": 1e300}, 422, "end_s"),            # huge
    ({"start_s": 0, "end_s": "1"}, 422, "end_s"),              # not a number
    ({"start_s": 0, "end_s": True}, 422, "end_s"),             # not a number
    ({"start_s": 0, "end_s": 1, "thumbnail_s": 1.5}, 422, "thumbnail_s"),
    ({"start_s": 0, "end_s": 1, "position": {"x": 0.8, "y": 0, "w": 0.5}}, 422, "position.w"),
    ({"start_s": 0, "end_s": 1, "position": {"x": 1.5, "y": 0}}, 422, "position.x"),
    ({"start_s": 0, "end_s": 1, "colour": "red"}, 422, "colour"),
])
async def test_range_validation(make_account: AccountFactory, clip: GeneratedVideo, body: dict[str, Any],
                                status: int, field: str) -> None:
    seller, video_id, products = await _setup(make_account, clip)
    reply = await seller.post(f"/api/v1/videos/{video_id}/anchors",
                              {"product_id": products[0]["id"], **body})
    assert reply.status == status, reply.body
    assert reply.body["error"]["details"][0]["field"] == field
    assert (await seller.get(f"/api/v1/videos/{video_id}/anchors?status=all")).body["items"] == []


async def test_nan_and_infinity_are_refused(make_account: AccountFactory, clip: GeneratedVideo) -> None:
    seller, video_id, products = await _setup(make_account, clip)
    for raw in (b'{"product_id": %d, "start_s": NaN, "end_s": 1}',
                b'{"product_id": %d, "start_s": 0, "end_s": Infinity}',
                b'{"product_id": %d, "start_s": 0, "end_s": 1e999}'):
        reply = await seller.post(f"/api/v1/videos/{video_id}/anchors",
                                  data=raw % products[0]["id"],
                                  headers={"Content-Type": "application/json"})
        assert reply.status in (400, 422), reply.body
    assert (await seller.get(f"/api/v1/videos/{video_id}/anchors?status=all")).body["items"] == []


async def test_exact_duration_end_is_allowed(make_account: AccountFactory, clip: GeneratedVideo) -> None:
    seller, video_id, products = await _setup(make_account, clip)
    reply = await seller.post(f"/api/v1/videos/{video_id}/anchors",
                              {"product_id": products[0]["id"], "start_s": 3.5, "end_s": 4.0})
    assert reply.status == 201, reply.body


async def test_products_one_may_not_promote(make_account: AccountFactory, clip: GeneratedVideo, server: TestServer,
                                            pool: asyncpg.Pool) -> None:
    seller, _, products = await _setup(make_account, clip)
    creator = await make_account("creator")
    video_id = (await upload(creator, clip)).body["id"]
    path = f"/api/v1/videos/{video_id}/anchors"
    reply = await creator.post(path, {"product_id": products[0]["id"], "start_s": 0, "end_s": 1})
    assert reply.status == 422 and reply.body["error"]["details"][0]["code"] == "not_promotable"
    reply = await creator.post(path, {"product_id": 999_999, "start_s": 0, "end_s": 1})
    assert reply.status == 422 and reply.body["error"]["details"][0]["code"] == "not_promotable"

    # Once the creator is in a plan for the product (the affiliate program's hook), it works and
    # the plan is recorded on the anchor.
    class Plans:  # stands in for the affiliate program PromotionRights was built with
        async def plan_lookup(self, account_id: int, product: Product) -> int | None:
            return 77 if account_id == creator.account_id and product.id == products[0]["id"] else None

    server.app[PROMOTION_RIGHTS].plans = Plans()
    reply = await creator.post(path, {"product_id": products[0]["id"], "start_s": 0, "end_s": 1})
    assert reply.status == 201, reply.body
    assert reply.body["plan_id"] == 77 and reply.body["publisher_id"] == creator.account_id
    reply = await creator.post(path, {"product_id": products[1]["id"], "start_s": 0, "end_s": 1})
    assert reply.status == 422

    # A delisted product cannot be anchored.
    assert (await seller.delete(f"/api/v1/products/{products[0]['id']}")).status == 200
    reply = await creator.post(path, {"product_id": products[0]["id"], "start_s": 1, "end_s": 2})
    assert reply.status == 422 and reply.body["error"]["details"][0]["code"] == "product_delisted"


async def test_anchor_limit_per_video(start_server: ServerFactory, make_account: AccountFactory, clip: GeneratedVideo,
                                      http: ClientSession) -> None:
    limited: TestServer = await start_server(max_anchors_per_video=2)
    seller, video_id, products = await _setup(make_account, clip)
    api = Api(http, str(limited.make_url("")), seller.token)
    path = f"/api/v1/videos/{video_id}/anchors"
    ids = []
    for _ in range(2):  # overlapping anchors are allowed
        reply = await api.post(path, {"product_id": products[0]["id"], "start_s": 0, "end_s": 2})
        assert reply.status == 201, reply.body
        ids.append(reply.body["id"])
    reply = await api.post(path, {"product_id": products[1]["id"], "start_s": 1, "end_s": 3})
    assert reply.status == 422 and reply.error_code == "anchor_limit"
    assert (await api.delete(f"{path}/{ids[0]}")).status == 204  # archiving frees a slot
    assert (await api.post(path, {"product_id": products[1]["id"], "start_s": 1,
                                  "end_s": 3})).status == 201


async def test_snap_to_scene_cuts(make_account: AccountFactory, clip: GeneratedVideo) -> None:
    seller, video_id, products = await _setup(make_account, clip)
    path = f"/api/v1/videos/{video_id}/anchors"
    reply = await seller.post(path, {"product_id": products[0]["id"], "start_s": 1.05, "end_s": 2.6,
                                     "snap": True})
    assert reply.status == 201, reply.body
    assert abs(reply.body["start_s"] - 1.2) <= 0.04 + 1e-9  # the cut at frame 30
    assert abs(reply.body["end_s"] - 2.8) <= 0.04 + 1e-9    # the cut at frame 70
    # Out of tolerance: unchanged; the video's end is a snap target too.
    reply = await seller.post(path, {"product_id": products[0]["id"], "start_s": 0.3, "end_s": 3.8,
                                     "snap": True, "snap_tolerance_s": 0.25})
    assert reply.status == 201, reply.body
    assert reply.body["start_s"] == 0.3 and reply.body["end_s"] == pytest.approx(4.0)
    # Snapping both edges onto the same cut would leave nothing.
    reply = await seller.post(path, {"product_id": products[0]["id"], "start_s": 1.1, "end_s": 1.3,
                                     "snap": True})
    assert reply.status == 422 and reply.error_code == "empty_range"


async def test_update_and_archive_by_owner_only(make_account: AccountFactory, clip: GeneratedVideo) -> None:
    seller, video_id, products = await _setup(make_account, clip)
    other = await make_account("seller")
    path = f"/api/v1/videos/{video_id}/anchors"
    anchor = (await seller.post(path, {"product_id": products[0]["id"], "start_s": 0,
                                       "end_s": 1})).body
    one = f"{path}/{anchor['id']}"
    assert (await other.patch(one, {"label": "x"})).status == 404
    assert (await other.delete(one)).status == 404
    assert (await other.get(one)).status == 404
    reply = await seller.patch(one, {"product_id": products[2]["id"], "end_s": 2.5, "label": "New"})
    assert reply.status == 200, reply.body
    assert (reply.body["product_id"], reply.body["end_s"], reply.body["label"]) == (
        products[2]["id"], 2.5, "New")
    assert reply.body["thumbnail_url"] == anchor["thumbnail_url"]  # same start: same frame
    bad = await seller.patch(one, {"start_s": 3})
    assert bad.status == 422 and bad.error_code == "empty_range"
    assert (await seller.delete(one)).status == 204
    archived = await seller.get(one)
    assert archived.body["status"] == "archived" and archived.body["code"] == anchor["code"]
    assert (await seller.patch(one, {"label": "again"})).status == 409
    assert (await seller.get(path)).body["items"] == []
    assert [a["id"] for a in (await seller.get(f"{path}?status=archived")).body["items"]] == [
        anchor["id"]]


async def test_video_delete_archives_its_anchors(make_account: AccountFactory, clip: GeneratedVideo, anon: Api,
                                                 pool: asyncpg.Pool) -> None:
    seller, video_id, products = await _setup(make_account, clip)
    path = f"/api/v1/videos/{video_id}/anchors"
    ids = [(await seller.post(path, {"product_id": p["id"], "start_s": 0, "end_s": 1})).body["id"]
           for p in products]
    assert (await anon.get(f"/v1/videos/{video_id}/anchors")).status == 200
    assert (await seller.delete(f"/api/v1/videos/{video_id}")).status == 204
    async with pool.acquire() as con:
        rows = await con.fetch("SELECT id, status, code FROM anchors ORDER BY id")
    assert [(r["id"], r["status"]) for r in rows] == [(i, "archived") for i in ids]
    assert (await anon.get(f"/v1/videos/{video_id}/anchors")).status == 404


# ---- the public timeline -------------------------------------------------------------------


async def test_timeline_active_at_half_open_ranges(make_account: AccountFactory, clip: GeneratedVideo,
                                                   anon: Api) -> None:
    seller, video_id, products = await _setup(make_account, clip)
    path = f"/api/v1/videos/{video_id}/anchors"
    spans = [(2.0, 3.0), (0.5, 2.0), (1.0, 2.5)]
    ids = []
    for (start, end), product in zip(spans, products, strict=True):
        reply = await seller.post(path, {"product_id": product["id"], "start_s": start, "end_s": end})
        ids.append(reply.body["id"])

    full = await anon.get(f"/v1/videos/{video_id}/anchors")
    assert full.status == 200
    assert [a["start_s"] for a in full.body["anchors"]] == [0.5, 1.0, 2.0]
    first = full.body["anchors"][0]
    assert first["product"] == {"id": products[1]["id"], "title": "Product 1", "price": "11.50",
                                "currency": "EUR", "image_url": "https://shop.example/img/1.jpg"}
    assert first["link"].endswith("/r/" + first["code"]) and first["thumbnail_url"]
    assert full.body["duration_s"] == pytest.approx(4.0)

    async def active(at: float) -> list[int]:
        reply = await anon.get(f"/v1/videos/{video_id}/anchors?at={at}")
        assert reply.status == 200, reply.body
        return sorted(a["id"] for a in reply.body["anchors"])

    assert await active(0.0) == []
    assert await active(0.5) == [ids[1]]                 # exactly at start: active
    assert await active(1.0) == sorted([ids[1], ids[2]])
    assert await active(1.999) == sorted([ids[1], ids[2]])
    assert await active(2.0) == sorted([ids[0], ids[2]])  # exactly at end: no longer active
    assert await active(2.5) == [ids[0]]
    assert await active(3.0) == []
    assert await active(100) == []
    for bad in ("abc", "-1", "nan", "inf"):
        assert (await anon.get(f"/v1/videos/{video_id}/anchors?at={bad}")).status == 400
    assert (await anon.get("/v1/videos/999999/anchors")).status == 404
    assert (await anon.get("/v1/videos/abc/anchors")).status == 400


async def test_timeline_etag_and_invalidation(make_account: AccountFactory, clip: GeneratedVideo, anon: Api) -> None:
    seller, video_id, products = await _setup(make_account, clip)
    path = f"/api/v1/videos/{video_id}/anchors"
    anchor = (await seller.post(path, {"product_id": products[0]["id"], "start_s": 1,
                                       "end_s": 2})).body
    url = f"/v1/videos/{video_id}/anchors?at=1.5"
    first = await anon.get(url)
    etag = first.headers["ETag"]
    assert first.headers["Cache-Control"] == "public, max-age=5"
    again = await anon.get(url, headers={"If-None-Match": etag})
    assert again.status == 304 and again.headers["ETag"] == etag
    # Other seconds inside the same span share the body and the ETag.
    assert (await anon.get(f"/v1/videos/{video_id}/anchors?at=1.9")).headers["ETag"] == etag

    # A changed anchor changes the answer at once.
    await seller.patch(f"{path}/{anchor['id']}", {"label": "Sale"})
    changed = await anon.get(url, headers={"If-None-Match": etag})
    assert changed.status == 200 and changed.body["anchors"][0]["label"] == "Sale"
    etag = changed.headers["ETag"]
    # A product change (price) shows; a delisted product disappears; relisting brings it back.
    await seller.patch(f"/api/v1/products/{products[0]['id']}", {"price": "99.00"})
    assert (await anon.get(url)).body["anchors"][0]["product"]["price"] == "99.00"
    await seller.delete(f"/api/v1/products/{products[0]['id']}")
    assert (await anon.get(url)).body["anchors"] == []
    await seller.patch(f"/api/v1/products/{products[0]['id']}", {"status": "active"})
    assert len((await anon.get(url)).body["anchors"]) == 1
    # A new anchor shows in the whole timeline; archiving removes it.
    new = (await seller.post(path, {"product_id": products[1]["id"], "start_s": 0,
                                    "end_s": 1})).body
    assert len((await anon.get(f"/v1/videos/{video_id}/anchors")).body["anchors"]) == 2
    await seller.delete(f"{path}/{new['id']}")
    assert len((await anon.get(f"/v1/videos/{video_id}/anchors")).body["anchors"]) == 1


async def test_invalidation_reaches_another_instance_within_a_second(
        server: TestServer, start_server: ServerFactory, make_account: AccountFactory, clip: GeneratedVideo,
        http: ClientSession) -> None:
    other: TestServer = await start_server()
    await asyncio.wait_for(asyncio.gather(server.app[CHANGES].connected.wait(),
                                          other.app[CHANGES].connected.wait()), 10)
    seller, video_id, products = await _setup(make_account, clip)  # on `server`
    path = f"/api/v1/videos/{video_id}/anchors"
    anchor = (await seller.post(path, {"product_id": products[0]["id"], "start_s": 1,
                                       "end_s": 2})).body
    viewer_b = Api(http, str(other.make_url("")), None)
    url = f"/v1/videos/{video_id}/anchors?at=1.5"
    assert (await viewer_b.get(url)).body["anchors"][0]["label"] is None  # cached on B now

    async def label_on_b() -> str | None:
        reply = await viewer_b.get(url)
        anchors = reply.body["anchors"]
        return anchors[0]["label"] if anchors else "(gone)"

    async def label_is(label: str) -> bool:
        return await label_on_b() == label

    await seller.patch(f"{path}/{anchor['id']}", {"label": "Moved"})  # through instance A
    await until(lambda: label_is("Moved"), timeout=1.0, what="instance B serves the new timeline")
    await seller.delete(f"/api/v1/products/{products[0]['id']}")  # catalog change through A
    await until(lambda: label_is("(gone)"), timeout=1.0, what="instance B drops the delisted product")


async def test_qr_code_decodes_to_the_link(make_account: AccountFactory, clip: GeneratedVideo, anon: Api) -> None:
    seller, video_id, products = await _setup(make_account, clip)
    anchor = (await seller.post(f"/api/v1/videos/{video_id}/anchors",
                                {"product_id": products[0]["id"], "start_s": 0, "end_s": 1})).body
    reply = await anon.get(f"/v1/anchors/{anchor['code']}/qr.png")
    assert reply.status == 200 and reply.headers["Content-Type"] == "image/png"
    assert "public" in reply.headers["Cache-Control"]
    assert read_qr(decode_image(reply.body)) == anchor["link"]
    big = await anon.get(f"/v1/anchors/{anchor['code']}/qr.png?scale=16")
    assert decode_image(big.body).shape[0] > decode_image(reply.body).shape[0]
    assert (await anon.get("/v1/anchors/zzzzzzzz/qr.png")).status == 404
    assert (await anon.get("/v1/anchors/bad!code/qr.png")).status == 404
    assert (await anon.get(f"/v1/anchors/{anchor['code']}/qr.png?scale=1000")).status == 400


def _raster_svg(svg: str, px: int = 8) -> Any:
    """The SVG's module grid (its path of unit squares) drawn at `px` pixels per module."""
    side = int(re.search(r'viewBox="0 0 (\d+) \d+"', svg).group(1))  # type: ignore[union-attr]
    grid = np.full((side, side), 255, dtype=np.uint8)
    for x, y, w in re.findall(r"M(\d+) (\d+)h(\d+)v1h-\d+z", svg):
        grid[int(y), int(x):int(x) + int(w)] = 0
    return np.kron(grid, np.ones((px, px), dtype=np.uint8))


async def test_qr_code_as_svg_decodes_to_the_link(make_account: AccountFactory, clip: GeneratedVideo,
                                                  anon: Api) -> None:
    seller, video_id, products = await _setup(make_account, clip)
    anchor = (await seller.post(f"/api/v1/videos/{video_id}/anchors",
                                {"product_id": products[0]["id"], "start_s": 0, "end_s": 1})).body
    reply = await anon.get(f"/v1/anchors/{anchor['code']}/qr.svg?scale=4")
    assert reply.status == 200 and reply.headers["Content-Type"] == "image/svg+xml"
    svg = reply.body if isinstance(reply.body, str) else reply.body.decode()
    assert read_qr(_raster_svg(svg)) == anchor["link"]
    big = await anon.get(f"/v1/anchors/{anchor['code']}/qr.svg?scale=16")
    big_svg = big.body if isinstance(big.body, str) else big.body.decode()
    width = int(big_svg.split('width="', 1)[1].split('"', 1)[0])
    assert width == 4 * int(svg.split('width="', 1)[1].split('"', 1)[0])  # the declared size follows scale
    assert (await anon.get("/v1/anchors/zzzzzzzz/qr.svg")).status == 404
    assert (await anon.get(f"/v1/anchors/{anchor['code']}/qr.svg?scale=1")).status == 400
