"""RESP requests packed by hiredis and sent without redis-py's per-command machinery.

redis-py packs a command by growing a buffer argument by argument and parses replies command by
command: several microseconds per argument for a command with thousands of them (an EVALSHA or
an XACK of a whole batch), and about 26 µs per XADD in a pipeline. The hot paths pack their
requests here instead, and this module is the one place that packs RESP:

* `pack` / `pack_ids`: one command as RESP bytes, by `hiredis.pack_command` (`pack_ids` for a
  command followed by many stream ids, e.g. `XACK key group id...`).
* `prefix` / `pack_with_last`: many commands that differ only in their last argument (the click
  writer's XADDs: the same key, `*` and field for every event of a shard). hiredis packs the
  constant part once; each command then costs one length and two copies. Measured under
  callgrind per XADD of a 560-byte event: 2,770 instructions, against 10,400 for
  `hiredis.pack_command` on the whole command and 4,680 for the writer's former encoder.
* `call` / `call_many`: send packed requests on a connection of a redis-py client's own pool (a
  single node; on a Redis Cluster the node client that owns a shard's slot,
  `RedisTopology.for_shard`) and read the replies: the count worker, the roll-up and the
  attribution consumer. `Script`: EVALSHA through `call`, loading the script when needed.

The click writer's dedicated connection is `shoplink.delivery.connection.RespConnection`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypeVar

from hiredis import pack_command
from redis.asyncio import Redis
from redis.asyncio.connection import AbstractConnection, ConnectionPool
from redis.exceptions import NoScriptError, ResponseError

Arg = bytes | str | int | float
K = TypeVar("K")

_EMPTY_LAST = b"$0\r\n\r\n"  # how an empty last argument ends a packed command


def pack(args: Sequence[Arg]) -> bytes:
    """One command as RESP (str as UTF-8, int and float as their repr, like redis-py)."""
    # hiredis' stub types the argument as a 1-tuple; any length is packed.
    return pack_command(args if isinstance(args, tuple) else tuple(args))  # type: ignore[arg-type,no-any-return]


def pack_ids(command: Sequence[Arg], ids: Sequence[bytes]) -> bytes:
    """`command` followed by many bytes arguments (stream ids)."""
    return pack_command((*command, *ids))  # type: ignore[arg-type,no-any-return]


def prefix(*args: Arg) -> bytes:
    """The packed form of `args` followed by one more argument still to come (`pack_with_last`):
    hiredis packs the command with an empty last argument, whose bulk string is then cut off
    (the argument count already includes it)."""
    packed: bytes = pack_command((*args, b""))  # type: ignore[arg-type]
    assert packed.endswith(_EMPTY_LAST)
    return packed[: -len(_EMPTY_LAST)]


def pack_with_last(prefixes: Mapping[K, bytes], items: Iterable[tuple[K, bytes]]) -> bytes:
    """One buffer of commands: for each `(k, last)`, `prefixes[k]` (made by `prefix`) completed
    with `last` as its last argument."""
    parts: list[bytes] = []
    for k, last in items:
        parts += (prefixes[k], b"$%d\r\n" % len(last), last, b"\r\n")
    return b"".join(parts)


async def _connection(pool: ConnectionPool) -> AbstractConnection:
    # No command name: redis-py before 5.3 required one, 5.3 on deprecate it (a warning when
    # given); pyproject.toml allows redis-py 8 and later only (asyncio sharded pub/sub).
    return await pool.get_connection()  # type: ignore[no-untyped-call,no-any-return]


async def call(redis: Redis, args: Sequence[Arg] | bytes) -> Any:
    """Send one command (arguments, or an already packed request) and read its reply."""
    pool = redis.connection_pool
    conn = await _connection(pool)
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
    conn = await _connection(pool)
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
