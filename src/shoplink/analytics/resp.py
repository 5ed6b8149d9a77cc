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
    start = b"".join([b"*%d\r\n" % (len(head) + len(ids)), *[b"$%d\r\n%b\r\n" % (len(a), a) for a in head]])
    widths = set(map(len, ids))
    if len(widths) == 1:  # ids of one width (the usual case): one C-level join
        prefix = b"$%d\r\n" % widths.pop()
        return b"".join([start, prefix, (b"\r\n" + prefix).join(ids), b"\r\n"])
    return b"".join([start, *[b"$%d\r\n%b\r\n" % (len(a), a) for a in ids]])


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


async def call_many(redis: Redis, requests: Sequence[bytes]) -> list[Any]:
    """Send already packed requests in one write (a pipeline without redis-py's per-command
    machinery) and read their replies, in order. An error reply raises, after every reply has
    been read (the connection stays in step)."""
    if not requests:
        return []
    pool = redis.connection_pool
    conn = await pool.get_connection()  # type: ignore[no-untyped-call]
    try:
        await conn.send_packed_command(b"".join(requests), check_health=False)
        replies: list[Any] = []
        error: ResponseError | None = None
        for _ in requests:
            try:
                replies.append(await conn.read_response())
            except ResponseError as exc:
                error = error or exc
                replies.append(None)
        if error is not None:
            raise error
        return replies
    except ResponseError:
        raise
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
