"""shoplink.resp: requests packed by hiredis and sent on redis-py's pool; the click writer's dedicated
connection (shoplink.delivery.connection)."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis
from redis.asyncio.connection import Connection

from shoplink.delivery.connection import RespConnection, RespError
from shoplink.resp import call, call_many, pack, pack_ids, pack_with_last, prefix

from support.services import RedisProcess


def test_packing_matches_redis_py() -> None:
    args: list[bytes | str | int] = [b"XADD", "shoplink:clicks:{0}", 42, "*", b"e", "h\u00e9llo"]
    assert pack(args) == b"".join(Connection().pack_command(*args))
    ids = [b"1-0", b"17-12", b"123456789-1"]  # of several widths, then of one
    for group in (ids, ids[:1] * 3):
        assert pack_ids(["XACK", "k", b"g"], group) == b"".join(Connection().pack_command("XACK", "k", "g", *group))



def test_commands_completed_with_their_last_argument_pack_like_whole_commands() -> None:
    heads = {shard: prefix(b"XADD", f"shoplink:clicks:{{{shard}}}", b"*", b"e") for shard in (0, 1)}
    events = [(1, b'{"a":1}'), (0, b""), (1, "h\u00e9".encode() * 300)]
    assert pack_with_last(heads, events) == b"".join(
        b"".join(Connection().pack_command("XADD", f"shoplink:clicks:{{{shard}}}", "*", "e", event))
        for shard, event in events)
    assert pack_with_last(heads, []) == b""


async def test_call_and_call_many_answer_in_order_and_keep_the_connection_in_step(redis: Redis) -> None:
    assert await call(redis, ["SET", "resp:a", 1]) == b"OK"
    replies = await call_many(redis, [pack(["INCR", "resp:a"]), pack(["GET", "resp:a"])])
    assert replies == [2, b"2"]
    with pytest.raises(Exception, match="WRONGTYPE"):
        await call_many(redis, [pack(["LPUSH", "resp:a", "x"]), pack(["INCR", "resp:a"])])
    assert await redis.get("resp:a") == b"3"  # the second request ran; the pool's connection still works


async def test_the_dedicated_connection_authenticates_and_selects_its_database() -> None:
    proc = RedisProcess()
    proc.start()
    try:
        admin = Redis.from_url(proc.url)
        await admin.config_set("requirepass", "s3cret")
        await admin.aclose()
        for user in ("", "default"):
            conn = RespConnection(f"redis://{user}:s3cret@127.0.0.1:{proc.port}/3")
            await conn.connect()
            assert await conn.call(pack(["SET", f"k{user}", "v"]), 1) == [b"OK"]
            conn.close()
        check = Redis.from_url(f"redis://:s3cret@127.0.0.1:{proc.port}/3")
        assert await check.mget("k", "kdefault") == [b"v", b"v"]
        await check.aclose()
        wrong = RespConnection(f"redis://:nope@127.0.0.1:{proc.port}/0")
        with pytest.raises(RespError, match="refused the handshake"):
            await wrong.connect()
        assert not wrong.connected
    finally:
        proc.cleanup()
