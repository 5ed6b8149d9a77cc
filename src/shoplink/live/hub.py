"""Fan-out of live changes to the viewers connected to this instance.

One Redis subscription per process (channel `shoplink:live`, each message names its session;
SSUBSCRIBE on the node owning the channel's slot when Redis is a cluster, see shoplink.redis)
feeds every viewer of every session on this instance. Per watched session the hub keeps the
current state (loaded once from PostgreSQL) and one pump task that applies events strictly in
sequence order: an event that arrives early (a gap: a message lost, or two hosts' requests
published out of order) makes the pump read what it missed from PostgreSQL first. Each event is
encoded once and the same bytes are written to every viewer's transport.

When the Redis connection drops, every watched session is re-synchronized from PostgreSQL on
each reconnect attempt (so viewers keep getting changes, a little later, while Redis is away)
and once more when the subscription is back. A periodic resync bounds staleness even if a
message is lost without a disconnect.

Viewer counts count distinct viewers, not connections: a viewer is its viewer cookie (`sl_vid`,
when the page is on our own site) or else its address (IPv4, or IPv6 /64), as keyed hashes
(`ViewerKeys`); one address counts as at most `MAX_COOKIES_PER_ADDRESS` viewers however many
cookies it sends. Each instance keeps its viewers' keys per session in the Redis sorted set
`shoplink:live:viewerset:{id}` (member = viewer key, score = expiry in ms, refreshed every
heartbeat, removed when the viewer's last connection on the instance closes); readers count the
members that have not expired, so a crashed instance's viewers stop counting after the TTL, and
a viewer with connections on two instances counts once.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hmac
import ipaddress
import logging
import re
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass

import asyncpg
import orjson
from redis.asyncio import Redis
from redis.exceptions import RedisError

from shoplink.aiohttp_internals import http_chunk
from shoplink.changes import Change
from shoplink.errors import NotFound
from shoplink.live import repository as repo
from shoplink.live.models import LiveEvent, LiveState
from shoplink.metrics import Registry
from shoplink.redis import RedisTopology, topology_of

log = logging.getLogger(__name__)

CHANNEL = "shoplink:live"
VIEWERS_KEY = "shoplink:live:viewerset:{}"  # sorted set: viewer key -> expiry (ms)
MAX_COOKIES_PER_ADDRESS = 8  # beyond that, more cookies from one address count as that address
_VIEWER_COOKIE = re.compile(r"^[0-9a-f]{32}$")  # the `sl_vid` cookie (shoplink.clicks.viewer)
RECONNECT_DELAY_S = 0.5
HEARTBEAT = b": hb\n\n"
SYNC, META = "sync", "meta"  # pump commands: catch up from PostgreSQL / reload title etc.
MAX_BUFFERED_BYTES = 256 * 1024  # a viewer this far behind is disconnected (it resumes later)


def sse(event_id: int, name: str, data: object) -> bytes:
    return b"id: %d\nevent: %s\ndata: %s\n\n" % (event_id, name.encode(), orjson.dumps(data))


class Frame:
    """One SSE message, encoded once for all viewers (raw and chunk-framed)."""

    __slots__ = ("chunked", "raw")

    def __init__(self, raw: bytes) -> None:
        self.raw = raw
        self.chunked = http_chunk(raw)


HEARTBEAT_FRAME = Frame(HEARTBEAT)


@dataclass(frozen=True)
class ViewerId:
    """Who a viewer is for counting: keyed hashes of its address and of its cookie (if any)."""

    address: str
    cookie: str | None = None


class ViewerKeys:
    """Keyed hashes (HMAC-SHA256 under a key derived from SHOPLINK_SECRET_KEY) of a viewer's
    address (IPv4, or IPv6 /64) and viewer cookie: nothing stored in Redis names either."""

    def __init__(self, secret_key: str) -> None:
        self._key = hmac.digest(secret_key.encode(), b"shoplink:live-viewer", "sha256")

    def _mac(self, kind: str, value: str) -> str:
        return kind + hmac.digest(self._key, f"{kind}:{value}".encode(), "sha256").hex()[:24]

    def of(self, remote: str | None, cookie: str | None) -> ViewerId:
        network = remote or "unknown"
        try:
            address = ipaddress.ip_address(network)
        except ValueError:
            pass
        else:
            if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
                network = str(address.ipv4_mapped)
            elif address.version == 6:
                network = str(ipaddress.ip_network(f"{address}/64", strict=False))
        valid_cookie = cookie is not None and _VIEWER_COOKIE.match(cookie) is not None
        return ViewerId(self._mac("a", network), self._mac("v", cookie) if valid_cookie and cookie else None)


class Viewer:
    """One connected viewer.

    Fan-out writes the pre-encoded frame straight to the viewer's transport (no task wake-up
    per viewer and event). Until the stream handler has written the first part (state or
    replayed events) and called `attach`, frames are held in `pending` to keep the order.
    `done` resolves when the stream must end (end of the live, a slow client, shutdown).
    """

    __slots__ = ("address", "chunked", "done", "key", "pending", "session_id", "transport")

    def __init__(self, session_id: int, key: str = "", address: str = "") -> None:
        self.session_id = session_id
        self.key = key  # what it counts as (see ViewerKeys); `address`: its address key
        self.address = address
        self.transport: asyncio.Transport | None = None
        self.chunked = True
        self.pending: list[Frame] = []
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def attach(self, transport: asyncio.Transport, chunked: bool) -> bool:
        self.transport, self.chunked = transport, chunked
        pending, self.pending = self.pending, []
        return all(self.send(frame) for frame in pending)

    def send(self, frame: Frame) -> bool:
        """False when the viewer is gone or too far behind (the caller drops it)."""
        if self.done.done():
            return False
        transport = self.transport
        if transport is None:
            self.pending.append(frame)
            return len(self.pending) < 1000
        if transport.is_closing() or transport.get_write_buffer_size() > MAX_BUFFERED_BYTES:
            return False
        transport.write(frame.chunked if self.chunked else frame.raw)
        return True

    def finish(self) -> None:
        if not self.done.done():
            self.done.set_result(None)


class _Watch:
    """A session that has viewers on this instance."""

    def __init__(self, session_id: int) -> None:
        self.session_id = session_id
        self.state: LiveState | None = None
        self.viewers: set[Viewer] = set()
        self.keys: dict[str, int] = {}  # distinct viewers here: viewer key -> open connections
        self.cookies: dict[str, set[str]] = {}  # address key -> cookie keys counted for it
        self.inbox: asyncio.Queue[LiveEvent | str] = asyncio.Queue()
        self.loader: asyncio.Future[None] | None = None
        self.pump: asyncio.Task[None] | None = None
        self.joining = 0


class LiveHub:
    def __init__(self, redis: Redis | RedisTopology, pool: asyncpg.Pool, *, base_url: str,
                 heartbeat_s: float, resync_s: float, metrics: Registry | None = None,
                 viewer_keys: ViewerKeys | None = None) -> None:
        self._topology = topology_of(redis)
        self.viewer_keys = viewer_keys or ViewerKeys(secrets.token_hex(16))
        self._redis = self._topology.client
        self._pool = pool
        self.base_url = base_url
        self.heartbeat_s = heartbeat_s
        self.resync_s = resync_s
        self.instance_id = secrets.token_hex(6)
        self.connected = asyncio.Event()
        self._watches: dict[int, _Watch] = {}
        self._dirty: set[int] = set()
        self._reported: set[int] = set()
        self._gone: dict[int, set[str]] = {}  # viewer keys that left, not yet removed from Redis
        self._closing = False
        metrics = metrics or Registry()
        self._m_events = metrics.counter("shoplink_live_events_total",
                                         "Live events applied to this instance's viewers, by source")
        self._m_dropped = metrics.counter("shoplink_live_viewers_dropped_total",
                                          "Viewers disconnected because they could not keep up")
        self._m_viewers = metrics.gauge("shoplink_live_viewers",
                                        "Viewer connections (event streams) open on this instance")
        metrics.register_collector(self._collect)

    async def _collect(self) -> None:
        self._m_viewers.set(sum(len(w.viewers) for w in self._watches.values()))

    # ---- publishing ------------------------------------------------------------------------

    async def publish(self, event: LiveEvent) -> None:
        """After commit: this instance's viewers at once, other instances through Redis."""
        self._deliver(event)
        payload = orjson.dumps({"o": self.instance_id, **event.to_wire()})
        try:
            await self._topology.publish(CHANNEL, payload)
        except (RedisError, OSError) as exc:  # other instances catch up from PostgreSQL
            log.warning("live event not broadcast", extra={"live_session_id": event.session_id,
                                                           "seq": event.seq, "error": str(exc)})

    def _deliver(self, event: LiveEvent) -> None:
        watch = self._watches.get(event.session_id)
        if watch is not None:
            watch.inbox.put_nowait(event)

    def on_change(self, change: Change) -> None:
        """Change-bus listener: a session's title, planned start or replay changed."""
        if change.is_everything:
            for watch in self._watches.values():
                watch.inbox.put_nowait(META)
                watch.inbox.put_nowait(SYNC)
        elif change.kind == "live" and (one := self._watches.get(change.id)) is not None:
            one.inbox.put_nowait(META)

    def _receive(self, data: object) -> None:
        if not isinstance(data, bytes):
            return
        try:
            msg = orjson.loads(data)
            if msg.get("o") == self.instance_id:
                return
            event = LiveEvent.from_wire(msg)
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError):
            log.warning("malformed live message ignored")
            return
        self._deliver(event)

    def sync_all(self) -> None:
        for watch in self._watches.values():
            watch.inbox.put_nowait(SYNC)

    async def run(self) -> None:
        """The one subscription of this process; reconnects forever, catching up each time."""
        first = True
        while True:
            subscription = self._topology.subscription(CHANNEL)
            try:
                await subscription.open()
                if not first:
                    log.info("live subscription restored; catching up from PostgreSQL")
                    self.sync_all()
                first = False
                self.connected.set()
                async for data in subscription.messages():
                    self._receive(data)
            except (RedisError, OSError) as exc:
                if self.connected.is_set():
                    log.warning("live subscription lost", extra={"error": str(exc)})
                self.connected.clear()
                first = False
                self.sync_all()  # while Redis is away, viewers are fed from PostgreSQL
                await asyncio.sleep(RECONNECT_DELAY_S)
            finally:
                await subscription.close()

    # ---- per-session state and pump ----------------------------------------------------------

    async def _load(self, watch: _Watch) -> None:
        try:
            async with self._pool.acquire() as con:
                state = await repo.load_state(con, watch.session_id)
        except BaseException:
            self._drop(watch)
            raise
        if state is None:
            self._drop(watch)
            raise NotFound("live session not found")
        watch.state = state
        if self._watches.get(watch.session_id) is not watch:  # every joiner gave up meanwhile
            return
        watch.pump = asyncio.create_task(self._pump(watch), name=f"live-pump-{watch.session_id}")

    def _drop(self, watch: _Watch) -> None:
        if self._watches.get(watch.session_id) is watch:
            del self._watches[watch.session_id]
        if watch.pump is not None:
            watch.pump.cancel()

    async def _pump(self, watch: _Watch) -> None:
        while True:
            item = await watch.inbox.get()
            try:
                await self._handle(watch, item)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
                log.warning("live catch-up failed; retrying", extra={
                    "live_session_id": watch.session_id, "error": str(exc)})
                await asyncio.sleep(1.0)
                watch.inbox.put_nowait(SYNC)

    async def _handle(self, watch: _Watch, item: LiveEvent | str) -> None:
        state = watch.state
        assert state is not None
        if item == META:
            async with self._pool.acquire() as con:
                fresh = await repo.load_state(con, watch.session_id)
            if fresh is not None and watch.state is not None:
                watch.state = dataclasses.replace(
                    watch.state, title=fresh.title, planned_start_at=fresh.planned_start_at,
                    replay_video_id=fresh.replay_video_id, stream_url=fresh.stream_url)
            return
        if isinstance(item, LiveEvent):
            if item.seq <= state.seq:
                return  # already applied (e.g. delivered locally and again after a catch-up)
            if item.seq == state.seq + 1:
                self._apply(watch, item, "pubsub")
                return
        # A gap, or an explicit sync: read what this instance missed from PostgreSQL.
        while True:
            async with self._pool.acquire() as con:
                missed = await repo.events_after(con, watch.session_id, state.seq, limit=1000)
            for event in missed:
                self._apply(watch, event, "postgres")
            if len(missed) < 1000:
                return
            state = watch.state
            assert state is not None

    def _apply(self, watch: _Watch, event: LiveEvent, source: str) -> None:
        assert watch.state is not None
        if event.seq != watch.state.seq + 1:
            return
        watch.state = watch.state.apply(event)
        self._m_events.inc(source=source)
        frame = Frame(sse(event.seq, event.type, event.to_json(self.base_url)))
        ended = event.type == "end"
        for viewer in list(watch.viewers):
            self._push(viewer, frame)
            if ended:
                viewer.finish()

    def _push(self, viewer: Viewer, frame: Frame) -> None:
        if not viewer.send(frame):  # gone, or stuck: let it reconnect and resume
            if not viewer.done.done():
                self._m_dropped.inc()
            self.leave(viewer)
            viewer.finish()

    # ---- viewers ---------------------------------------------------------------------------

    async def join(self, session_id: int, who: ViewerId | None = None) -> tuple[Viewer, LiveState]:
        """Register a viewer (`who`: what it counts as; None: a viewer of its own); returns it with
        the state it starts from (later events are held)."""
        watch = self._watches.get(session_id)
        if watch is None:
            watch = _Watch(session_id)
            self._watches[session_id] = watch
            watch.loader = asyncio.ensure_future(self._load(watch))
        assert watch.loader is not None
        watch.joining += 1
        try:
            await asyncio.shield(watch.loader)
        except BaseException:
            watch.joining -= 1
            if not watch.viewers and not watch.joining:
                self._drop(watch)
            raise
        watch.joining -= 1
        if self._watches.get(session_id) is not watch:  # dropped meanwhile: start over
            return await self.join(session_id, who)
        assert watch.state is not None
        who = who or ViewerId("x" + secrets.token_hex(12))
        viewer = Viewer(session_id, self._counted_as(watch, who), who.address)
        watch.keys[viewer.key] = watch.keys.get(viewer.key, 0) + 1
        watch.viewers.add(viewer)
        self._dirty.add(session_id)
        return viewer, watch.state

    @staticmethod
    def _counted_as(watch: _Watch, who: ViewerId) -> str:
        """The viewer's cookie key, unless its address already has MAX_COOKIES_PER_ADDRESS others
        here (cookies cost nothing to make up): then its address key."""
        if who.cookie is None:
            return who.address
        cookies = watch.cookies.setdefault(who.address, set())
        if who.cookie in cookies or len(cookies) < MAX_COOKIES_PER_ADDRESS:
            cookies.add(who.cookie)
            return who.cookie
        return who.address

    def leave(self, viewer: Viewer) -> None:
        watch = self._watches.get(viewer.session_id)
        if watch is None or viewer not in watch.viewers:
            return
        watch.viewers.discard(viewer)
        left = watch.keys.get(viewer.key, 1) - 1
        if left > 0:
            watch.keys[viewer.key] = left
        else:  # its last connection here: it stops counting
            watch.keys.pop(viewer.key, None)
            cookies = watch.cookies.get(viewer.address)
            if cookies is not None:
                cookies.discard(viewer.key)
                if not cookies:
                    del watch.cookies[viewer.address]
            self._gone.setdefault(viewer.session_id, set()).add(viewer.key)
        self._dirty.add(viewer.session_id)
        if not watch.viewers and not watch.joining:
            self._drop(watch)

    def local_viewers(self, session_id: int) -> int:
        """Distinct viewers of the session on this instance."""
        watch = self._watches.get(session_id)
        return len(watch.keys) if watch else 0

    def state_of(self, session_id: int) -> LiveState | None:
        watch = self._watches.get(session_id)
        return watch.state if watch else None

    def close_all(self) -> None:
        """Shutdown: every stream ends (viewers reconnect to another instance and resume)."""
        self._closing = True
        for watch in list(self._watches.values()):
            for viewer in list(watch.viewers):
                viewer.finish()

    def _all_viewers(self) -> Iterable[Viewer]:
        for watch in self._watches.values():
            yield from watch.viewers

    # ---- heartbeats and viewer counts --------------------------------------------------------

    @property
    def _count_ttl_ms(self) -> int:
        return int(max(3 * self.heartbeat_s, 3.0) * 1000)

    async def _report_counts(self, sessions: Iterable[int]) -> None:
        now_ms = int(time.time() * 1000)
        expires = now_ms + self._count_ttl_ms
        pipe = self._redis.pipeline(transaction=False)
        written: list[tuple[int, int]] = []
        gone: dict[int, set[str]] = {}
        for sid in sessions:
            watch = self._watches.get(sid)
            keys = list(watch.keys) if watch else []
            key = VIEWERS_KEY.format(sid)
            left = self._gone.pop(sid, set()) - set(keys)
            if left:
                gone[sid] = left
                pipe.zrem(key, *left)
            if keys:
                pipe.zadd(key, dict.fromkeys(keys, expires))
                pipe.pexpire(key, self._count_ttl_ms)
            pipe.zremrangebyscore(key, "-inf", now_ms)  # members of instances that died
            written.append((sid, len(keys)))
        if not written:
            return
        try:
            await pipe.execute()
        except BaseException:
            for sid, removed in gone.items():  # removed on the next try
                self._gone.setdefault(sid, set()).update(removed)
            raise
        for sid, count in written:
            if count:
                self._reported.add(sid)
            else:
                self._reported.discard(sid)

    async def viewer_count(self, session_id: int) -> int:
        """Distinct viewers of a session across every instance (this one's own if Redis is away)."""
        local = self.local_viewers(session_id)
        try:
            counted = await self._redis.zcount(VIEWERS_KEY.format(session_id),
                                               int(time.time() * 1000), "+inf")
        except (RedisError, OSError):
            return local
        return max(int(counted), local)  # ours may not be written yet

    async def ticker(self) -> None:
        """Heartbeats to every viewer, viewer counts to Redis, periodic resync."""
        step = min(0.5, self.heartbeat_s)
        loop = asyncio.get_running_loop()
        next_beat = loop.time() + self.heartbeat_s
        next_resync = loop.time() + self.resync_s
        while True:
            await asyncio.sleep(step)
            now = loop.time()
            sessions: set[int] = set()
            if self._dirty:
                sessions |= self._dirty
                self._dirty = set()
            if now >= next_beat:
                next_beat = now + self.heartbeat_s
                for viewer in list(self._all_viewers()):
                    self._push(viewer, HEARTBEAT_FRAME)
                sessions |= set(self._watches) | self._reported
            else:
                self._sweep()  # viewers that hung up stop counting without waiting for a heartbeat
            if now >= next_resync:
                next_resync = now + self.resync_s
                self.sync_all()
            if sessions:
                try:
                    await self._report_counts(sessions)
                except (RedisError, OSError):
                    self._dirty |= sessions  # retried on the next tick

    def _sweep(self) -> None:
        for viewer in list(self._all_viewers()):
            transport = viewer.transport
            if transport is not None and transport.is_closing():
                self.leave(viewer)
                viewer.finish()

    async def shutdown(self) -> None:
        """Stop the pumps and remove this instance's viewers from the counts so they drop at once."""
        ours: dict[int, set[str]] = {sid: set(keys) for sid, keys in self._gone.items()}
        for watch in list(self._watches.values()):
            ours.setdefault(watch.session_id, set()).update(watch.keys)
            if watch.pump is not None:
                watch.pump.cancel()
        self._watches.clear()
        with contextlib.suppress(RedisError, OSError):
            pipe = self._redis.pipeline(transaction=False)
            for sid, keys in ours.items():
                if keys:
                    pipe.zrem(VIEWERS_KEY.format(sid), *keys)
            await pipe.execute()
