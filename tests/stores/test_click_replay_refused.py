"""A spool replay that Redis refuses in part: the refused events stay in the spool.

Found by bench/soak.py: right after a restart Redis answers LOADING until its append-only file
is loaded, so one pipelined replay batch can fail at its head and succeed after it. The writer
used to count the acknowledged events and move the replay position past that many lines, which
skipped the refused ones (lost) and sent the acknowledged ones again (duplicates). Here WRONGTYPE
on one shard refuses events in the middle of a batch, deterministically."""

from __future__ import annotations

from pathlib import Path

import orjson
from redis.asyncio import Redis

from shoplink.delivery.spool import encode_lines
from shoplink.delivery.writer import ClickWriter
from shoplink.ids import new_ulid

from support.click_data import stream_entries
from support.services import RedisProcess
from support.wait import until


async def test_events_refused_in_the_middle_of_a_replay_batch_are_not_skipped(
        redis_proc: RedisProcess, redis: Redis, tmp_path: Path) -> None:
    # A spool left by a dead process: shard 1, then shard 0, then shard 1 again.
    records = [(shard, orjson.dumps({"event_id": new_ulid(), "n": n}))
               for n, shard in enumerate([1, 1, 1, 0, 0, 0, 1, 1, 1])]
    (tmp_path / "clicks-1-dead.spool").write_bytes(encode_lines(records))
    await redis.set("shoplink:clicks:{0}", "not a stream")  # XADD answers WRONGTYPE on shard 0
    writer = ClickWriter(redis_proc.url, tmp_path)
    await writer.start()
    try:
        await until(lambda: writer.write_errors >= 3)  # the replay was refused in part
        await until(lambda: writer.write_errors >= 6)  # and retried (and refused) at least once more
        await redis.delete("shoplink:clicks:{0}")
        await until(lambda: not writer.spool_pending)
    finally:
        await writer.close()
    entries = await stream_entries(redis)
    sent = {orjson.loads(payload)["event_id"] for _, payload in records}
    assert {event["event_id"] for _, event in entries} == sent  # none skipped
    assert sorted(event["n"] for key, event in entries if key == "shoplink:clicks:{0}") == [3, 4, 5]
    assert all(event["replayed"] is True for _, event in entries)
    assert not list(tmp_path.glob("*.spool"))
