"""Change notifications that keep in-process caches correct across every instance.

A service that commits a change calls `await bus.publish(Change("product", 42))`. The bus
applies it to this instance's listeners at once, then PUBLISHes it on Redis so every other
instance applies it too (SPUBLISH, sharded pub/sub, on a Redis Cluster: see shoplink.redis).
Listeners are plain functions that drop cache entries; they must be cheap and must not raise.
When the subscription to Redis is lost and comes back, messages may have been missed, so every
listener receives `Change("*", 0)` ("forget everything"); caches also bound staleness with a TTL
in case a message is lost without a disconnect.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass

import orjson
from redis.asyncio import Redis
from redis.exceptions import RedisError

from shoplink.redis import RedisTopology, topology_of

log = logging.getLogger(__name__)

CHANNEL = "shoplink:changes"
RECONNECT_DELAY_S = 0.5


@dataclass(frozen=True)
class Change:
    kind: str  # "product", "shop", "anchor", "video", "live", ... or "*" for everything
    id: int

    @property
    def is_everything(self) -> bool:
        return self.kind == "*"


EVERYTHING = Change("*", 0)
Listener = Callable[[Change], None]


class ChangeBus:
    def __init__(self, redis: Redis | RedisTopology | None = None) -> None:
        self._redis = None if redis is None else topology_of(redis)
        self._listeners: list[Listener] = []
        self.origin = secrets.token_hex(6)
        self.connected = asyncio.Event()

    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def _dispatch(self, change: Change) -> None:
        for listener in self._listeners:
            try:
                listener(change)
            except Exception:
                log.exception("change listener failed", extra={"kind": change.kind})

    async def publish(self, change: Change) -> None:
        self._dispatch(change)
        if self._redis is None:
            return
        payload = orjson.dumps({"o": self.origin, "k": change.kind, "i": change.id})
        try:
            await self._redis.publish(CHANNEL, payload)
        except (RedisError, OSError) as exc:  # other instances fall back on their TTLs
            log.warning("change not broadcast", extra={"kind": change.kind, "error": str(exc)})

    async def run(self) -> None:
        """Receive other instances' changes until cancelled; reconnects forever."""
        assert self._redis is not None
        first = True
        while True:
            subscription = self._redis.subscription(CHANNEL)
            try:
                await subscription.open()
                if not first:  # we may have missed changes while away
                    self._dispatch(EVERYTHING)
                first = False
                self.connected.set()
                async for data in subscription.messages():
                    self._receive(data)
            except (RedisError, OSError) as exc:
                self.connected.clear()
                log.warning("change subscription lost", extra={"error": str(exc)})
                await asyncio.sleep(RECONNECT_DELAY_S)
            finally:
                await subscription.close()

    def _receive(self, data: object) -> None:
        if not isinstance(data, bytes):
            return
        try:
            msg = orjson.loads(data)
            change = Change(str(msg["k"]), int(msg["i"]))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            log.warning("malformed change message ignored")
            return
        if msg.get("o") != self.origin:
            self._dispatch(change)
