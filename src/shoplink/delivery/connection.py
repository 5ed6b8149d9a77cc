"""RespConnection: the click writer's dedicated connection to Redis.

It writes one buffer of packed commands (`shoplink.resp`) and counts N replies with hiredis'
parser, keeping partial progress when it breaks (what the writer spools then). Connection
parameters (host, port, unix socket, TLS, user/password, db) come from the same URL redis-py
reads.

At connect it asks for its CLIENT ID, the server's TIME and uptime: after a send whose replies
never came, the writer kills that client (`CLIENT KILL ID`, so that nothing it sent can still be
applied later; only within the same server run, as ids start again at a restart) and looks for
the batch in the streams from a Redis-clock time no later than the send (`since_ms`: the connect
time, then the stream id of each last reply). A server that refuses these commands (an ACL)
gives 0: no kill, and a lookup from the start of the stream.
"""

from __future__ import annotations

import asyncio
import re
import ssl
from typing import Any

import hiredis
from redis.asyncio.connection import SSLConnection, parse_url

from shoplink.resp import pack

_UPTIME = re.compile(rb"^uptime_in_seconds:(\d+)", re.MULTILINE)


class RespError(Exception):
    """The connection failed or Redis answered a handshake command with an error."""


class RespConnection:
    def __init__(self, url: str) -> None:
        self._params: dict[str, Any] = dict(parse_url(url))
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._parser = hiredis.Reader()
        self.received: list[Any] = []  # replies of the current call so far
        self.client_id = 0  # CLIENT ID of the current connection (0: unknown)
        self.since_ms = 0  # a Redis-clock ms no later than anything sent from now on applies
        self.started_ms = 0  # when the server's current run started (Redis clock; 0: unknown)

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
        required = len(handshake)
        handshake += [pack([b"CLIENT", b"ID"]), pack([b"TIME"]), pack([b"INFO", b"server"])]
        try:
            replies = await self.call(b"".join(handshake), len(handshake))
            for reply in replies[:required]:
                if isinstance(reply, hiredis.ReplyError):
                    self.close()
                    raise RespError(f"redis refused the handshake: {reply}")
            client_id, now, info = replies[required:]
            self.client_id = client_id if isinstance(client_id, int) else 0
            self.since_ms = (int(now[0]) * 1000 + int(now[1]) // 1000
                             if isinstance(now, list) and len(now) == 2 else 0)
            uptime = _UPTIME.search(info) if isinstance(info, bytes) else None
            self.started_ms = self.since_ms - int(uptime[1]) * 1000 if uptime and self.since_ms else 0
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
