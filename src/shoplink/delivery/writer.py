"""ClickWriter: every click event reaches Redis, and no viewer ever waits for it.

`record()` appends to an in-process buffer and returns. A background flusher takes the buffer
every SHOPLINK_CLICK_FLUSH_MS (or as soon as SHOPLINK_CLICK_FLUSH_BATCH events wait), encodes
the whole batch of XADDs as RESP bytes once and writes it on a dedicated connection
(`shoplink.delivery.connection.RespConnection`), then counts the replies.

When Redis refuses, is unreachable or slower than SHOPLINK_CLICK_REDIS_TIMEOUT_S, the events
not acknowledged go to the spool file (`spool.py`), and from then on every new batch is
appended there too, so order is kept. The flusher retries Redis every RETRY_S; once it answers,
the spool is replayed in order (events marked `"replayed": true`), and only when it is empty
do batches go straight to Redis again. Spool files left by a crashed process are claimed and
replayed first: at start, and every ORPHAN_SCAN_S while running (a file whose flock nobody
holds: its process crashed, was killed, or stopped while Redis was down, and no starting process
took it), so a spool never waits for a process to start. A full buffer (Redis slow for long)
spills to the spool synchronously rather than growing without bound or dropping anything.

Shutdown: `close(deadline_s)` flushes; a send still in flight at the deadline is cancelled, and
every event of it that Redis did not acknowledge (not answered yet, or answered with an error)
is spooled: after `close()` each recorded event is in Redis or in the spool.

Spool limit: the spool file of a process holds at most SHOPLINK_SPOOL_MAX_BYTES. When Redis is
down and the spool is full (or cannot be written at all: disk full), the events that do not fit
are dropped: the one case where clicks are lost. The redirect is answered all the same; every
dropped event is counted (`dropped[reason]`, reason spool_full or spool_error) and logged at
ERROR, at most once per DROP_LOG_S with the count since the last line. Once Redis is back and
the spool replayed, it has room again. When Redis answers while the spool is still full, new
batches go straight to Redis (ahead of the older spooled ones) rather than being dropped.

Redis Cluster: with a `router` (shoplink.redis.RedisTopology of a cluster) the XADDs of a batch
are grouped by the node that owns each shard's slot and sent on one connection per node,
concurrently. A MOVED reply or a lost node is an outage like any other for those events (they
are spooled and replayed in order), and asks the router to re-read the slot map.

Duplicates: an event is written twice only when Redis applied a batch whose replies never came
back (the connection broke half way, or a crash before the replayed part of a spool was
forgotten); consumers drop them by event_id.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from pathlib import Path

import hiredis
from redis.exceptions import RedisError

from shoplink.delivery.connection import RespConnection, RespError
from shoplink.delivery.spool import Record, SpoolFile, fitting
from shoplink.logs import Throttled
from shoplink.redis import RedisTopology
from shoplink.resp import pack_with_last, prefix
from shoplink.streams import stream_key

log = logging.getLogger(__name__)

RETRY_S = 0.25
ORPHAN_SCAN_S = 30.0  # how often a running writer looks for spool files nobody holds
REPLAY_BATCH = 2000
REPLAYED_SUFFIX = b',"replayed":true}'
DROP_LOG_S = 10.0
DROP_REASONS = ("spool_full", "spool_error")


class ClickWriter:
    def __init__(self, redis_url: str, spool_dir: Path, *, flush_interval_s: float = 0.005,
                 batch_size: int = 1000, buffer_max: int = 100_000, timeout_s: float = 1.0,
                 fsync_interval_s: float = 1.0, spool_max_bytes: int = 0,
                 router: RedisTopology | None = None, orphan_scan_s: float | None = None,
                 stream: Callable[[int], str] = stream_key) -> None:
        """`stream(shard)`: the stream key of a shard (the click streams by default; the player's
        events have their own family and their own `spool_dir`)."""
        self._conn = RespConnection(redis_url)
        self._router = router if router is not None and router.cluster else None
        self._conns: dict[str, RespConnection] = {}  # per cluster node URL
        self._ahead: set[tuple[Path, int]] = set()  # spool lines written out of order (replay)
        self._spool_dir = spool_dir
        self._interval = flush_interval_s
        self._batch_size = batch_size
        self._buffer_max = buffer_max
        self._timeout = timeout_s
        self._fsync_interval = fsync_interval_s
        self._spool_max = spool_max_bytes  # 0: no limit
        self._buffer: list[Record] = []
        self._wake = asyncio.Event()  # the buffer is no longer empty
        self._full = asyncio.Event()  # a batch is ready now
        self._heads = _XaddPrefixes(stream)  # shard -> packed XADD up to its last argument
        self._own: SpoolFile | None = None  # created on first use
        self._orphans: list[SpoolFile] = []  # left by dead processes, replayed first
        self._orphan_scan_s = ORPHAN_SCAN_S if orphan_scan_s is None else orphan_scan_s
        self._next_scan = 0.0
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._closed = False
        self._retry_at = 0.0
        self._last_fsync = 0.0
        self.redis_ok = True
        # Statistics for /metrics.
        self.recorded = 0
        self.written = 0
        self.spooled = 0
        self.replayed = 0
        self.orphan_scans = 0  # periodic looks for spool files nobody holds
        self.flushes = 0
        self.flush_seconds = 0.0
        self.write_errors = 0
        self.dropped = dict.fromkeys(DROP_REASONS, 0)
        self._drop_log = {
            "spool_full": Throttled(log, logging.ERROR, "click events dropped: the spool is full "
                                    "(SHOPLINK_SPOOL_MAX_BYTES) and Redis is unavailable",
                                    interval_s=DROP_LOG_S),
            "spool_error": Throttled(log, logging.ERROR, "click events dropped: the spool cannot be "
                                     "written", interval_s=DROP_LOG_S),
        }

    # ---- producer side (the request handler) ----------------------------------------------

    def record(self, shard: int, payload: bytes) -> None:
        """Queue one event (orjson bytes of a schema v1 dict). O(1), never blocks, never raises
        for Redis' sake."""
        self.recorded += 1
        if self._closed:  # after shutdown flushed: straight to the spool for the next start
            self._spool([(shard, payload)])
            return
        buffer = self._buffer
        if not buffer:
            self._wake.set()
        buffer.append((shard, payload))
        if len(buffer) >= self._batch_size:
            self._full.set()
            if len(buffer) >= self._buffer_max:  # Redis slow for long: spill, never drop
                self._spool(self._take())

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    @property
    def spool_pending(self) -> bool:
        return bool(self._orphans) or (self._own is not None and self._own.pending)

    @property
    def spool_bytes(self) -> int:
        files = [*self._orphans, *([self._own] if self._own else [])]
        return sum(f.size - f.replayed_to for f in files)

    # ---- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Claim spools left by dead processes (replayed first), then start flushing."""
        self._spool_dir.mkdir(parents=True, exist_ok=True)  # a bad SHOPLINK_SPOOL_DIR fails now
        self._orphans = SpoolFile.claim_orphans(self._spool_dir)
        if self._orphans:
            log.info("replaying click spools left by a previous process",
                     extra={"files": [f.path.name for f in self._orphans]})
        self._task = asyncio.create_task(self._run(), name="click-writer")
        if self._orphans:
            self._wake.set()

    async def close(self, deadline_s: float = 5.0) -> None:
        """Flush what is buffered (to Redis if it answers within `deadline_s`, else to the
        spool), fsync. Whatever Redis has not acknowledged by the deadline is in the spool."""
        self._closing = True
        self._wake.set()
        self._full.set()
        deadline = asyncio.get_running_loop().time() + deadline_s
        if self._task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), deadline_s)
            except TimeoutError:
                self._task.cancel()  # its in-flight batch spools itself (see _send)
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
        batch = self._take()
        if batch:
            if self.spool_pending or not self.redis_ok:
                self._spool(batch)
            else:
                with contextlib.suppress(TimeoutError):  # cancelled: _send spooled the rest
                    async with asyncio.timeout_at(deadline):
                        self._spool(await self._send(batch))
        self._closed = True  # from here on record() writes to the spool itself
        self._spool(self._take())  # recorded while the last batch was in flight
        self._conn.close()
        for conn in self._conns.values():
            conn.close()
        if self._own is not None:
            if self._own.pending:
                self._own.fsync()
                self._own.close()  # the next start claims and replays it
                log.warning("click events left in the spool for the next start",
                            extra={"path": str(self._own.path)})
            else:
                self._own.remove()
            self._own = None
        for orphan in self._orphans:
            orphan.close()
        self._orphans = []
        self._report_drops()

    # ---- the flusher -----------------------------------------------------------------------

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        self._next_scan = loop.time() + self._orphan_scan_s
        while not self._closing:
            if loop.time() >= self._next_scan:
                self._next_scan = loop.time() + self._orphan_scan_s
                self._claim_orphans()
            if not self._buffer and not self.spool_pending:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout_at(self._next_scan):
                        await self._wake.wait()
                continue
            delay = self._interval
            if self.spool_pending:
                delay = max(delay, self._retry_at - loop.time())
            if not self._full.is_set():
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay):
                        await self._full.wait()
            self._full.clear()
            await self._flush_once()
            await self._maybe_fsync()
        if self.spool_pending and self.redis_ok:  # one last chance to drain the backlog
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._timeout):
                    await self._replay()

    def _claim_orphans(self) -> None:
        """Claim spool files that no process holds (left by a process that crashed, was killed,
        or stopped while Redis was down, and that no starting process has claimed): they are
        replayed behind the ones already claimed."""
        self.orphan_scans += 1
        try:
            found = SpoolFile.claim_orphans(self._spool_dir,
                                            exclude=self._own.path if self._own else None)
        except OSError as exc:  # the directory vanished or cannot be read: try again later
            log.error("click spool directory cannot be scanned", extra={"error": repr(exc)})
            return
        if found:
            log.info("replaying click spools left by another process",
                     extra={"files": [f.path.name for f in found]})
            self._orphans.extend(found)

    async def _flush_once(self) -> None:
        batch = self._take()
        if self.spool_pending:
            if batch and self.redis_ok and not self._fits(batch):  # back, spool still full
                self._spool(await self._send(batch))
            elif batch:
                self._spool(batch)
            await self._replay()
        elif batch:
            failed = await self._send(batch)
            if failed:
                self._spool(failed)

    async def _replay(self) -> None:
        """Send spooled events in order until the spool is empty or Redis fails again."""
        loop = asyncio.get_running_loop()
        while self.spool_pending:
            if loop.time() < self._retry_at:
                return
            spool = self._orphans[0] if self._orphans else self._own
            assert spool is not None
            lines = spool.read(REPLAY_BATCH)
            if lines:
                # Lines already written by an earlier attempt that failed before them are skipped.
                todo = [line for line in lines if (spool.path, line[2]) not in self._ahead]
                records = [(shard, payload[:-1] + REPLAYED_SUFFIX) for shard, payload, _ in todo]
                failed = await self._send(records, replay=True)
                self.replayed += len(records) - len(failed)
                if failed:
                    # Failures need not be a suffix (LOADING at the head of a batch after a
                    # restart, one shard refused, a cluster node down): the spool advances to the
                    # first failed line, and what was written after it is remembered so that the
                    # next attempt neither skips the failed lines nor writes those twice.
                    failed_ids = {id(record) for record in failed}
                    first = next(i for i, record in enumerate(records) if id(record) in failed_ids)
                    end = todo[first - 1][2] if first else spool.replayed_to
                    self._ahead.update((spool.path, line[2]) for line, record in
                                       zip(todo[first:], records[first:], strict=True)
                                       if id(record) not in failed_ids)
                else:
                    end = lines[-1][2]
                spool.replayed_to = end
                self._ahead = {a for a in self._ahead if a[0] != spool.path or a[1] > end}
                if failed:
                    return
            if not spool.pending:
                if spool is self._own:
                    spool.reset()
                else:
                    spool.remove()
                    self._orphans.pop(0)
                log.info("click spool replayed", extra={"path": spool.path.name})
                self._report_drops()
            if self._buffer and self._fits(self._buffer):  # arrived meanwhile: after what is spooled
                self._spool(self._take())

    async def _send(self, records: list[Record], *, replay: bool = False) -> list[Record]:
        """XADD `records` in one round trip; returns those not acknowledged (in order).

        Cancelled (shutdown's deadline), it spools every record Redis has not acknowledged
        (not answered yet, or answered with an error) before it re-raises, unless `replay`
        (those are in the spool already): never neither written nor spooled."""
        if self._router is not None:
            return await self._send_routed(self._router, records, replay=replay)
        try:
            return await self._send_on(self._conn, records, replay=replay)
        except BaseException:
            if not replay:
                self._spool(unacknowledged(records, self._conn.received))
            raise

    async def _send_routed(self, router: RedisTopology, records: list[Record], *,
                           replay: bool) -> list[Record]:
        """Redis Cluster: one round trip per node, concurrently; failures in the original order."""
        groups: dict[str, list[Record]] = {}
        urls: dict[int, str] = {}
        try:
            for record in records:
                shard = record[0]
                url = urls.get(shard)
                if url is None:
                    url = urls[shard] = router.url_for_shard(shard)
                groups.setdefault(url, []).append(record)
        except RedisError as exc:  # the slot map is not known yet (no node answered)
            self._outage(asyncio.get_running_loop(), exc)
            return records
        conns = []
        for url in groups:
            conn = self._conns.get(url)
            if conn is None:
                conn = self._conns[url] = RespConnection(url)
            conn.received = []  # stays empty if the send is cancelled before it starts
            conns.append(conn)
        try:
            results = await asyncio.gather(*(self._send_on(conn, group, replay=replay)
                                             for conn, group in zip(conns, groups.values(), strict=True)))
        except BaseException:  # cancelled: every node's send has ended (gather waits for them)
            if not replay:
                for conn, group in zip(conns, groups.values(), strict=True):
                    self._spool(unacknowledged(group, conn.received))
            raise
        failed_ids = {id(record) for failed in results for record in failed}
        if not failed_ids:
            return []
        self.redis_ok = False
        return [record for record in records if id(record) in failed_ids]

    async def _send_on(self, conn: RespConnection, records: list[Record], *,
                       replay: bool = False) -> list[Record]:
        conn.received = []  # the replies of this send so far (what a cancelled send goes by)
        loop = asyncio.get_running_loop()
        payload = pack_with_last(self._heads, records)
        started = time.perf_counter()
        received: list[object] = []
        try:
            async with asyncio.timeout(self._timeout):
                if not conn.connected:
                    await conn.connect()
                received = await conn.call(payload, len(records))
        except (OSError, TimeoutError, RespError) as exc:
            received = list(conn.received)
            conn.close()
            self._outage(loop, exc)
        except BaseException:  # cancelled at shutdown: the caller spools what was not acknowledged
            conn.close()
            self.written += len(records) - len(unacknowledged(records, conn.received))
            raise
        failed = unacknowledged(records, received)
        refused = len(failed) - (len(records) - len(received))  # answered with an error
        if refused:
            self.write_errors += refused
            error = str(next(r for r in received if isinstance(r, hiredis.ReplyError)))
            log.warning("redis refused click events", extra={"count": refused, "error": error})
            if self._router is not None and error.startswith(("MOVED", "ASK", "CLUSTERDOWN", "TRYAGAIN")):
                self._router.request_refresh()
            self._outage(loop, None)
        self.written += len(records) - len(failed)
        if not failed:
            self.redis_ok = True
        self.flushes += 1
        self.flush_seconds += time.perf_counter() - started
        return failed

    def _outage(self, loop: asyncio.AbstractEventLoop, exc: BaseException | None) -> None:
        if self._router is not None and exc is not None:
            self._router.request_refresh(exc)
        if self.redis_ok and exc is not None:
            log.warning("redis unavailable for click events; spooling",
                        extra={"error": repr(exc)})
        self.redis_ok = exc is None and self.redis_ok
        self._retry_at = loop.time() + RETRY_S

    # ---- spool -----------------------------------------------------------------------------

    def _take(self) -> list[Record]:
        batch, self._buffer = self._buffer, []
        return batch

    def _fits(self, records: list[Record]) -> bool:
        own = self._own
        return not self._spool_max or own is None or fitting(records, self._spool_max - own.size) == len(records)

    def _spool(self, records: list[Record]) -> None:
        if not records:
            return
        try:
            if self._own is None:
                self._own = SpoolFile.create(self._spool_dir)
            if self._spool_max:
                keep = fitting(records, self._spool_max - self._own.size)
                if keep < len(records):
                    self._drop("spool_full", len(records) - keep, spool_bytes=self._own.size)
                    records = records[:keep]
                    if not records:
                        return
            self._own.append(records)
        except OSError as exc:  # disk full or unwritable
            self._drop("spool_error", len(records), error=repr(exc))
            return
        self.spooled += len(records)

    def _drop(self, reason: str, count: int, **extra: object) -> None:
        """The one place click events are lost: counted (/metrics) and logged at ERROR."""
        self.dropped[reason] += count
        self._drop_log[reason](count, dir=str(self._spool_dir), **extra)

    def _report_drops(self) -> None:
        for throttled in self._drop_log.values():
            throttled.flush()

    async def _maybe_fsync(self) -> None:
        own = self._own
        if own is None or not own.dirty:
            return
        loop = asyncio.get_running_loop()
        if loop.time() - self._last_fsync >= self._fsync_interval:
            self._last_fsync = loop.time()
            own.dirty = False
            try:
                await loop.run_in_executor(None, own.fsync)
            except OSError as exc:  # the flusher must go on (the data is in the kernel already)
                log.error("click spool fsync failed", extra={"error": repr(exc)})


class _XaddPrefixes(dict[int, bytes]):
    """Shard -> `XADD <its stream key> * e`, packed once (the event is the last argument)."""

    def __init__(self, stream: Callable[[int], str]) -> None:
        super().__init__()
        self._stream = stream

    def __missing__(self, shard: int) -> bytes:
        head = self[shard] = prefix(b"XADD", self._stream(shard), b"*", b"e")
        return head


def unacknowledged(records: list[Record], received: list[object]) -> list[Record]:
    """The records whose XADD Redis did not acknowledge: answered with an error reply, or not
    answered at all (`received` holds the replies so far, in order). In order."""
    failed = [rec for rec, reply in zip(records, received, strict=False)
              if isinstance(reply, hiredis.ReplyError)]
    failed.extend(records[len(received):])
    return failed
