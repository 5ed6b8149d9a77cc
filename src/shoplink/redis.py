"""Redis: one node or a Redis Cluster, decided here and nowhere else.

`RedisTopology.from_settings(settings)` gives

- `client`: the general client. On one node a `redis.asyncio.Redis`; on a cluster a
  `redis.asyncio.cluster.RedisCluster`, which sends each command to the node owning its key's slot
  (following MOVED/ASK) and splits pipelines and multi-key DEL by node. Every key of a click shard
  carries the hash tag `{n}`, so each command and Lua script touches one slot.
- `for_shard(n)` / `for_key(key)`: a plain `Redis` client bound to the node that owns the slot
  (on one node: `client` itself). Code that writes packed RESP itself (the count worker's EVALSHA
  and XACK, the raw XREADGROUP readers) needs a single connection pool, hence a node client.
- `url_for_shard(n)`: the same node as a URL, for the click writer's own connections.
- `publish` / `subscription`: plain PUBLISH/SUBSCRIBE on one node; sharded pub/sub (SPUBLISH /
  SSUBSCRIBE, Redis 7+) on a cluster, where a plain PUBLISH would be broadcast over the cluster
  bus to every node: a channel lives on the node owning its slot.

Failures: a node client does not follow MOVED by itself. Code that gets a MOVED/ASK/CLUSTERDOWN
reply or loses a node connection calls `request_refresh()` (the count worker, the attribution
consumer, the click writer and the subscriptions do), which re-reads the slot map in the
background; the next `for_shard` answers with the new owner. A node that restarts keeps its
address and slots (nodes.conf): its clients reconnect by themselves.

Stale connections: every client made here (the one-node client, the cluster client, the node
clients) sends a command once more on a new connection when its pooled connection turns out to
be closed (Redis restarted since it was last used), so the first request after a restart does
not fail; a Redis that is really down still fails a command at once (`command_retry`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.connection import SSLConnection, parse_url
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import (
    AskError,
    ClusterDownError,
    MovedError,
    RedisClusterException,
    RedisError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError

from shoplink.config import Settings
from shoplink.streams import stream_key

log = logging.getLogger(__name__)

AnyRedis = Redis | RedisCluster  # the key-routed general client
REFRESH_MIN_INTERVAL_S = 0.5
_OPTIONS: dict[str, Any] = {"socket_connect_timeout": 2, "socket_timeout": 5}
# Retries of a command whose connection failed (see `command_retry`).
RETRIES = 1
RETRY_BACKOFF_S = 0.05
# Replies and failures after which a cluster's slot map is read again.
TOPOLOGY_ERRORS = (MovedError, AskError, ClusterDownError, TryAgainError, RedisConnectionError,
                   RedisClusterException, OSError)


def command_retry() -> Retry:
    """What every client of the topology does when a command's connection fails.

    A pooled connection goes stale when Redis restarts (or closes it: `timeout`, a failover):
    the next command on it fails with `ConnectionError: Connection closed by server` although
    Redis is up again. The command is then sent once more on a new connection, after
    RETRY_BACKOFF_S. Only connection errors are retried (BusyLoadingError, Redis still loading
    its data, is one), never a timeout: a Redis that does not answer costs a request one
    `socket_timeout`, not several. While Redis is down a command fails after two connection
    attempts (about 50 ms), so the API still answers 503 at once.

    redis-py's own default (`Redis(...)`: 10 retries with backoff, timeouts included) is not
    used, and `Redis.from_url` alone gives pooled connections no retry at all.
    """
    return Retry(ExponentialBackoff(cap=RETRY_BACKOFF_S, base=RETRY_BACKOFF_S), RETRIES,
                 supported_errors=(RedisConnectionError,))


def create_redis(url: str) -> Redis:
    # decode_responses stays off: stream payloads are bytes and parsed with orjson.
    return Redis.from_url(url, health_check_interval=30, retry=command_retry(), **_OPTIONS)


class TopologyUnknown(RedisConnectionError):
    """The cluster's slot map has not been read yet (no node answered so far)."""


def _as_returned(response: Any, **_options: Any) -> Any:
    return response


