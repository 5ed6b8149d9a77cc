"""The `attribution` consumer group: clicks on plan anchors, from the click streams into PostgreSQL.

Every `shoplink count` worker runs one consumer (a random name) per stream shard
`shoplink:clicks:{n}`, all in the group `attribution`, so workers share the work (a web instance
runs one too with SHOPLINK_ATTRIBUTION_CONSUMER=true, for a deployment without count workers:
off by default, because reading every click back costs the redirect-serving process CPU —
bench/results/clicks.md). Delivery is at least once: a batch is
inserted in one transaction with `ON CONFLICT (event_id) DO NOTHING`, and acknowledged (XACK)
only after the commit. A crash between the two leaves the entries pending; they are delivered
again (to this consumer on restart of the loop, or to another one through XAUTOCLAIM once idle
long enough) and the second insert is a no-op. The same event written twice (a spool replay) is
also a no-op. Events without a plan are acknowledged and not stored; malformed ones are logged,
counted and acknowledged so that they cannot block the stream.

After each stored batch, and every `sweep_s` seconds, the sales that were reported before their
click was stored are settled (pending.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
import orjson
from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError

from shoplink.affiliates import repository as repo
from shoplink.affiliates.models import AttributedClick
from shoplink.affiliates.pending import PendingSales
from shoplink.metrics import Registry
from shoplink.redis import RedisTopology, raise_if_cancelled, topology_of
from shoplink.resp import call, pack_ids
from shoplink.streams import stream_key

log = logging.getLogger(__name__)

GROUP = "attribution"
_GROUP = GROUP.encode()
BATCH = 1000  # larger batches: fewer round trips per click inside the web server
PAUSE_S = 0.1  # after a partial batch (attribution is not latency-sensitive: its window is days)
BLOCK_MS = 200  # short: redis-py cannot interrupt a blocked read, and shutdown waits for it
RECLAIM_EVERY_S = 15.0
ERROR_BACKOFF_S = 1.0

Entry = tuple[bytes, dict[bytes, bytes]]

# Most clicks are on anchors without a plan. Our encoder (clicks/events.py) writes the key
# `"plan_id":null` literally; inside a JSON string a quote is always escaped, so this byte
# sequence can only be the object's own key. Skipping these without orjson.loads saves most of
# the consumer's per-click work inside the web server.
_OUR_START = b'{"schema_version":1,'
_NO_PLAN = b',"plan_id":null,'


def consumer_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


def _opt_int(event: dict[str, Any], field: str) -> int | None:
    value = event.get(field)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{field} must be an integer or null")
    return value


def parse_click(fields: dict[bytes, bytes]) -> AttributedClick | None:
    """The click to store, None when it has no plan; ValueError when malformed."""
    raw = fields.get(b"e")
    if raw is None:
        raise ValueError("entry has no field e")
    if raw.startswith(_OUR_START) and _NO_PLAN in raw:
        return None  # the common case, decided without parsing (see _NO_PLAN)
    try:
        event = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"not JSON: {exc}") from None
    if not isinstance(event, dict) or event.get("schema_version") != 1:
        raise ValueError("not a click event of schema_version 1")
    plan_id = _opt_int(event, "plan_id")
    if plan_id is None:
        return None
    commission = event.get("commission")
    rate_bp: int | None = None
    source: str | None = None
    if commission is not None:
        if not isinstance(commission, dict):
            raise ValueError("commission must be an object or null")
        rate_bp = _opt_int(commission, "rate_bp")
        source = commission.get("source")
        if source is not None and not isinstance(source, str):
            raise ValueError("commission.source must be a string")
    try:
        event_id, code, viewer = str(event["event_id"]), str(event["code"]), str(event["viewer"])
        outcome, surface, ua_class = str(event["outcome"]), str(event["surface"]), str(event["ua_class"])
        ts_ms = event["ts_ms"]
    except KeyError as exc:
        raise ValueError(f"missing field {exc}") from None
    if isinstance(ts_ms, bool) or not isinstance(ts_ms, int) or ts_ms < 0:
        raise ValueError("ts_ms must be a non-negative integer")
    return AttributedClick(
        event_id=event_id, ts=datetime.fromtimestamp(ts_ms / 1000, UTC), code=code,
        outcome=outcome, surface=surface, anchor_id=_opt_int(event, "anchor_id"), plan_id=plan_id,
        creator_id=_opt_int(event, "creator_id"), product_id=_opt_int(event, "product_id"),
        shop_id=_opt_int(event, "shop_id"), viewer=viewer, ua_class=ua_class, rate_bp=rate_bp,
        rate_source=source)


@dataclass
class BatchResult:
    stored: int = 0
    duplicates: int = 0
    skipped: int = 0
    malformed: int = 0
    credited: int = 0  # sales that were waiting for these clicks
    expired: int = 0  # pending sales past their bound, recorded unattributed (drain only)


class AttributionConsumer:
    def __init__(self, redis: Redis | RedisTopology, pool: asyncpg.Pool, *, shards: int,
                 reclaim_idle_ms: int = 60_000, name: str | None = None,
                 metrics: Registry | None = None, batch: int = BATCH,
                 block_ms: int = BLOCK_MS, pause_s: float = PAUSE_S,
                 pending: PendingSales | None = None, sweep_s: float = 5.0) -> None:
        self._topology = topology_of(redis)
        self._redis = self._topology.client  # key-routed (one node, or a Redis Cluster)
        # XREADGROUP goes through `stream_reader` (replies as hiredis returns them, per node).
        self._pool = pool
        self.shards = shards
        self.reclaim_idle_ms = reclaim_idle_ms
        self.name = name or consumer_name()
        self.batch = batch
        self.block_ms = block_ms
        self.pause_s = pause_s
        self.pending = pending  # sales waiting for their click (settled after each stored batch)
        self.sweep_s = sweep_s
        registry = metrics or Registry()
        self._events = registry.counter("shoplink_attribution_events_total",
                                        "Click events handled by the attribution consumer, by result.")
        self._errors = registry.counter("shoplink_attribution_errors_total",
                                        "Attribution consumer loop errors (retried).")

    # ---- the steps (public so that tests can stop between them, as a crash would) ------------

    async def ensure_group(self, shard: int) -> None:
        try:
            await self._redis.xgroup_create(stream_key(shard), GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def read(self, shard: int, *, pending: bool = False, wait: bool = True) -> list[Entry]:
        """New entries (or, with pending=True, this consumer's own unacknowledged ones); waits up
        to `block_ms` for new ones unless `wait` is false."""
        block = ("BLOCK", self.block_ms) if wait and not pending else ()
        reply: Any = await self._topology.stream_reader(shard).execute_command(  # type: ignore[no-untyped-call]
            "XREADGROUP", "GROUP", GROUP, self.name, "COUNT", self.batch, *block,
            "STREAMS", stream_key(shard), "0" if pending else ">")
        entries: list[Entry] = []
        for _stream, items in (reply.items() if isinstance(reply, dict) else reply or ()):
            for entry_id, fields in items:
                if not fields:  # pending entry trimmed from the stream meanwhile
                    entries.append((entry_id, {}))
                elif len(fields) == 2:  # our events: the single field `e`
                    entries.append((entry_id, {fields[0]: fields[1]}))
                else:
                    entries.append((entry_id, dict(zip(fields[::2], fields[1::2], strict=False))))
        return entries

    async def reclaim(self, shard: int) -> list[Entry]:
        """Entries left pending by consumers idle longer than `reclaim_idle_ms` (dead ones)."""
        claimed: list[Entry] = []
        start = "0-0"
        while True:
            reply: Any = await self._redis.xautoclaim(stream_key(shard), GROUP, self.name,
                                                 self.reclaim_idle_ms, start, count=self.batch)
            start_raw, items = reply[0], reply[1]
            claimed.extend((entry_id, fields or {}) for entry_id, fields in items)
            start = start_raw.decode() if isinstance(start_raw, bytes) else str(start_raw)
            if start == "0-0" or len(claimed) >= 10 * self.batch:
                return claimed

    async def store(self, entries: Sequence[Entry]) -> BatchResult:
        """Insert the plan clicks of a batch in one transaction (duplicates ignored)."""
        result = BatchResult()
        clicks: dict[str, AttributedClick] = {}
        for entry_id, fields in entries:
            if not fields:  # trimmed from the stream while pending: nothing left to store
                result.skipped += 1
                continue
            raw = fields.get(b"e")
            if raw is not None and raw.startswith(_OUR_START) and _NO_PLAN in raw:
                result.skipped += 1  # parse_click's common case, without the call (per click)
                continue
            try:
                click = parse_click(fields)
            except ValueError as exc:
                result.malformed += 1
                log.warning("malformed click event skipped",
                            extra={"entry_id": entry_id.decode(), "error": str(exc)})
                continue
            if click is None:
                result.skipped += 1
            else:
                clicks.setdefault(click.event_id, click)
        if clicks:
            async with self._pool.acquire() as con, con.transaction():
                result.stored = await repo.insert_clicks(con, list(clicks.values()))
            if self.pending is not None:  # after the commit: the sales waiting for these clicks
                settled = await self.pending.on_clicks(list(clicks.values()))
                result.credited = settled.credited
        result.duplicates = len(entries) - result.malformed - result.skipped - result.stored
        for label, count in (("stored", result.stored), ("duplicate", result.duplicates),
                             ("skipped", result.skipped), ("malformed", result.malformed)):
            if count:
                self._events.inc(count, result=label)
        return result

    async def ack(self, shard: int, entries: Sequence[Entry]) -> None:
        """XACK a batch, packed in one pass (shoplink.resp: redis-py's packing of a command with
        a thousand ids cost more than the rest of consuming a click), on the node that owns the
        shard's stream. An error reply raises ResponseError."""
        if entries:
            await call(self._topology.stream_reader(shard),
                       pack_ids([b"XACK", stream_key(shard), _GROUP], [e[0] for e in entries]))

    async def process(self, shard: int, entries: Sequence[Entry]) -> BatchResult:
        result = await self.store(entries)
        await self.ack(shard, entries)  # only after the commit
        return result

    # ---- the loop ----------------------------------------------------------------------------

    async def run_shard(self, shard: int) -> None:
        """Consume one shard until cancelled; survives Redis and PostgreSQL outages."""
        loop = asyncio.get_running_loop()
        own_pending = True  # after a start or an error: first redo what we hold unacknowledged
        next_reclaim = 0.0
        while True:
            raise_if_cancelled()
            try:
                if own_pending:
                    await self.ensure_group(shard)
                    while entries := await self.read(shard, pending=True):
                        await self.process(shard, entries)
                    own_pending = False
                if loop.time() >= next_reclaim:
                    while entries := await self.reclaim(shard):
                        await self.process(shard, entries)
                    next_reclaim = loop.time() + RECLAIM_EVERY_S
                entries = await self.read(shard)
                if entries:
                    await self.process(shard, entries)
                    if len(entries) < self.batch and self.pause_s:
                        # Caught up: let the next batch accumulate. Under a click load the reads
                        # otherwise return a few entries each and the per-call cost (read + ack)
                        # dominated the consumer's CPU inside the web server.
                        await asyncio.sleep(self.pause_s)
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                own_pending = True  # also recreates the group if the stream vanished (NOGROUP)
                self._errors.inc()
                self._topology.request_refresh(exc)
                log.warning("attribution consumer error; retrying",
                            extra={"shard": shard, "error": f"{type(exc).__name__}: {exc}"})
                await asyncio.sleep(ERROR_BACKOFF_S)

    async def drain(self) -> BatchResult:
        """Consume every shard until nothing new is left and nothing of this consumer's is
        pending, then return (`shoplink count --exit-when-idle`). Entries other consumers hold
        are taken over only once idle for `reclaim_idle_ms`, as in the loop."""
        total = BatchResult()

        async def consume(shard: int, entries: list[Entry]) -> bool:
            result = await self.process(shard, entries)
            for field in ("stored", "duplicates", "skipped", "malformed", "credited"):
                setattr(total, field, getattr(total, field) + getattr(result, field))
            return bool(entries)

        for shard in range(self.shards):
            await self.ensure_group(shard)
            while await consume(shard, await self.read(shard, pending=True)):
                pass
            while await consume(shard, await self.reclaim(shard)):
                pass
            while await consume(shard, await self.read(shard, wait=False)):
                pass
        if self.pending is not None:
            swept = await self.pending.sweep()
            total.credited += swept.credited
            total.expired += swept.expired
        return total

    async def run(self) -> None:
        tasks = [asyncio.create_task(self.run_shard(n), name=f"attribution-{n}")
                 for n in range(self.shards)]
        if self.pending is not None:
            tasks.append(asyncio.create_task(self.pending.run(self.sweep_s), name="pending-sales"))
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
