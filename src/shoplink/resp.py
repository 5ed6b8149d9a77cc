"""RESP requests packed in one pass and sent without redis-py's per-command machinery.

redis-py packs a command by growing a buffer argument by argument and parses replies command by
command: several microseconds per argument for a command with thousands of them (an EVALSHA or
an XACK of a whole batch), and about 26 µs per XADD in a pipeline. The hot paths pack their
requests here instead:

* `pack` / `pack_ids`: one command as RESP bytes (`pack_ids` for a command followed by many
  stream ids, e.g. `XACK key group id...`).
* `call` / `call_many`: send packed requests on a connection of a redis-py client's own pool (a
  single node; on a Redis Cluster the node client that owns a shard's slot,
  `RedisTopology.for_shard`) and read the replies: the count worker, the roll-up and the
  attribution consumer. `Script`: EVALSHA through `call`, loading the script when needed.
* `RespConnection`: a dedicated connection that writes one buffer and counts N replies with
  hiredis' parser, keeping partial progress when it breaks: the click writer's batches of XADDs.
  Connection parameters (host, port, unix socket, TLS, user/password, db) come from the same
  URL redis-py reads.
"""

from __future__ import annotations

import asyncio
import hashlib
import ssl
from collections.abc import Sequence
from typing import Any

import hiredis
from redis.asyncio import Redis
from redis.asyncio.connection import SSLConnection, parse_url
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


class RespError(Exception):
    """The connection failed or Redis answered a handshake command with an error."""


class RespConnection:
    def __init__(self, url: str) -> None:
        self._params: dict[str, Any] = dict(parse_url(url))
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._parser = hiredis.Reader()
        self.received: list[Any] = []  # replies of the current call so far

    @property
    def connected(self) -> bool:
        return self._writer is not None and not self._writer.is_closing()

    async def connect(self) -> None:
        """Open, authenticate and select the db (call under a timeout)."""
        params = self._params
        if "path" in params:
            reader, writer = await asyncio.open_unix_connection(params["path"])
        else:
            tls = ssl.create_default_context() if params.get("connection_class") is SSLConnection else None
            reader, writer = await asyncio.open_connection(params.get("host", "localhost"),
                                                           params.get("port", 6379), ssl=tls)
        self._reader, self._writer = reader, writer
        self._parser = hiredis.Reader()
        handshake: list[bytes] = []
        if params.get("password"):
            user = params.get("username")
            args = [b"AUTH"] + ([str(user).encode()] if user else []) + [str(params["password"]).encode()]
            handshake.append(pack(args))
        if params.get("db"):
            handshake.append(pack([b"SELECT", params["db"]]))
        try:
            if handshake:
                for reply in await self.call(b"".join(handshake), len(handshake)):
                    if isinstance(reply, hiredis.ReplyError):
                        self.close()
                        raise RespError(f"redis refused the handshake: {reply}")
        finally:
            self.received = []  # the handshake's replies answer none of the caller's commands

    async def call(self, payload: bytes, replies: int) -> list[Any]:
        """Write `payload` (which holds `replies` commands) and return the replies in order; an
        error reply is returned as a hiredis.ReplyError, not raised. Partial progress is kept in
        `self.received` when the connection breaks half way."""
        if self._writer is None or self._reader is None:
            raise RespError("not connected")
        self.received = []
        self._writer.write(payload)
        await self._writer.drain()
        parser, out = self._parser, self.received
        while len(out) < replies:
            reply = parser.gets()
            if reply is False:
                data = await self._reader.read(1 << 16)
                if not data:
                    raise ConnectionResetError("redis closed the connection")
                parser.feed(data)
                continue
            out.append(reply)
        return out

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._writer = self._reader = None
