"""Export shoplink click events and the player's events to hourly JSON-lines files (for a warehouse load).

A minimal, independent consumer of the click streams, using only redis-py and the standard
library: it has its own consumer group (default `jsonl_export`), so it neither sees nor disturbs
shoplink's own counting (group `counters`), and the streams are not trimmed below what it has
acknowledged.

    python examples/jsonl_export.py --redis-url redis://127.0.0.1:6379/0 --out ./clicks --shards 4
    python examples/jsonl_export.py --cluster-nodes 10.0.0.1:6379,10.0.0.2:6379 --out ./clicks

On a Redis Cluster (`--cluster-nodes`, as shoplink's SHOPLINK_REDIS_CLUSTER_NODES) redis-py's
cluster client sends each stream's commands to the node that owns it: every command here names
one stream.

Each event (schema_version 1, see schemas/click_event.schema.json) is appended to
`<out>/clicks-YYYYMMDDHH.jsonl`, the UTC hour of its `ts_ms`. Entries it cannot read (not JSON,
another schema_version) go to `<out>/rejected.jsonl` with the reason.

Duplicates: the streams are at-least-once (docs/clicks.md, "Delivery contract"): an event can be in
them twice (same `event_id`, the second copy usually carrying `"replayed": true`), and this
exporter acknowledges an entry only after its line is written, so after its own crash it sees a
few entries again. It drops both kinds by `event_id`: it remembers the ids of the last
`--dedup-window` events it wrote (and, at start, reads them back from the newest hour files).
Copies of one event are never far apart in a stream (the same outage), so a window of minutes of
traffic is plenty; a warehouse load should still use `event_id` as the unique key.

The player's events (views, card impressions, view-through quartiles) are on their own streams,
`shoplink:events:{n}`, one entry per beacon batch (schemas/events/stream_batch.schema.json). Each
event becomes one line of `<out>/player-events-YYYYMMDDHH.jsonl`: the event's fields with its
batch's (`batch_id`, `index` in the batch, `ts_ms`, `viewer`, `ua_class`, `page_view`,
`referrer_host`). Copies of a batch are dropped by `batch_id` the same way; load with
(`batch_id`, `index`) as the unique key.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import time
from collections import OrderedDict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis
from redis.cluster import ClusterNode, RedisCluster

SUPPORTED_VERSIONS = {1}
DEDUP_WINDOW = 200_000  # event ids remembered (about 20 MB)


class SeenIds:
    """The event ids of the last `size` events written: a bounded, insertion-ordered set."""

    def __init__(self, size: int = DEDUP_WINDOW) -> None:
        self.size = size
        self.ids: OrderedDict[str, None] = OrderedDict()
        self.dropped = 0

    def first_time(self, event_id: str) -> bool:
        """True the first time `event_id` is seen (it is remembered); False for a copy."""
        if event_id in self.ids:
            self.dropped += 1
            return False
        self.ids[event_id] = None
        if len(self.ids) > self.size:
            self.ids.popitem(last=False)
        return True

    def load(self, out: Path) -> None:
        """Remember the ids already written to the newest hour files (after a restart)."""
        for path in sorted(out.glob("clicks-*.jsonl"))[-2:]:
            with path.open("rb") as handle:
                for line in handle:
                    try:
                        event_id = json.loads(line).get("event_id")
                    except ValueError:
                        continue
                    if isinstance(event_id, str):
                        self.first_time(event_id)
        self.dropped = 0


def stream_key(shard: int) -> str:
    return f"shoplink:clicks:{{{shard}}}"


def event_stream_key(shard: int) -> str:
    return f"shoplink:events:{{{shard}}}"


def ensure_group(client: redis.Redis | RedisCluster, stream: str, group: str) -> None:
    try:
        # "0": start with every entry still retained; use "$" for new events only.
        client.xgroup_create(stream, group, id="0", mkstream=True)
    except redis.ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


class HourlyFiles:
    def __init__(self, out: Path) -> None:
        self.out = out
        out.mkdir(parents=True, exist_ok=True)
        self.files: dict[str, Any] = {}

    def write(self, name: str, line: bytes) -> None:
        handle = self.files.get(name)
        if handle is None:
            handle = self.files[name] = open(self.out / name, "ab")  # noqa: SIM115
        handle.write(line + b"\n")

    def flush(self) -> None:
        for handle in self.files.values():
            handle.flush()
            os.fsync(handle.fileno())

    def close(self) -> None:
        for handle in self.files.values():
            handle.close()
        self.files.clear()


def _hour_file(ts_ms: int) -> str:
    return datetime.fromtimestamp(ts_ms / 1000, UTC).strftime("clicks-%Y%m%d%H.jsonl")


def _player_lines(batch: dict[str, Any]) -> list[bytes]:
    """One line per event of a player-event batch, with the batch's fields."""
    head = {name: batch.get(name) for name in ("batch_id", "ts_ms", "viewer", "ua_class", "page_view",
                                               "referrer_host")}
    return [json.dumps({**head, "index": i, **event}).encode() for i, event in enumerate(batch["events"])]


