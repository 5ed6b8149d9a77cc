"""`shoplink count`: run the stream consumers — the count worker and the affiliate program's
attribution consumer (unless --no-attribution) — or --status / --rebuild / --rollup / --trim once.

Both read every click back from the streams; they run here rather than in the web processes so
that those spend their CPU on answering clicks (bench/results/clicks.md)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import signal
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from aiohttp import web

from shoplink import db, metrics
from shoplink.affiliates.attribution import AttributionConsumer
from shoplink.affiliates.pending import PendingSales
from shoplink.analytics.consumer import CountWorker
from shoplink.analytics.rebuild import rebuild
from shoplink.analytics.rollup import Rollup
from shoplink.analytics.status import status_report
from shoplink.analytics.streams import trim_shard
from shoplink.config import Settings
from shoplink.metrics import Registry
from shoplink.redis import RedisTopology


def _when(raw: str) -> int:
    if raw.lstrip("-").isdigit():
        return int(raw)
    parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp())


def add_parser(sub: Any) -> None:
    """The `count` subcommand's arguments (cli.py's parser calls this)."""
    count = sub.add_parser("count", help="count click events (the analytics worker)")
    mode = count.add_mutually_exclusive_group()
    mode.add_argument("--status", action="store_true", help="print lag, pending, rates per shard and exit")
    mode.add_argument("--rebuild", action="store_true",
                      help="recompute all counters from the retained stream events into a fresh "
                           "namespace and compare them with the live counts (exit 1 on a difference)")
    mode.add_argument("--rollup", action="store_true", help="move counters into PostgreSQL once and exit")
    mode.add_argument("--trim", action="store_true", help="trim the streams once and exit")
    count.add_argument("--exit-when-idle", action="store_true",
                       help="stop once every shard is drained and nothing is pending")
    count.add_argument("--consumer", help="consumer name (default: host-pid-random)")
    count.add_argument("--no-rollup", action="store_true", help="do not move counters into PostgreSQL")
    count.add_argument("--no-attribution", action="store_true",
                       help="do not run the attribution consumer (group `attribution`) here")
    count.add_argument("--interval", type=float, default=1.0, help="--status: seconds to measure rates over")
    count.add_argument("--from", dest="start", type=_when, help="--rebuild: ISO 8601 or Unix seconds")
    count.add_argument("--to", dest="end", type=_when, help="--rebuild: ISO 8601 or Unix seconds (exclusive)")
    count.add_argument("--keep", action="store_true", help="--rebuild: keep the rebuilt namespace")


def _print(value: Any) -> None:
    sys.stdout.write(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode() + "\n")
    sys.stdout.flush()


async def count_command(settings: Settings, args: argparse.Namespace) -> int:
    once = args.status or args.rebuild or args.rollup or args.trim
    # The worker's SIGTERM/SIGINT handling is in place before its start-up (connections, the
    # migration check, the metrics port): a signal then still ends in a clean exit.
    stop = None if once else _stop_on_signals()
    topology = RedisTopology.from_settings(settings)
    await topology.connect()
    redis = topology.client
    pool = await db.create_pool(settings.database_url, min_size=1, max_size=4,
                                timeout_s=settings.db_timeout_s,
                                command_timeout_s=settings.db_command_timeout_s)
    try:
        async with pool.acquire() as con:
            pending = await db.pending_migrations(con)
        if pending:
            print("shoplink: the database has unapplied migrations: run `shoplink migrate`",
                  file=sys.stderr)
            return 1
        if args.status:
            _print(await status_report(redis, pool, settings, interval_s=args.interval))
            return 0
        if args.rebuild:
            report = await rebuild(topology, pool, settings, start_s=args.start, end_s=args.end, keep=args.keep)
            _print(report.to_json())
            return 0 if report.equal else 1
        if args.rollup:
            result = await Rollup(redis, pool, settings.click_shards, node=topology.for_shard,
                                  buckets=settings.stats_buckets).run_once()
            _print(result.__dict__)
            return 0
        if args.trim:
            out = []
            for shard in range(settings.click_shards):
                removed, state = await trim_shard(redis, shard, retention_s=settings.stream_retention_s,
                                                  max_retention_s=settings.stream_max_retention_s)
                out.append({"shard": shard, "removed": removed, "length": state.length - removed})
            _print(out)
            return 0
        # The worker allocates many short-lived tuples per batch and keeps few cycles: collect the
        # young generation less often (a measurable share of CPU otherwise).
        gc.freeze()
        gc.set_threshold(50_000, 50, 100)
        worker = CountWorker(settings, topology, pool, consumer=args.consumer,
                             exit_when_idle=args.exit_when_idle, rollups=not args.no_rollup)
        registry = Registry()
        worker.register_metrics(registry)
        attribution = None if args.no_attribution else AttributionConsumer(
            topology, pool, shards=settings.click_shards,
            reclaim_idle_ms=settings.attribution_reclaim_idle_s * 1000, metrics=registry,
            pending=PendingSales(pool, window=timedelta(days=settings.attribution_window_days),
                                 metrics=registry),
            sweep_s=settings.attribution_sweep_s)
        try:
            metrics_runner = await _serve_metrics(registry, settings)
        except OSError as exc:
            print(f"shoplink: {exc}", file=sys.stderr)
            return 1
        try:
            assert stop is not None
            return await _run(worker, attribution, exit_when_idle=args.exit_when_idle, stop=stop)
        finally:
            if metrics_runner is not None:
                await metrics_runner.cleanup()
    finally:
        await pool.close()
        await topology.aclose()


def _stop_on_signals() -> asyncio.Event:
    """An event SIGINT and SIGTERM set (from now on)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    return stop


async def _run(worker: CountWorker, attribution: AttributionConsumer | None, *,
               exit_when_idle: bool, stop: asyncio.Event) -> int:
    if stop.is_set():  # asked to stop during the start-up
        worker.stop()
    stopper = asyncio.create_task(stop.wait(), name="count-stop-signal")
    stopper.add_done_callback(lambda _: worker.stop())
    try:
        return await _work(worker, attribution, exit_when_idle=exit_when_idle)
    finally:
        stopper.cancel()


async def _work(worker: CountWorker, attribution: AttributionConsumer | None, *,
                exit_when_idle: bool) -> int:
    if exit_when_idle:
        stats = await worker.run()
        attributed = await attribution.drain() if attribution is not None else None
        _print({**stats.__dict__, "cpu_s": round(time.process_time(), 3),
                "attribution": attributed.__dict__ if attributed is not None else None})
        return 0
    task = asyncio.create_task(attribution.run(), name="attribution") if attribution else None
    if task is not None:  # it survives Redis and PostgreSQL outages; anything else stops us
        task.add_done_callback(lambda _: worker.stop())
    try:
        await worker.run()
    finally:
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task  # re-raises what stopped the consumer early
    return 0


async def _serve_metrics(registry: Registry, settings: Settings) -> web.AppRunner | None:
    """/metrics of this process on SHOPLINK_COUNT_METRICS_PORT (none when 0)."""
    if not settings.count_metrics_port:
        return None
    return await metrics.serve_registry(registry, settings.host, settings.count_metrics_port,
                                        setting="SHOPLINK_COUNT_METRICS_PORT")
