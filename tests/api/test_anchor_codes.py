"""One anchor code allocator (anchors.codes.with_new_code) for video anchors, live product sets and
replays: a taken code is retried with another inside the caller's transaction, and running out
of tries is a 409 `code_exhausted` with nothing stored.

The random code generator is replaced by a scripted one; PostgreSQL's UNIQUE index does the rest.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import asyncpg
import pytest

from shoplink.anchors import codes

from support.api import AccountFactory, Api
from support.live_data import insert_video, live_with_products, seller_with_products, set_timeline
from support.video_data import GeneratedVideo, make_video, shop_with_products, upload


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> GeneratedVideo:
    return make_video(tmp_path_factory.mktemp("clips") / "clip.mp4")


@pytest.fixture
def script_codes(monkeypatch: pytest.MonkeyPatch) -> Callable[..., list[str]]:
    """`script_codes(a, b, ...)`: the next codes drawn are a, b, ... (then random again), or
    `forever` every time; returns the list of the codes drawn from then on."""
    drawn: list[str] = []
    real = codes.new_code

    def script(*planned: str, forever: str | None = None) -> list[str]:
        upcoming: Iterator[str] = iter(planned)
        drawn.clear()

        def scripted() -> str:
            code = forever or next(upcoming, None) or real()
            drawn.append(code)
            return code

        monkeypatch.setattr(codes, "new_code", scripted)
        return drawn

    return script


async def _count(pool: asyncpg.Pool, where: str, *args: Any) -> int:
    count: int = await pool.fetchval(f"SELECT count(*) FROM anchors WHERE {where}", *args)
    return count


async def test_video_anchor_codes(make_account: AccountFactory, clip: GeneratedVideo, pool: asyncpg.Pool,
                                  script_codes: Callable[..., list[str]]) -> None:
    seller = await make_account("seller")
    products = await shop_with_products(seller, 2)
    video_id = (await upload(seller, clip)).body["id"]
    path = f"/api/v1/videos/{video_id}/anchors"
    first = await seller.post(path, {"product_id": products[0]["id"], "start_s": 0, "end_s": 1})
    assert first.status == 201, first.body
    taken = first.body["code"]

    drawn = script_codes(taken, taken, "Fresh234")
    second = await seller.post(path, {"product_id": products[1]["id"], "start_s": 1, "end_s": 2})
    assert second.status == 201, second.body
    assert second.body["code"] == "Fresh234" and drawn == [taken, taken, "Fresh234"]

    drawn = script_codes(forever=taken)
    third = await seller.post(path, {"product_id": products[1]["id"], "start_s": 2, "end_s": 3})
    assert third.status == 409 and third.error_code == "code_exhausted", third.body
    assert len(drawn) == codes.MAX_ATTEMPTS
    assert await _count(pool, "video_id = $1", video_id) == 2


async def test_live_product_set_codes(make_account: AccountFactory, pool: asyncpg.Pool,
                                      script_codes: Callable[..., list[str]]) -> None:
    host, ids = await seller_with_products(make_account, 3)
    live_id = await live_with_products(host, ids[:1])
    taken = (await host.get(f"/api/v1/live/{live_id}/products")).body["items"][0]["code"]

    script_codes(taken, "Fresh567")
    added = await host.post(f"/api/v1/live/{live_id}/products", {"product_ids": [ids[1]]})
    assert added.status == 200, added.body
    assert [p["code"] for p in added.body["items"]] == [taken, "Fresh567"]

    # Out of tries: nothing of the request is stored (neither a new session nor its anchors).
    script_codes(forever=taken)
    before = await _count(pool, "surface = 'live'")
    reply = await host.post("/api/v1/live", {"title": "Another", "product_ids": [ids[2]]})
    assert reply.status == 409 and reply.error_code == "code_exhausted", reply.body
    assert await pool.fetchval("SELECT count(*) FROM live_sessions") == 1
    assert await _count(pool, "surface = 'live'") == before
    reply = await host.post(f"/api/v1/live/{live_id}/products", {"product_ids": [ids[2]]})
    assert reply.status == 409 and reply.error_code == "code_exhausted", reply.body
    assert await _count(pool, "surface = 'live'") == before


async def _ended_live_with_two_pins(host: Api, ids: list[int], pool: asyncpg.Pool) -> int:
    live_id = await live_with_products(host, ids, start=True)
    for product_id in ids:
        reply = await host.post(f"/api/v1/live/{live_id}/pins", {"product_id": product_id})
        assert reply.status in (200, 201), reply.body
    assert (await host.post(f"/api/v1/live/{live_id}/end")).status == 200
    await set_timeline(pool, live_id, {1: 0, 2: 10, 3: 20, 4: 60}, 60)
    return live_id


async def test_replay_anchor_codes(make_account: AccountFactory, pool: asyncpg.Pool,
                                   script_codes: Callable[..., list[str]]) -> None:
    host, ids = await seller_with_products(make_account, 2)
    live_id = await _ended_live_with_two_pins(host, ids, pool)
    set_codes = [p["code"] for p in (await host.get(f"/api/v1/live/{live_id}/products")).body["items"]]
    video_id = await insert_video(pool, host.account_id, duration_s=60.0)

    # Every try of the first anchor collides: nothing is stored, the replay can be attached later.
    script_codes(forever=set_codes[0])
    reply = await host.post(f"/api/v1/live/{live_id}/replay", {"video_id": video_id})
    assert reply.status == 409 and reply.error_code == "code_exhausted", reply.body
    assert await _count(pool, "video_id = $1", video_id) == 0
    assert await pool.fetchval("SELECT replay_video_id FROM live_sessions WHERE id = $1", live_id) is None

    # The second anchor's first code is taken (by the first one): retried, in the same transaction.
    script_codes("Replay23", "Replay23", *set_codes, "Replay45")
    reply = await host.post(f"/api/v1/live/{live_id}/replay", {"video_id": video_id})
    assert reply.status == 201, reply.body
    assert [a["code"] for a in reply.body["anchors"]] == ["Replay23", "Replay45"]
    assert await _count(pool, "video_id = $1 AND status = 'active'", video_id) == 2