class RedisTopology:
    """The Redis client(s) of a process and where each shard lives (see the module doc)."""

    def __init__(self, url: str, cluster_nodes: tuple[str, ...] = (),
                 *, client: Redis | None = None) -> None:
        self.url = url
        self.cluster_nodes = cluster_nodes
        self._single: Redis | None = None
        self._cluster: RedisCluster | None = None
        self._node_clients: dict[str, Redis] = {}
        self._stream_readers: dict[int, Redis] = {}  # by id() of the node client
        self._node_options: dict[str, Any] = {}
        self._refresh_task: asyncio.Task[None] | None = None
        self._last_refresh = 0.0
        self._owned = client is None
        if not cluster_nodes:
            self._single = client or create_redis(url)
            return
        params: dict[str, Any] = dict(parse_url(url))
        for name in ("host", "port", "db", "path"):
            params.pop(name, None)
        if params.pop("connection_class", None) is SSLConnection:
            params["ssl"] = True
        self._node_options = {**params, **_OPTIONS, "health_check_interval": 30}  # + a retry each
        seeds = [ClusterNode(host.strip("[]"), int(port)) for host, _, port in
                 (node.rpartition(":") for node in cluster_nodes)]
        # Without full coverage the client still starts (and routes) while one node is down:
        # only that node's shards and channels are unavailable (the nodes should run with
        # `cluster-require-full-coverage no` for the same reason).
        # The cluster client retries a failed command itself (after re-reading the slot map; no
        # backoff) on connection errors *and* timeouts, by default 10 times: once is enough for a
        # stale connection and keeps a hung node at two socket timeouts.
        self._cluster = RedisCluster(startup_nodes=seeds, require_full_coverage=False,
                                     retry=command_retry(), **params, **_OPTIONS)

    @classmethod
    def from_settings(cls, settings: Settings) -> RedisTopology:
        return cls(settings.redis_url, settings.redis_cluster_nodes)

    @classmethod
    def wrap(cls, client: Redis) -> RedisTopology:
        """A one-node topology around an existing client (closing it stays the caller's job)."""
        return cls("", client=client)

    @property
    def cluster(self) -> bool:
        return self._cluster is not None

    @property
    def client(self) -> AnyRedis:
        if self._cluster is not None:
            return self._cluster
        assert self._single is not None
        return self._single

    # ---- where a key lives ---------------------------------------------------------------------

    async def connect(self) -> bool:
        """Read the cluster's slot map now (nothing to do on one node). Never raises: when no
        node answers, the map is read again on the first use (callers retry on RedisError)."""
        if self._cluster is None:
            return True
        try:
            await self._cluster.initialize()
        except (RedisError, RedisClusterException, OSError) as exc:
            log.warning("redis cluster unreachable; will retry", extra={"error": repr(exc)})
            return False
        return True

    def _node(self, key: str) -> ClusterNode:
        assert self._cluster is not None
        try:
            node = self._cluster.get_node_from_key(key)
        except RedisClusterException:  # SlotNotCoveredError: the slot map is not read yet
            node = None
        if node is None:
            self.request_refresh()
            raise TopologyUnknown(f"redis cluster: the owner of {key!r} is not known yet")
        return node

    def for_key(self, key: str) -> Redis:
        """A client of the node that owns `key`'s slot (raises a RedisError while unknown)."""
        if self._single is not None:
            return self._single
        return self._client_of(self._node(key))

    def for_shard(self, shard: int) -> Redis:
        return self.for_key(stream_key(shard))

    def stream_reader(self, shard: int) -> Redis:
        """A client of shard `shard`'s node whose XREADGROUP replies are left as hiredis returns
        them (nested lists): the consumers turn them into entries in one pass, where redis-py's
        generic parsing cost about as much as the rest of reading. Same connection pool as
        `for_shard`; one such client per node."""
        node = self.for_shard(shard)
        reader = self._stream_readers.get(id(node))
        if reader is None:
            reader = self._stream_readers[id(node)] = Redis(connection_pool=node.connection_pool)
            reader.set_response_callback("XREADGROUP", _as_returned)
        return reader

    def url_for_shard(self, shard: int) -> str:
        """The URL of the node that owns shard `shard` (credentials and TLS from the settings)."""
        if self._single is not None:
            return self.url
        node = self._node(stream_key(shard))
        return node_url(self.url, node.host, int(node.port))

    def request_refresh(self, exc: BaseException | None = None) -> None:
        """Re-read the slot map in the background (cluster only; at most every 0.5 s).

        Pass the error that made you ask: only topology-related ones trigger a refresh."""
        if self._cluster is None or (exc is not None and not isinstance(exc, TOPOLOGY_ERRORS)):
            return
        if self._refresh_task is not None and not self._refresh_task.done():
            return
        now = time.monotonic()
        if now - self._last_refresh < REFRESH_MIN_INTERVAL_S:
            return
        self._last_refresh = now
        try:
            self._refresh_task = asyncio.get_running_loop().create_task(
                self._refresh(), name="redis-cluster-refresh")
        except RuntimeError:  # no running loop (shutdown): the next use asks again
            self._refresh_task = None

    async def refresh(self) -> None:
        """Re-read the slot map now."""
        await self._refresh()

    async def _refresh(self) -> None:
        cluster = self._cluster
        assert cluster is not None
        try:
            if not cluster.get_nodes():
                await cluster.initialize()
            else:
                await cluster.nodes_manager.initialize()
        except (RedisError, RedisClusterException, OSError) as exc:
            log.warning("redis cluster slot map not refreshed", extra={"error": repr(exc)})

    # ---- health ------------------------------------------------------------------------------

    async def ping(self) -> None:
        """PING the node, or every primary of the cluster."""
        if self._single is not None:
            await self._single.ping()
            return
        assert self._cluster is not None
        await self._cluster.initialize()
        for node in self._cluster.get_primaries():
            await self._client_of(node).ping()

    def _client_of(self, node: ClusterNode) -> Redis:
        client = self._node_clients.get(node.name)
        if client is None:
            client = Redis(host=node.host, port=int(node.port), retry=command_retry(),
                           **self._node_options)
            self._node_clients[node.name] = client
        return client

    # ---- pub/sub -----------------------------------------------------------------------------

    async def publish(self, channel: str, payload: bytes) -> None:
        if self._single is not None:
            await self._single.publish(channel, payload)
            return
        try:
            await self.for_key(channel).spublish(channel, payload)
        except TOPOLOGY_ERRORS as exc:
            self.request_refresh(exc)
            raise

    def subscription(self, channel: str) -> Subscription:
        return Subscription(self, channel)

    async def aclose(self) -> None:
        if self._refresh_task is not None:
            self._refresh_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, RedisError, OSError):
                await self._refresh_task
        for client in self._node_clients.values():
            with contextlib.suppress(RedisError, OSError):
                await client.aclose()
        self._node_clients.clear()
        if self._cluster is not None:
            await self._cluster.aclose()
        elif self._single is not None and self._owned:
            await self._single.aclose()


