"""A steady click load for fault tests, and the checks that nothing it was answered went missing:
in the click streams, and in what `shoplink count` counted (through the stats API)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

from aiohttp import ClientSession
from redis.asyncio import Redis

from support.api import Api, Reply
from support.click_data import stream_events
from support.wait import until

BROWSER_UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"


class ClickLoad:
    """`concurrency` viewers clicking the codes in turn, each waiting for its answer, until
    `stop()` (or `max_clicks` answered, or `max_s` seconds: the load always ends by itself)."""

    def __init__(self, base_url: str, codes: Sequence[str], *, concurrency: int = 4,
                 max_clicks: int = 50_000, max_s: float = 60.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.codes = list(codes)
        self.concurrency = concurrency
        self.max_clicks = max_clicks
        self.max_s = max_s
        self.answered: dict[str, list[str]] = {code: [] for code in codes}  # code -> click ids
        self.unexpected: list[tuple[str, int]] = []
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def total(self) -> int:
        return sum(len(ids) for ids in self.answered.values())

    def ids(self) -> set[str]:
        return {i for ids in self.answered.values() for i in ids}

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        self._stop.set()
        assert self._task is not None
        await self._task

    async def until_more(self, count: int, timeout: float = 30.0) -> None:
        """Wait until `count` more clicks have been answered."""
        goal = self.total + count

        def answered() -> bool:
            assert self._task is not None and not self._task.done()
            return self.total >= goal

        await until(answered, timeout=timeout, what=f"{count} more clicks answered")

    async def _run(self) -> None:
        deadline = time.monotonic() + self.max_s
        async with ClientSession(headers={"User-Agent": BROWSER_UA}) as http:
            async def viewer(n: int) -> None:
                i = n
                while not self._stop.is_set() and self.total < self.max_clicks and time.monotonic() < deadline:
                    code = self.codes[i % len(self.codes)]
                    i += 1
                    async with http.get(f"{self.base_url}/r/{code}", allow_redirects=False) as resp:
                        await resp.read()
                        if resp.status != 302:
                            self.unexpected.append((code, resp.status))
                            continue
                        self.answered[code].append(resp.headers["Location"].rsplit("sl_click=", 1)[1].split("#")[0])

            await asyncio.gather(*(viewer(n) for n in range(self.concurrency)))


async def wait_for_count_group(redis: Redis, shards: int = 4, timeout: float = 30.0) -> None:
    """Until a started worker has created the `counters` group on every shard (it is counting)."""
    async def created(shard: int) -> bool:
        if not await redis.exists(f"shoplink:clicks:{{{shard}}}"):
            return False
        groups = await redis.xinfo_groups(f"shoplink:clicks:{{{shard}}}")
        return any(g["name"] in (b"counters", "counters") for g in groups)

    async def everywhere() -> bool:
        return all([await created(shard) for shard in range(shards)])

    await until(everywhere, timeout=timeout, interval=0.05, what="the counters group on every shard")


async def group_backlog(redis: Redis, shards: int = 4) -> int:
    """Entries of the `counters` group not yet acknowledged (pending) plus 1 per shard whose
    newest entry was not delivered yet. XINFO's `lag` is not used: it is derived from Redis'
    entries-read counter, an estimate that can read 0 while entries still wait."""
    backlog = 0
    for shard in range(shards):
        stream = f"shoplink:clicks:{{{shard}}}"
        groups = await redis.xinfo_groups(stream)
        group = next(g for g in groups if g["name"] in (b"counters", "counters"))
        last = (await redis.xinfo_stream(stream))["last-generated-id"]
        backlog += int(group["pending"]) + (0 if group["last-delivered-id"] == last else 1)
    return backlog


async def wait_until_counted(redis: Redis, timeout: float = 30.0) -> None:
    async def caught_up() -> bool:
        return await group_backlog(redis) == 0

    await until(caught_up, timeout=timeout, interval=0.05)


async def wait_for_ids(redis: Redis, want: set[str], timeout: float = 30.0) -> list[dict[str, Any]]:
    """Every event in the streams once they hold all of `want`."""
    async def complete() -> list[dict[str, Any]] | None:
        events = await stream_events(redis)
        return events if want <= {e["event_id"] for e in events} else None

    return await until(complete, timeout=timeout, interval=0.05, what=f"{len(want)} click ids in the streams")


async def counted_clicks(api: Api, anchor_id: int) -> int:
    """The anchor's total clicks as the stats API tells them (counters plus roll-ups)."""
    async def answered() -> Reply | None:
        reply = await api.get(f"/api/v1/stats/anchors/{anchor_id}?granularity=minute&from="
                              f"{int(time.time()) - 3000}")
        # 503: a roll-up is moving this anchor's counters right now
        return None if reply.status == 503 else reply

    reply = await until(answered, interval=0.05, what="the stats API answers")
    assert reply.status == 200, reply.body
    clicks: int = reply.body["totals"]["clicks"]
    return clicks
