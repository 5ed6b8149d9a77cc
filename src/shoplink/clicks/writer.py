"""ClickWriter: every click event reaches Redis, and no viewer ever waits for it.

`record()` appends to an in-process buffer and returns. A background flusher takes the buffer
every SHOPLINK_CLICK_FLUSH_MS (or as soon as SHOPLINK_CLICK_FLUSH_BATCH events wait), encodes
the whole batch of XADDs as RESP bytes once and writes it on a dedicated connection
(`resp.RespConnection`), then counts the replies.

When Redis refuses, is unreachable or slower than SHOPLINK_CLICK_REDIS_TIMEOUT_S, the events
not acknowledged go to the spool file (`spool.py`), and from then on every new batch is
appended there too, so order is kept. The flusher retries Redis every RETRY_S; once it answers,
the spool is replayed in order (events marked `"replayed": true`), and only when it is empty
do batches go straight to Redis again. Spool files left by a crashed process are claimed and
replayed first. A full buffer (Redis slow for long) spills to the spool synchronously rather
than growing without bound or dropping anything.

Duplicates: an event is written twice only when Redis applied a batch whose replies never came
back (the connection broke half way, or a crash before the replayed part of a spool was
forgotten); consumers drop them by event_id.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from pathlib import Path

import hiredis

from shoplink.clicks.resp import RespConnection, RespError
from shoplink.clicks.spool import Record, SpoolFile
from shoplink.streams import stream_key

log = logging.getLogger(__name__)

RETRY_S = 0.25
REPLAY_BATCH = 2000
REPLAYED_SUFFIX = b',"replayed":true}'


class ClickWriter:
    def __init__(self, redis_url: str, spool_dir: Path, *, flush_interval_s: float = 0.005,
                 batch_size: int = 1000, buffer_max: int = 100_000, timeout_s: float = 1.0,
                 fsync_interval_s: float = 1.0) -> None:
        self._conn = RespConnection(redis_url)
        self._spool_dir = spool_dir
        self._interval = flush_interval_s
        self._batch_size = batch_size
        self._buffer_max = buffer_max
        self._timeout = timeout_s
        self._fsync_interval = fsync_interval_s
        self._buffer: list[Record] = []
        self._wake = asyncio.Event()  # the buffer is no longer empty
        self._full = asyncio.Event()  # a batch is ready now
        self._heads: dict[int, bytes] = {}
        self._own: SpoolFile | None = None  # created on first use
        self._orphans: list[SpoolFile] = []  # left by dead processes, replayed first
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
        self.flushes = 0
        self.flush_seconds = 0.0
        self.write_errors = 0
        self.lost = 0

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
        """Flush what is buffered (to Redis if it answers in time, else to the spool), fsync."""
        self._closing = True
        self._wake.set()
        self._full.set()
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
                self._spool(await self._send(batch))
        self._closed = True  # from here on record() writes to the spool itself
        self._spool(self._take())  # recorded while the last batch was in flight
        self._conn.close()
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

    # ---- the flusher -----------------------------------------------------------------------

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while not self._closing:
            if not self._buffer and not self.spool_pending:
                self._wake.clear()
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

    async def _flush_once(self) -> None:
        batch = self._take()
        if self.spool_pending:
            if batch:
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
                records = [(shard, payload[:-1] + REPLAYED_SUFFIX) for shard, payload, _ in lines]
                failed = await self._send(records, replay=True)
                # Only the lines before the first refused one are done: Redis may refuse the
                # head of a batch and take the rest (LOADING after a restart), and the position
                # is one offset. Those taken after it are sent again (duplicates by event_id).
                done = next(i for i, rec in enumerate(records) if rec is failed[0]) if failed else len(lines)
                if done:
                    spool.replayed_to = lines[done - 1][2]
                    self.replayed += done
                if failed:
                    return
            if not spool.pending:
                if spool is self._own:
                    spool.reset()
                else:
                    spool.remove()
                    self._orphans.pop(0)
                log.info("click spool replayed", extra={"path": spool.path.name})
            if self._buffer:  # arrived meanwhile: after what is spooled
                self._spool(self._take())

    async def _send(self, records: list[Record], *, replay: bool = False) -> list[Record]:
        """XADD `records` in one round trip; returns those not acknowledged (in order)."""
        loop = asyncio.get_running_loop()
        payload = self._encode(records)
        started = time.perf_counter()
        received: list[object] = []
        self._conn.received = []
        try:
            async with asyncio.timeout(self._timeout):
                if not self._conn.connected:
                    await self._conn.connect()
                received = await self._conn.call(payload, len(records))
        except (OSError, TimeoutError, RespError) as exc:
            received = list(self._conn.received)
            self._conn.close()
            self._outage(loop, exc)
        except BaseException:  # cancelled at shutdown: keep the batch
            self._conn.close()
            if not replay:
                self._spool(records[len(self._conn.received):])
            raise
        failed = [rec for rec, reply in zip(records, received, strict=False)
                  if isinstance(reply, hiredis.ReplyError)]
        if failed:
            self.write_errors += len(failed)
            log.warning("redis refused click events", extra={"count": len(failed),
                                                             "error": str(received[0])})
            self._outage(loop, None)
        failed.extend(records[len(received):])
        self.written += len(records) - len(failed)
        if not failed:
            self.redis_ok = True
        self.flushes += 1
        self.flush_seconds += time.perf_counter() - started
        return failed

    def _outage(self, loop: asyncio.AbstractEventLoop, exc: BaseException | None) -> None:
        if self.redis_ok and exc is not None:
            log.warning("redis unavailable for click events; spooling",
                        extra={"error": repr(exc)})
        self.redis_ok = exc is None and self.redis_ok
        self._retry_at = loop.time() + RETRY_S

    def _encode(self, records: list[Record]) -> bytes:
        heads = self._heads
        parts = []
        for shard, payload in records:
            head = heads.get(shard)
            if head is None:
                key = stream_key(shard).encode()
                head = heads[shard] = b"*5\r\n$4\r\nXADD\r\n$%d\r\n%s\r\n$1\r\n*\r\n$1\r\ne\r\n" % (
                    len(key), key)
            parts.append(head + b"$%d\r\n%s\r\n" % (len(payload), payload))
        return b"".join(parts)

    # ---- spool -----------------------------------------------------------------------------

    def _take(self) -> list[Record]:
        batch, self._buffer = self._buffer, []
        return batch

    def _spool(self, records: list[Record]) -> None:
        if not records:
            return
        try:
            if self._own is None:
                self._own = SpoolFile.create(self._spool_dir)
            self._own.append(records)
        except OSError:  # disk full or unwritable: the one case where events can be lost
            self.lost += len(records)
            log.exception("click events lost: the spool cannot be written",
                          extra={"count": len(records), "dir": str(self._spool_dir)})
            return
        self.spooled += len(records)

    async def _maybe_fsync(self) -> None:
        own = self._own
        if own is None or not own.dirty:
            return
        loop = asyncio.get_running_loop()
        if loop.time() - self._last_fsync >= self._fsync_interval:
            self._last_fsync = loop.time()
            own.dirty = False
            await loop.run_in_executor(None, own.fsync)
