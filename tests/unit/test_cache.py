"""shoplink.cache.InvalidatingCache: the race guard (an invalidation that arrives while a load is in
flight keeps that load's stale answer out), driven by real asyncio tasks; tags, bound, eviction."""

from __future__ import annotations

import asyncio
from collections.abc import Hashable

import pytest

from shoplink.cache import InvalidatingCache
from shoplink.changes import EVERYTHING, Change

Row = tuple[str, frozenset[int]]  # (value, products it shows)


def product_cache(max_entries: int = 100) -> InvalidatingCache[int, Row]:
    """Keys are video ids; an entry is dropped by its video's change and by its products'."""
    return InvalidatingCache(max_entries, lambda key, row: [("video", key), *(("product", p) for p in row[1])])


class Database:
    """A loader that reads, then waits until the test lets it return (the load is in flight)."""

    def __init__(self) -> None:
        self.value = "old"
        self.read = asyncio.Event()
        self.release = asyncio.Event()

    async def load(self, cache: InvalidatingCache[int, Row], key: int, products: frozenset[int]) -> tuple[Row, bool]:
        with cache.loading() as load:
            row = (self.value, products)  # what the database holds when the load reads it
            self.read.set()
            await self.release.wait()
            return row, load.store(key, row)


async def in_flight(db: Database, cache: InvalidatingCache[int, Row], key: int,
                    products: frozenset[int] = frozenset({7})) -> asyncio.Task[tuple[Row, bool]]:
    task = asyncio.create_task(db.load(cache, key, products))
    await db.read.wait()
    assert not task.done()
    return task


async def test_an_invalidation_during_a_load_keeps_its_stale_answer_out() -> None:
    cache, db = product_cache(), Database()
    task = await in_flight(db, cache, 1)
    db.value = "new"  # the row changes after the load read it, and the change is announced
    cache.on_change(Change("product", 7))
    db.release.set()
    (row, stored) = await task
    assert row == ("old", frozenset({7})) and not stored  # the waiter gets the answer; the cache does not
    assert cache.get(1) is None
    again = Database()
    again.value = "new"
    again.release.set()
    assert await again.load(cache, 1, frozenset({7})) == (("new", frozenset({7})), True)  # a new load stores
    assert cache.get(1) == ("new", frozenset({7}))


@pytest.mark.parametrize("change", [Change("video", 1), EVERYTHING])
async def test_the_entrys_own_key_and_everything_count_too(change: Change) -> None:
    cache, db = product_cache(), Database()
    task = await in_flight(db, cache, 1)
    cache.on_change(change)
    db.release.set()
    assert (await task)[1] is False and len(cache) == 0


async def test_an_invalidation_that_does_not_touch_the_answer_lets_it_be_stored() -> None:
    cache, db = product_cache(), Database()
    task = await in_flight(db, cache, 1)
    cache.on_change(Change("product", 8))  # another product
    cache.on_change(Change("video", 2))  # another video
    cache.on_change(Change("shop", 7))  # the same id, another kind
    db.release.set()
    assert (await task)[1] is True and cache.get(1) == ("old", frozenset({7}))


async def test_only_the_loads_in_flight_at_the_invalidation_are_refused() -> None:
    cache = product_cache()
    early, late = Database(), Database()
    first = await in_flight(early, cache, 1)
    cache.on_change(Change("product", 7))
    second = await in_flight(late, cache, 2)  # began after the change: read the new state
    early.release.set()
    late.release.set()
    assert (await first)[1] is False and (await second)[1] is True
    assert set(cache.entries) == {2}


async def test_a_load_closed_by_an_error_no_longer_listens_and_cannot_store() -> None:
    cache = product_cache()
    with pytest.raises(RuntimeError, match="boom"), cache.loading() as load:
        raise RuntimeError("boom")
    cache.on_change(Change("product", 7))  # no open load is told any more
    assert not cache._loads
    with pytest.raises(RuntimeError, match="closed"):
        load.store(1, ("x", frozenset()))


def test_invalidation_drops_entries_through_their_tags_and_forgets_the_tags() -> None:
    cache = product_cache()
    cache.store(1, ("a", frozenset({7, 8})))
    cache.store(2, ("b", frozenset({8})))
    cache.store(3, ("c", frozenset({9})))
    cache.invalidate(("product", 8))
    assert set(cache.entries) == {3}
    assert set(cache._index) == {("video", 3), ("product", 9)}  # no tag left pointing at dropped keys
    cache.store(3, ("c2", frozenset({10})))  # replaced: the old value's tags go with it
    assert set(cache._index) == {("video", 3), ("product", 10)}
    cache.invalidate(("product", 9))
    assert cache.get(3) == ("c2", frozenset({10}))


def test_the_bound_evicts_the_oldest_stored_and_a_restore_makes_an_entry_young() -> None:
    cache = product_cache(max_entries=3)
    rows = {key: (str(key), frozenset({key})) for key in range(5)}
    for key in (0, 1, 2):
        cache.store(key, rows[key])
    cache.get(0)  # a lookup does not make it young
    cache.store(1, rows[1])  # the same value stored again: now the youngest
    cache.store(3, rows[3])  # 0 goes: the oldest stored
    assert set(cache.entries) == {1, 2, 3}
    cache.store(4, rows[4])  # then 2 (1 was stored again after it)
    assert set(cache.entries) == {1, 3, 4}
    tags: set[Hashable] = {t for key in (1, 3, 4) for t in (("video", key), ("product", key))}
    assert set(cache._index) == tags