def node_url(base_url: str, host: str, port: int) -> str:
    """`base_url` (scheme, credentials) pointed at one cluster node, database 0."""
    parts = urlsplit(base_url)
    userinfo = parts.netloc.rpartition("@")[0]
    netloc = f"{userinfo}@" if userinfo else ""
    netloc += f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return urlunsplit((parts.scheme, netloc, "/0", "", ""))


def topology_of(redis: Redis | RedisTopology) -> RedisTopology:
    """Accept a plain client where a topology is expected (one node: tests, tools)."""
    return redis if isinstance(redis, RedisTopology) else RedisTopology.wrap(redis)


class Subscription:
    """One channel: SUBSCRIBE on one node, SSUBSCRIBE on the channel's node of a cluster.

    `open()` subscribes; `messages()` yields each payload until the connection fails (RedisError
    or OSError) or, on a cluster, the node gives the channel's slot away (Redis then ends the
    subscription with an `sunsubscribe` message; this raises so the caller subscribes again,
    on the new owner). Callers loop: open, read, on error wait and open again.
    """

    def __init__(self, topology: RedisTopology, channel: str) -> None:
        self.topology = topology
        self.channel = channel
        self._pubsub: PubSub | None = None

    async def open(self) -> None:
        topo = self.topology
        try:
            client = topo.for_key(self.channel)
            self._pubsub = client.pubsub()
            if topo.cluster:
                await self._pubsub.ssubscribe(self.channel)
            else:
                await self._pubsub.subscribe(self.channel)
        except TOPOLOGY_ERRORS as exc:
            topo.request_refresh(exc)
            raise

    async def messages(self, poll_s: float = 0.25) -> AsyncIterator[bytes]:
        """Payloads, in a loop that a task cancellation always ends (see `raise_if_cancelled`)."""
        pubsub = self._pubsub
        assert pubsub is not None
        while True:
            raise_if_cancelled()
            try:
                message = await pubsub.get_message(timeout=poll_s)
            except TOPOLOGY_ERRORS as exc:
                self.topology.request_refresh(exc)
                raise
            if message is None:
                continue
            kind = message.get("type")
            if kind in (b"message", b"smessage", "message", "smessage"):
                data = message.get("data")
                if isinstance(data, bytes):
                    yield data
            elif kind in (b"sunsubscribe", "sunsubscribe", b"unsubscribe", "unsubscribe"):
                self.topology.request_refresh()
                raise RedisConnectionError(f"subscription to {self.channel} ended by the server")

    async def close(self) -> None:
        if self._pubsub is not None:
            with contextlib.suppress(RedisError, OSError):
                await self._pubsub.aclose()  # type: ignore[no-untyped-call]
            self._pubsub = None


def raise_if_cancelled() -> None:
    """Honour a cancellation that redis-py swallowed.

    redis-py shields a command that is waiting for its reply (a blocking XREADGROUP, say), so a
    `task.cancel()` arriving then can be lost and the loop would go on forever. Loops that issue
    blocking commands call this once per iteration: the request is still recorded on the task.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


async def pubsub_messages(pubsub: PubSub, poll_s: float = 0.25) -> AsyncIterator[dict[str, Any]]:
    """The messages of a subscription, in a loop that a task cancellation always ends.

    `PubSub.listen()` waits without a timeout and can swallow a cancellation (see
    `raise_if_cancelled`); polling with a short timeout bounds how long shutdown waits.
    """
    while True:
        raise_if_cancelled()
        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=poll_s)
        if message is not None:
            yield message
