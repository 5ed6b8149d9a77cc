"""ClickWriter: every answered click reaches Redis, and no viewer ever waits for it.

`record()` appends the event to the process's journal (the spool file, `spool.py`: one write(2)
into the kernel's page cache, which a killed process does not take with it; never an fsync per
click) and to an in-process buffer, and returns: the redirect leaves after the event is on file.
A background flusher takes the buffer every SHOPLINK_CLICK_FLUSH_MS (or as soon as
SHOPLINK_CLICK_FLUSH_BATCH events wait), encodes the whole batch of XADDs as RESP bytes once and
writes it on a dedicated connection (`shoplink.delivery.connection.RespConnection`), then counts
the replies and records how far the file is shipped in its mark (a pwrite per batch). A file
whose events are all shipped is emptied; under a steady load it is replaced by a new one past
ROTATE_BYTES and removed once shipped.

When Redis refuses, is unreachable or slower than SHOPLINK_CLICK_REDIS_TIMEOUT_S, the events not
acknowledged are already in the file: the writer drops its in-memory copies and ships from the
file from then on (the backlog; those events are marked `"replayed": true`), retrying Redis every
RETRY_S, until the file is shipped; then batches go from memory again. Spool files left by a
crashed or killed process are claimed and shipped from their mark on: at start, and every
ORPHAN_SCAN_S while running (a file whose flock nobody holds), so a spool never waits for a
process to start. A full buffer (Redis slow for long) switches to the backlog rather than growing.

No multiplied events: a batch whose replies never came (a timeout, a broken connection, a killed
process) is uncertain: Redis may have applied it, may still apply it, or never got it. Before any
of it is sent again, the writer kills the connection that sent it (`CLIENT KILL ID`: whatever of
it Redis has not read yet is discarded) and looks its event ids up in the streams (XRANGE from
the Redis time of the last reply before it was sent, less SETTLE_MARGIN_MS); only the events not
found are sent again. While Redis does not answer that lookup, nothing is re-sent: a frozen or
slow Redis adds no copy. A copy per outage can still appear where CLIENT ID/KILL is refused (an
ACL: the old connection may apply its batch after the lookup), and on a Redis Cluster, where the
lookup starts CLUSTER_SKEW_MS before the local clock at the send and the old connection is not
killed. Consumers de-duplicate by event_id all the same (docs/clicks.md, "Delivery contract").

Shutdown: `close(deadline_s)` flushes; a send still in flight at the deadline is cancelled; every
event Redis did not acknowledge stays in the file, whose mark tells the next start what to look up
first. After `close()` each recorded event is in Redis or in the spool.

Spool limit: the spool file of a process holds at most SHOPLINK_SPOOL_MAX_BYTES. An event the
file cannot take (full, or a write error: disk full) is kept in memory only while Redis answers
(not safe from a kill -9: counted in `unjournaled` and logged), and dropped while Redis does not:
the one case where clicks are lost. The redirect is answered all the same; every dropped event is
counted (`dropped[reason]`, reason spool_full or spool_error) and logged at ERROR, at most once
per DROP_LOG_S with the count since the last line.

Redis Cluster: with a `router` (shoplink.redis.RedisTopology of a cluster) the XADDs of a batch
are grouped by the node that owns each shard's slot and sent on one connection per node,
concurrently. A MOVED reply or a lost node is an outage like any other for those events, and asks
the router to re-read the slot map.
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
from shoplink.delivery.spool import Mark, Record, SpoolFile
from shoplink.logs import Throttled
from shoplink.redis import RedisTopology
from shoplink.resp import pack, pack_with_last, prefix
from shoplink.streams import stream_key

log = logging.getLogger(__name__)

RETRY_S = 0.25
ORPHAN_SCAN_S = 30.0  # how often a running writer looks for spool files nobody holds
REPLAY_BATCH = 2000
REPLAYED_SUFFIX = b',"replayed":true}'
DROP_LOG_S = 10.0
DROP_REASONS = ("spool_full", "spool_error")
ROTATE_BYTES = 4 << 20  # a file shipped behind a steady load is replaced past this size
SETTLE_MARGIN_MS = 1000  # the lookup of an uncertain batch starts this much before its send
CLUSTER_SKEW_MS = 10_000  # on a cluster: before the local clock (node clocks may differ)
SERVER_RUN_MARGIN_MS = 2000  # a server that started this close to the send may be another run
SETTLE_PAGE = 1000  # XRANGE COUNT of the lookup
SETTLE_SCAN_MAX = 1_000_000  # entries a lookup reads per shard at most (past that: sent again)
_EVENT_ID = b'"event_id":"'


class _JournalFull(Exception):
    """The spool file would grow past SHOPLINK_SPOOL_MAX_BYTES."""


def event_key(payload: bytes) -> bytes:
    """The event_id in an event's JSON (the payload itself if it has none): what the lookup of an
    uncertain batch and the skipping of events already in Redis go by."""
    i = payload.find(_EVENT_ID)
    if i < 0:
        return payload
    i += len(_EVENT_ID)
    return payload[i:payload.find(b'"', i)]


def _line_len(record: Record) -> int:
    shard, payload = record
    return len(payload) + len(str(shard)) + 2


class _Uncertain:
    """Events of a spool file sent without an answer: those in [spool.replayed_to, end)."""

    __slots__ = ("client_id", "end", "since_ms")

    def __init__(self, end: int, since_ms: int, client_id: int) -> None:
        self.end = end
        self.since_ms = since_ms
        self.client_id = client_id


class _Shipping:
    """What the writer knows about one spool file besides the file itself."""

    __slots__ = ("ahead", "mark", "uncertain")

    def __init__(self, mark: Mark) -> None:
        self.mark = mark
        self.ahead: set[bytes] = set()  # event ids past replayed_to already in Redis: skipped
        self.uncertain: _Uncertain | None = None


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
        self._spool_dir = spool_dir
        self._interval = flush_interval_s
        self._batch_size = batch_size
        self._buffer_max = buffer_max
        self._timeout = timeout_s
        self._fsync_interval = fsync_interval_s
        self._spool_max = spool_max_bytes  # 0: no limit
        self._buffer: list[Record] = []  # journaled events not sent yet (memory mode)
        self._volatile: list[tuple[Record, str]] = []  # events the file could not take
        self._wake = asyncio.Event()  # the buffer is no longer empty
        self._full = asyncio.Event()  # a batch is ready now
        self._stream = stream
        self._heads = _XaddPrefixes(stream)  # shard -> packed XADD up to its last argument
        self._own: SpoolFile | None = None  # the journal recorded events go to (created on use)
        self._backlog = False  # the own file is shipped from the file (Redis failed)
        self._orphans: list[SpoolFile] = []  # left by dead processes (and own rotated files that
        # failed): shipped from the file, first
        self._state: dict[int, _Shipping] = {}  # id(spool file) -> its shipping state
        self._orphan_scan_s = ORPHAN_SCAN_S if orphan_scan_s is None else orphan_scan_s
        self._next_scan = 0.0
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._closed = False
        self._retry_at = 0.0
        self._last_fsync = 0.0
        self._uncertain_send: tuple[int, int] | None = None  # (since_ms, client id) of the last send
        self.redis_ok = True
        # Statistics for /metrics.
        self.recorded = 0
        self.written = 0
        self.spooled = 0  # events that waited in the file for Redis (not shipped from memory)
        self.replayed = 0
        self.unjournaled = 0  # events the file could not take (kept in memory only, or dropped)
        self.settled = 0  # uncertain events found in Redis already (not sent again)
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
        self._unjournaled_log = Throttled(log, logging.ERROR, "click events kept in memory only: the "
                                          "spool cannot take them (a crash would lose them)",
                                          interval_s=DROP_LOG_S)

    # ---- producer side (the request handler) ----------------------------------------------

    def record(self, shard: int, payload: bytes) -> None:
        """Journal one event (orjson bytes of a schema v1 dict) and queue it: on file when this
        returns (safe from a kill -9), in Redis soon. O(1): one write(2), never waits on Redis,
        never raises for Redis' or the disk's sake."""
        self.recorded += 1
        line = b"%d %s\n" % (shard, payload)
        own = self._own
        try:
            if own is None:
                own = self._new_own()
            if self._spool_max and own.size + len(line) > self._spool_max:
                raise _JournalFull
            own.append_line(line)
        except (OSError, _JournalFull) as exc:
            self._unjournaled((shard, payload), exc)
            return
        if self._backlog or self._closed:  # shipped from the file (or by the next start)
            self.spooled += 1
            own.dirty = True
            return
        buffer = self._buffer
        if not buffer:
            self._wake.set()
        buffer.append((shard, payload))
        if len(buffer) >= self._batch_size:
            self._full.set()
            if len(buffer) >= self._buffer_max:  # Redis slow for long: ship from the file
                self._enter_backlog()

    @property
    def buffered(self) -> int:
        return len(self._buffer) + len(self._volatile)

    @property
    def spool_pending(self) -> bool:
        """Events wait in a file for Redis (left by a dead process, or Redis failed)."""
        return bool(self._orphans) or self._backlog

    @property
    def spool_bytes(self) -> int:
        files = [*self._orphans, *([self._own] if self._own and self._backlog else [])]
        return sum(f.size - f.replayed_to for f in files)

    # ---- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Claim spools left by dead processes (shipped first), then start flushing."""
        self._spool_dir.mkdir(parents=True, exist_ok=True)  # a bad SHOPLINK_SPOOL_DIR fails now
        self._orphans = self._adopt(SpoolFile.claim_orphans(self._spool_dir))
        if self._orphans:
            log.info("replaying click spools left by a previous process",
                     extra={"files": [f.path.name for f in self._orphans]})
        self._task = asyncio.create_task(self._run(), name="click-writer")
        if self._orphans:
            self._wake.set()

    async def close(self, deadline_s: float = 5.0) -> None:
        """Flush what is buffered (to Redis if it answers within `deadline_s`), fsync. Whatever
        Redis has not acknowledged by the deadline is in the spool."""
        self._closing = True
        self._wake.set()
        self._full.set()
        deadline = asyncio.get_running_loop().time() + deadline_s
        if self._task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), deadline_s)
            except TimeoutError:
                self._task.cancel()  # its in-flight batch stays in the file (see _ship_memory)
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
        if self._buffer or self._volatile:
            if self._backlog or not self.redis_ok:
                self._enter_backlog()
            else:
                with contextlib.suppress(TimeoutError):  # cancelled: the rest stays in the file
                    async with asyncio.timeout_at(deadline):
                        await self._ship_memory()
        self._closed = True  # from here on record() only journals (for the next start)
        self._enter_backlog()  # anything left in memory (a cancelled final batch): in the file
        self._conn.close()
        for conn in self._conns.values():
            conn.close()
        own = self._own
        if own is not None:
            self._own = None
            if own.pending:
                own.fsync()
                self._write_mark(own)
                own.close()  # the next start claims it and ships it from its mark
                log.warning("click events left in the spool for the next start",
                            extra={"path": str(own.path)})
            else:
                own.remove()
            self._state.pop(id(own), None)
        for orphan in self._orphans:
            self._write_mark(orphan)
            orphan.close()
        self._orphans = []
        self._report_drops()
        self._unjournaled_log.flush()

    # ---- the flusher -----------------------------------------------------------------------

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        self._next_scan = loop.time() + self._orphan_scan_s
        while not self._closing:
            if loop.time() >= self._next_scan:
                self._next_scan = loop.time() + self._orphan_scan_s
                self._claim_orphans()
            if not self._buffer and not self._volatile and not self.spool_pending:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout_at(self._next_scan):
                        await self._wake.wait()
                continue
            delay = self._interval
            if self.spool_pending or not self.redis_ok:
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
        shipped behind the ones already claimed."""
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
            self._orphans.extend(self._adopt(found))

    def _adopt(self, files: list[SpoolFile]) -> list[SpoolFile]:
        """Shipping state of claimed files, from their marks: what the dead process sent without
        an answer is uncertain (looked up in Redis before it is sent again)."""
        for spool in files:
            mark = spool.mark or Mark()
            state = self._state[id(spool)] = _Shipping(mark)
            if mark.sent > spool.replayed_to:
                state.uncertain = _Uncertain(min(mark.sent, spool.size), mark.since_ms, mark.client_id)
        return files

    async def _flush_once(self) -> None:
        # In the backlog, events the file could not take go ahead of it once Redis answers.
        if (self._buffer or self._volatile) and (not self._backlog or self.redis_ok):
            await self._ship_memory()
        if self.spool_pending:
            await self._replay()

    async def _ship_memory(self) -> None:
        """Send the buffer (and the events the file could not take); on failure, what is not
        acknowledged is shipped from the file from then on."""
        volatile, self._volatile = self._volatile, []
        batch: list[Record] = []
        if not self._backlog:
            batch, self._buffer = self._buffer, []
        spool = self._own if batch else None
        end = spool.size if spool is not None else 0
        if spool is not None and spool.size >= ROTATE_BYTES:
            self._own = None  # the next event starts a new file; this one goes once shipped
        records = [record for record, _ in volatile] + batch
        try:
            failed = await self._send(records, spool=spool, end=end)
        except BaseException:  # cancelled at shutdown: what was not acknowledged stays on file
            received = self._received_for(records)
            self.written += len(records) - len(unacknowledged(records, received))
            unacked = {id(r) for r in unacknowledged(records, received)}
            self._drop_volatile([v for v in volatile if id(v[0]) in unacked])
            if spool is not None:
                self.spooled += sum(1 for r in batch if id(r) in unacked)
                mark = self._state_of(spool).mark
                self._file_failed(spool, batch, {id(r) for r in batch if id(r) in unacked}, end,
                                  uncertain=(mark.since_ms, mark.client_id))
            raise
        failed_ids = {id(record) for record in failed}
        self._drop_volatile([v for v in volatile if id(v[0]) in failed_ids])
        if spool is None:
            return
        if not any(id(record) in failed_ids for record in batch):
            self._shipped(spool, end)
            return
        self.spooled += sum(1 for record in batch if id(record) in failed_ids)
        self._file_failed(spool, batch, failed_ids, end, uncertain=self._uncertain_send)

    def _shipped(self, spool: SpoolFile, end: int) -> None:
        """Everything of `spool` up to `end` is in Redis."""
        spool.replayed_to = end
        if spool.pending:
            self._write_mark(spool)
        elif spool is self._own:
            spool.reset(self._state_of(spool).mark)
        else:  # rotated: nothing more comes to it
            spool.remove()
            self._state.pop(id(spool), None)

    def _file_failed(self, spool: SpoolFile, batch: list[Record], failed_ids: set[int], end: int, *,
                     uncertain: tuple[int, int] | None) -> None:
        """A memory batch of `spool` (its events from replayed_to to `end`, in order) failed in
        part: the file is shipped from the first failed event on; events acknowledged after it
        are skipped then; an unanswered send is looked up first."""
        state = self._state_of(spool)
        first = next(i for i, record in enumerate(batch) if id(record) in failed_ids)
        spool.replayed_to += sum(_line_len(record) for record in batch[:first])
        state.ahead.update(event_key(record[1]) for record in batch[first:] if id(record) not in failed_ids)
        if uncertain is not None:
            state.uncertain = _Uncertain(end, *uncertain)
        else:
            state.mark.sent = spool.replayed_to
        spool.dirty = True
        self._write_mark(spool)
        if spool is self._own:
            self._enter_backlog()
        else:
            self._orphans.insert(0, spool)  # a rotated file: shipped from the file, first

    def _enter_backlog(self) -> None:
        """Ship the own file from the file: drop the in-memory copies of its events."""
        if self._own is not None and (self._buffer or not self._backlog):
            self._backlog = True
            self.spooled += len(self._buffer)
            self._own.dirty = True
        self._buffer = []
        if self._volatile and (self._closed or not self.redis_ok):
            volatile, self._volatile = self._volatile, []
            self._drop_volatile(volatile)

    async def _replay(self) -> None:
        """Ship spooled events in order until the files are shipped or Redis fails again."""
        loop = asyncio.get_running_loop()
        while self.spool_pending:
            if loop.time() < self._retry_at:
                return
            spool = self._orphans[0] if self._orphans else self._own
            if spool is None:
                self._backlog = False
                return
            state = self._state_of(spool)
            if state.uncertain is not None and not await self._settle(spool, state):
                return
            lines = spool.read(REPLAY_BATCH)
            if lines:
                ahead = state.ahead
                todo = [line for line in lines if not ahead or event_key(line[1]) not in ahead]
                records = [(shard, payload[:-1] + REPLAYED_SUFFIX) for shard, payload, _ in todo]
                end = lines[-1][2]
                failed = await self._send(records, spool=spool, end=end)
                self.replayed += len(records) - len(failed)
                if failed:
                    # Failures need not be a suffix (LOADING at the head of a batch after a
                    # restart, one shard refused, a cluster node down): the file advances to the
                    # first failed line, and what was written after it is remembered so that the
                    # next attempt neither skips the failed lines nor writes those twice.
                    failed_ids = {id(record) for record in failed}
                    first = next(i for i, record in enumerate(records) if id(record) in failed_ids)
                    spool.replayed_to = todo[first - 1][2] if first else _start_of(lines, todo[0])
                    ahead.update(event_key(line[1]) for line, record in
                                 zip(todo[first:], records[first:], strict=True)
                                 if id(record) not in failed_ids)
                    if self._uncertain_send is not None:
                        since, client_id = self._uncertain_send
                        state.uncertain = _Uncertain(end, since, client_id)
                    else:
                        state.mark.sent = spool.replayed_to
                    self._write_mark(spool)
                    return
                spool.replayed_to = end
                self._write_mark(spool)
                if ahead and not spool.pending:
                    ahead.clear()
            if not spool.pending:
                if spool is self._own:
                    spool.reset(state.mark)
                    self._backlog = False
                else:
                    spool.remove()
                    self._orphans.pop(0)
                    self._state.pop(id(spool), None)
                log.info("click spool replayed", extra={"path": spool.path.name})
                self._report_drops()

    async def _settle(self, spool: SpoolFile, state: _Shipping) -> bool:
        """Look the uncertain events of `spool` up in the streams (after killing the connection
        that sent them): those found are skipped. False when Redis does not answer."""
        uncertain = state.uncertain
        assert uncertain is not None
        wanted: dict[int, set[bytes]] = {}
        for shard, payload, _ in spool.read_range(spool.replayed_to, uncertain.end):
            wanted.setdefault(shard, set()).add(event_key(payload))
        since = max(0, uncertain.since_ms - (CLUSTER_SKEW_MS if self._router else SETTLE_MARGIN_MS))
        loop = asyncio.get_running_loop()
        found: set[bytes] = set()
        try:
            for shard, keys in wanted.items():
                conn = self._conn_for(shard)
                async with asyncio.timeout(self._timeout):
                    if not conn.connected:
                        await conn.connect()
                    if (uncertain.client_id and self._router is None and conn.client_id != uncertain.client_id
                            and 0 < conn.started_ms < uncertain.since_ms - SERVER_RUN_MARGIN_MS):
                        # The same server run (client ids start again at a restart): whatever the
                        # old connection sent and Redis has not read yet is never applied.
                        await conn.call(pack([b"CLIENT", b"KILL", b"ID", uncertain.client_id]), 1)
                    uncertain.client_id = 0
                    found |= await self._lookup(conn, self._stream(shard), since, keys)
        except (OSError, TimeoutError, RespError, RedisError) as exc:
            self._conn.close()
            for conn in self._conns.values():
                conn.close()
            self._outage(loop, exc)
            return False
        state.ahead |= found
        self.settled += len(found)
        state.uncertain = None
        state.mark.sent = spool.replayed_to
        self._write_mark(spool)
        if found:
            log.info("uncertain click events found in redis already: not sent again",
                     extra={"count": len(found)})
        return True

    async def _lookup(self, conn: RespConnection, key: str, since_ms: int, wanted: set[bytes]) -> set[bytes]:
        """Which of `wanted` (event ids) the stream holds from `since_ms` on."""
        found: set[bytes] = set()
        start = b"%d-0" % since_ms
        scanned = 0
        while len(found) < len(wanted) and scanned < SETTLE_SCAN_MAX:
            (reply,) = await conn.call(pack([b"XRANGE", key, start, b"+", b"COUNT", SETTLE_PAGE]), 1)
            if isinstance(reply, hiredis.ReplyError):
                if str(reply).startswith("WRONGTYPE"):  # not a stream: nothing of ours in it
                    break
                raise RespError(str(reply))
            for _id, fields in reply:
                for value in fields[1::2]:
                    eid = event_key(value)
                    if eid in wanted:
                        found.add(eid)
            scanned += len(reply)
            if len(reply) < SETTLE_PAGE:
                break
            start = b"(" + reply[-1][0]
        if scanned >= SETTLE_SCAN_MAX:
            log.warning("lookup of uncertain click events stopped; the rest is sent again",
                        extra={"stream": key, "scanned": scanned})
        return found

    def _conn_for(self, shard: int) -> RespConnection:
        if self._router is None:
            return self._conn
        url = self._router.url_for_shard(shard)
        conn = self._conns.get(url)
        if conn is None:
            conn = self._conns[url] = RespConnection(url)
        return conn

    def _received_for(self, records: list[Record]) -> list[object]:
        """The replies received so far of a send of `records` (a cancelled send)."""
        if self._router is None:
            return list(self._conn.received)
        return []  # a cluster send cancelled half way: counted as unacknowledged

    async def _send(self, records: list[Record], *, spool: SpoolFile | None = None,
                    end: int = 0) -> list[Record]:
        """XADD `records` in one round trip; returns those not acknowledged (in order). With a
        `spool`, its mark says first that its events up to `end` are being sent.
        `self._uncertain_send` tells afterwards whether some were sent without an answer."""
        self._uncertain_send = None
        if not records:
            return []
        if self._router is not None:
            return await self._send_routed(self._router, records, spool=spool, end=end)
        return await self._send_on(self._conn, records, spool=spool, end=end)

    async def _send_routed(self, router: RedisTopology, records: list[Record], *,
                           spool: SpoolFile | None, end: int) -> list[Record]:
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
        since = int(time.time() * 1000)
        if spool is not None:
            self._mark_sending(spool, end, since, 0)
        results = await asyncio.gather(*(self._send_on(conn, group)
                                         for conn, group in zip(conns, groups.values(), strict=True)))
        failed_ids = {id(record) for failed in results for record in failed}
        if self._uncertain_send is not None:
            self._uncertain_send = (since, 0)
        if not failed_ids:
            return []
        self.redis_ok = False
        return [record for record in records if id(record) in failed_ids]

    async def _send_on(self, conn: RespConnection, records: list[Record], *,
                       spool: SpoolFile | None = None, end: int = 0) -> list[Record]:
        conn.received = []  # the replies of this send so far (what a cancelled send goes by)
        loop = asyncio.get_running_loop()
        payload = pack_with_last(self._heads, records)
        started = time.perf_counter()
        received: list[object] = []
        sent = False
        try:
            async with asyncio.timeout(self._timeout):
                if not conn.connected:
                    await conn.connect()
                since, client_id = conn.since_ms, conn.client_id
                if spool is not None:
                    self._mark_sending(spool, end, since, client_id)
                sent = True
                received = await conn.call(payload, len(records))
        except (OSError, TimeoutError, RespError) as exc:
            received = list(conn.received)
            conn.close()
            if sent and len(received) < len(records):
                self._uncertain_send = (since, client_id)
            self._outage(loop, exc)
        except BaseException:  # cancelled at shutdown: the caller keeps what was not acknowledged
            conn.close()
            raise
        if received:
            last = received[-1]
            if isinstance(last, bytes):  # the stream id of the last XADD: "<ms>-<seq>"
                conn.since_ms = int(last[:last.index(b"-")])
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

    # ---- the files -------------------------------------------------------------------------

    def _new_own(self) -> SpoolFile:
        own = self._own = SpoolFile.create(self._spool_dir)
        self._state[id(own)] = _Shipping(Mark())
        return own

    def _state_of(self, spool: SpoolFile) -> _Shipping:
        state = self._state.get(id(spool))
        if state is None:
            state = self._state[id(spool)] = _Shipping(Mark())
        return state

    def _mark_sending(self, spool: SpoolFile, end: int, since_ms: int, client_id: int) -> None:
        mark = self._state_of(spool).mark
        mark.sent = end
        mark.since_ms, mark.client_id = since_ms, client_id
        self._write_mark(spool)

    def _write_mark(self, spool: SpoolFile) -> None:
        mark = self._state_of(spool).mark
        mark.shipped = spool.replayed_to
        mark.sent = max(mark.sent, mark.shipped)
        try:
            spool.write_mark(mark)
        except OSError as exc:  # the events are in the file; only a lookup may be longer
            log.error("click spool mark cannot be written", extra={"error": repr(exc)})

    def _unjournaled(self, record: Record, exc: BaseException) -> None:
        """The file could not take `record`: kept in memory while Redis answers, else dropped."""
        reason = "spool_full" if isinstance(exc, _JournalFull) else "spool_error"
        self.unjournaled += 1
        if self._closed or not self.redis_ok:
            self._drop(reason, 1, **({} if reason == "spool_full" else {"error": repr(exc)}))
            return
        self._unjournaled_log(1, dir=str(self._spool_dir), reason=reason,
                              **({} if reason == "spool_full" else {"error": repr(exc)}))
        if not self._volatile:
            self._wake.set()
        self._volatile.append((record, reason))
        if len(self._volatile) >= self._batch_size:
            self._full.set()
            if len(self._volatile) >= self._buffer_max:
                volatile, self._volatile = self._volatile, []
                self._drop_volatile(volatile)

    def _drop_volatile(self, volatile: list[tuple[Record, str]]) -> None:
        for reason in DROP_REASONS:
            count = sum(1 for _, r in volatile if r == reason)
            if count:
                self._drop(reason, count)

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


def _start_of(lines: list[tuple[int, bytes, int]], first: tuple[int, bytes, int]) -> int:
    """The offset where line `first` of `lines` starts (the end of the line before it)."""
    i = lines.index(first)
    return lines[i - 1][2] if i else first[2] - _line_len((first[0], first[1]))


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