def handle_entries(files: HourlyFiles, entries: list[Any], seen: SeenIds | None = None, *,
                   player: bool = False) -> int:
    """Write one read of a click stream (or, `player`, of a player-event stream), copies of what
    was written already left out; returns how many events were exported."""
    exported = 0
    for entry_id, fields in entries:
        if fields is None:  # trimmed while pending
            continue
        raw = fields.get(b"e")
        try:
            event = json.loads(raw) if raw is not None else None
        except ValueError:
            event = None
        if not isinstance(event, dict) or event.get("schema_version") not in SUPPORTED_VERSIONS:
            reason = "unsupported_version" if isinstance(event, dict) else "unreadable"
            files.write("rejected.jsonl", json.dumps(
                {"id": entry_id.decode(), "reason": reason,
                 "e": raw.decode("utf-8", "replace") if raw else None}).encode())
            continue
        if player:
            if not isinstance(event.get("events"), list):
                files.write("rejected.jsonl", json.dumps({"id": entry_id.decode(), "reason": "unreadable",
                                                          "e": raw.decode("utf-8", "replace")}).encode())
                continue
            if seen is not None and not seen.first_time("batch:" + str(event.get("batch_id"))):
                continue  # a copy of a batch written already
            name = "player-events-" + _hour_file(int(event["ts_ms"])).removeprefix("clicks-")
            for line in _player_lines(event):
                files.write(name, line)
                exported += 1
            continue
        if seen is not None and not seen.first_time(str(event.get("event_id"))):
            continue  # a copy (at-least-once delivery): written already
        files.write(_hour_file(int(event["ts_ms"])), raw)
        exported += 1
    return exported


def export(client: redis.Redis | RedisCluster, out: Path, *, shards: int, group: str = "jsonl_export",
           consumer: str | None = None, batch: int = 500, once: bool = False,
           claim_idle_ms: int = 60_000, dedup_window: int = DEDUP_WINDOW) -> int:
    """Export until every shard is drained (once=True) or forever; returns events exported."""
    consumer = consumer or f"{socket.gethostname()}-{os.getpid()}"
    streams = [stream_key(n) for n in range(shards)] + [event_stream_key(n) for n in range(shards)]
    for stream in streams:
        ensure_group(client, stream, group)
    files = HourlyFiles(out)
    seen = SeenIds(dedup_window)
    seen.load(out)
    total = 0
    try:
        # First take over entries that a crashed exporter left pending.
        for stream in streams:
            cursor = "0-0"
            while True:
                cursor, entries, *_ = client.xautoclaim(stream, group, consumer, claim_idle_ms,
                                                        cursor, count=batch)
                if entries:
                    total += handle_entries(files, entries, seen, player=stream.startswith("shoplink:events:"))
                    files.flush()
                    client.xack(stream, group, *[e[0] for e in entries])
                if cursor in (b"0-0", "0-0"):
                    break
        while True:
            idle = True
            for stream in streams:  # one stream per command: works on Redis Cluster too
                reply = client.xreadgroup(group, consumer, {stream: ">"}, count=batch)
                if isinstance(reply, dict):
                    entries = next(iter(reply.values()), [[]])[0] if reply else []
                else:
                    entries = reply[0][1] if reply else []
                if not entries:
                    continue
                idle = False
                total += handle_entries(files, entries, seen, player=stream.startswith("shoplink:events:"))
                files.flush()
                client.xack(stream, group, *[e[0] for e in entries])
            if idle:
                if once:
                    return total
                time.sleep(0.5)
    finally:
        files.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    parser.add_argument("--cluster-nodes", default=os.environ.get("SHOPLINK_REDIS_CLUSTER_NODES", ""),
                        help="Redis Cluster seed nodes host:port,... (then --redis-url is not used)")
    parser.add_argument("--out", type=Path, required=True, help="directory of the hourly files")
    parser.add_argument("--shards", type=int, default=int(os.environ.get("SHOPLINK_CLICK_SHARDS", "4")))
    parser.add_argument("--group", default="jsonl_export")
    parser.add_argument("--consumer")
    parser.add_argument("--once", action="store_true", help="stop when every shard is drained")
    parser.add_argument("--dedup-window", type=int, default=DEDUP_WINDOW,
                        help="event ids remembered to drop copies of an event (default %(default)s)")
    args = parser.parse_args(argv)
    client: redis.Redis | RedisCluster
    if args.cluster_nodes:
        seeds = [node.strip().rpartition(":") for node in args.cluster_nodes.split(",") if node.strip()]
        client = RedisCluster(startup_nodes=[ClusterNode(host, int(port)) for host, _, port in seeds])
    else:
        client = redis.Redis.from_url(args.redis_url)
    try:
        count = export(client, args.out, shards=args.shards, group=args.group, consumer=args.consumer,
                       once=args.once, dedup_window=args.dedup_window)
    finally:
        client.close()
    print(json.dumps({"exported": count}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
