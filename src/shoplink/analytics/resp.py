"""Sending very long commands (an EVALSHA with thousands of arguments, an XACK of a whole batch).

redis-py packs a command by growing a buffer chunk by chunk, which costs several microseconds per
argument when a command has tens of thousands of them; at 100k events/s that alone would be the
bottleneck. `call` packs the RESP request in one pass and sends it on a connection of the
client's own pool: a single Redis node (on a Redis Cluster, the node client that owns the shard's
slot: `RedisTopology.for_shard`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import NoScriptError, ResponseError

Arg = bytes | str | int


def pack(args: Sequence[Arg]) -> bytes:
    parts = [b"*%d\r\n" % len(args)]
    append = parts.append
    for arg in args:
        if type(arg) is not bytes:
            arg = (arg if type(arg) is str else str(arg)).encode()
        append(b"$%d\r\n" % len(arg))
        append(arg)
        append(b"\r\n")
    return b"".join(parts)


def pack_ids(command: Sequence[Arg], ids: Sequence[bytes]) -> bytes:
    """`command` followed by many bytes arguments (stream ids)."""
    head = [a if type(a) is bytes else str(a).encode() for a in command]
    return b"".join([b"*%d\r\n" % (len(head) + len(ids)),
                     *[b"$%d\r\n%b\r\n" % (len(a), a) for a in head],
                     *[b"$%d\r\n%b\r\n" % (len(a), a) for a in ids]])


async def call(redis: Redis, args: Sequence[Arg] | bytes) -> Any:
    """Send one command (arguments, or an already packed request) and read its reply."""
    pool = redis.connection_pool
    conn = await pool.get_connection()  # type: ignore[no-untyped-call]
    try:
        await conn.send_packed_command(args if isinstance(args, bytes) else pack(args), check_health=False)
        return await conn.read_response()
    except ResponseError:
        raise  # an error reply: the connection is still in step
    except BaseException:
        await conn.disconnect()
        raise
    finally:
        await pool.release(conn)


class Script:
    """EVALSHA through `call`, loading the script when the server does not know it.

    The client is given per call: on a Redis Cluster each shard's calls go to its own node
    (and each node loads the script the first time it is asked)."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()

    async def packed(self, redis: Redis, request: bytes) -> Any:
        """Run an EVALSHA request packed by the caller (with this script's sha)."""
        try:
            return await call(redis, request)
        except NoScriptError:
            await redis.script_load(self.source)
            return await call(redis, request)

    async def __call__(self, redis: Redis, keys: Sequence[Arg], args: Sequence[Arg]) -> Any:
        command: list[Arg] = ["EVALSHA", self.sha, len(keys), *keys, *args]
        try:
            return await call(redis, command)
        except NoScriptError:
            await redis.script_load(self.source)
            return await call(redis, command)
