"""examples/jsonl_export.py: an independent consumer group built on the streams alone."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

import asyncpg
import redis as sync_redis
from redis.asyncio import Redis

from shoplink.config import Settings
from shoplink.paths import PROJECT_DIR

from support.analytics_data import seed
from support.api import AccountFactory
from support.event_data import event, write_events, write_raw
from support.funnel_batches import funnel_batches, write_batches


def load_example() -> ModuleType:
    path = PROJECT_DIR / "examples" / "jsonl_export.py"
    spec = importlib.util.spec_from_file_location("jsonl_export_example", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


async def test_exports_hourly_files_with_its_own_group(redis: Redis, settings: Settings,
                                                      tmp_path: Path) -> None:
    example = load_example()
    hour = (int(time.time()) // 3600 - 2) * 3600
    docs = [event(ts_ms=(hour + (i % 2) * 3600) * 1000 + i, anchor_id=i, viewer_id=i) for i in range(40)]
    await write_events(redis, docs)
    await write_raw(redis, 0, {"e": b"not json"})
    for shard in range(4):  # shoplink's counters group exists and is not touched
        await redis.xgroup_create(f"shoplink:clicks:{{{shard}}}", "counters", id="0")

    def run() -> int:
        client = sync_redis.Redis.from_url(settings.redis_url)
        try:
            exported: int = example.export(client, tmp_path, shards=4, once=True)
            return exported
        finally:
            client.close()

    assert await asyncio.to_thread(run) == 40
    names = sorted(p.name for p in tmp_path.iterdir())
    first = datetime.fromtimestamp(hour, UTC).strftime("clicks-%Y%m%d%H.jsonl")
    second = datetime.fromtimestamp(hour + 3600, UTC).strftime("clicks-%Y%m%d%H.jsonl")
    assert names == sorted([first, second, "rejected.jsonl"])
    lines = [json.loads(line) for name in (first, second)
             for line in (tmp_path / name).read_text().splitlines()]
    assert sorted(d["event_id"] for d in lines) == sorted(d["event_id"] for d in docs)
    assert json.loads((tmp_path / "rejected.jsonl").read_text())["reason"] == "unreadable"
    # everything acknowledged by its group; shoplink's group still has all of it to count
    for shard in range(4):
        groups = {g["name"]: g for g in await redis.xinfo_groups(f"shoplink:clicks:{{{shard}}}")}
        assert groups[b"jsonl_export"]["pending"] == 0 and groups[b"jsonl_export"]["lag"] == 0
        assert groups[b"counters"]["entries-read"] is None
    # running again exports nothing twice
    assert await asyncio.to_thread(run) == 0
    # the command line works the same way
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(PROJECT_DIR / "examples" / "jsonl_export.py"), "--redis-url", settings.redis_url,
        "--out", str(tmp_path), "--once", stdout=asyncio.subprocess.PIPE)
    out, _ = await proc.communicate()
    assert proc.returncode == 0 and json.loads(out) == {"exported": 0}


async def test_copies_of_an_event_are_exported_once(redis: Redis, settings: Settings, tmp_path: Path) -> None:
    """At-least-once streams: the same event_id twice (a replayed copy, later in the stream) and
    an exporter restarted after writing part of it: every event_id is in the files once."""
    example = load_example()
    hour = (int(time.time()) // 3600 - 1) * 3600
    docs = [event(ts_ms=hour * 1000 + i, anchor_id=i, viewer_id=i) for i in range(20)]
    await write_events(redis, docs)
    await write_events(redis, [{**d, "replayed": True} for d in docs[5:10]])  # copies after an outage

    def run() -> int:
        client = sync_redis.Redis.from_url(settings.redis_url)
        try:
            exported: int = example.export(client, tmp_path, shards=4, once=True)
            return exported
        finally:
            client.close()

    assert await asyncio.to_thread(run) == 20
    await write_events(redis, docs[:3])  # seen again (as after the exporter's own crash)
    assert await asyncio.to_thread(run) == 0  # the restarted exporter read its files back
    name = datetime.fromtimestamp(hour, UTC).strftime("clicks-%Y%m%d%H.jsonl")
    ids = [json.loads(line)["event_id"] for line in (tmp_path / name).read_text().splitlines()]
    assert sorted(ids) == sorted(d["event_id"] for d in docs)


async def test_exports_the_players_events_one_line_each(redis: Redis, settings: Settings, tmp_path: Path,
                                                        pool: asyncpg.Pool, make_account: AccountFactory) -> None:
    example = load_example()
    seller, creator = await make_account("seller"), await make_account("creator")
    s = await seed(pool, seller.account_id, creator.account_id)
    batches = funnel_batches(s, 12, int(time.time() * 1000) - 60_000)
    await write_batches(redis, batches)

    def run() -> int:
        client = sync_redis.Redis.from_url(settings.redis_url)
        try:
            exported: int = example.export(client, tmp_path, shards=4, once=True)
            return exported
        finally:
            client.close()

    events = sum(len(b["events"]) for b in batches)
    assert await asyncio.to_thread(run) == events
    lines = [json.loads(line) for p in tmp_path.glob("player-events-*.jsonl") for line in p.read_text().splitlines()]
    assert len(lines) == events
    assert {(d["batch_id"], d["index"]) for d in lines} == {
        (b["batch_id"], i) for b in batches for i in range(len(b["events"]))}
    assert {d["type"] for d in lines} == {"impression", "view", "progress"}
    assert all(d["viewer"] and d["ua_class"] and "anchor_id" in d for d in lines)
    assert await asyncio.to_thread(run) == 0
