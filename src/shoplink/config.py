"""Every SHOPLINK_* environment variable, read in one place.

`Settings.from_env()` is the only code that looks at the environment. Each field is
declared once in `_FIELDS` with its variable, default and parser, so the README table
and the docker-compose test can be checked against this list.
A bad value raises `ConfigError` whose message is one line naming the variable.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit


class ConfigError(ValueError):
    """A setting could not be parsed; the message names the variable."""


def _parse_bool(raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise ValueError("expected one of true/false/1/0/yes/no/on/off")


def _parse_int(minimum: int, maximum: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        value = int(raw.strip())
        if not minimum <= value <= maximum:
            raise ValueError(f"must be between {minimum} and {maximum}")
        return value

    return parse


def _parse_float(minimum: float, maximum: float) -> Callable[[str], float]:
    def parse(raw: str) -> float:
        value = float(raw.strip())
        if not (minimum <= value <= maximum):  # also rejects NaN
            raise ValueError(f"must be between {minimum} and {maximum}")
        return value

    return parse


def _parse_url(*schemes: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        value = raw.strip()
        parts = urlsplit(value)
        if parts.scheme not in schemes or not parts.netloc:
            raise ValueError(f"expected a URL with scheme {' or '.join(schemes)}")
        return value

    return parse


def _parse_base_url(raw: str) -> str:
    return _parse_url("http", "https")(raw).rstrip("/")


def _parse_choice(*choices: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        value = raw.strip().lower()
        if value not in choices:
            raise ValueError(f"expected one of {', '.join(choices)}")
        return value

    return parse


def _parse_str(raw: str) -> str:
    return raw


def _parse_list(raw: str) -> tuple[str, ...]:
    """Items separated by commas (blanks dropped)."""
    return tuple(item.strip() for item in raw.split(",") if item.strip())


def _parse_secret(raw: str) -> str:
    if len(raw) < 16:
        raise ValueError("must be at least 16 characters")
    return raw


def _parse_buckets(raw: str) -> tuple[int, int, int]:
    parts = [int(p.strip()) for p in raw.split(",")]
    if len(parts) != 3 or any(p <= 0 for p in parts):
        raise ValueError("expected three positive integers: minute,hour,day")
    minute, hour, day = parts
    if hour % minute or day % hour or (86400 % day and day % 86400):
        raise ValueError("each bucket must divide the next, and the day bucket must align with days")
    return (minute, hour, day)


def _parse_nodes(raw: str) -> tuple[str, ...]:
    """`host:port,host:port` (empty: no cluster)."""
    nodes = []
    for part in (p.strip() for p in raw.split(",")):
        if not part:
            continue
        host, sep, port = part.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"expected host:port items separated by commas, got {part!r}")
        nodes.append(f"{host}:{int(port)}")
    return tuple(nodes)


def _parse_nameservers(raw: str) -> tuple[str, ...]:
    """`host[:port]` items separated by commas, each host an IP address (`[v6]:port` or a bare v6
    address); port 53 by default. Empty: the system's resolvers."""
    servers = []
    for part in (p.strip() for p in raw.split(",")):
        if not part:
            continue
        host, port = part, "53"
        if part.startswith("["):
            host, sep, rest = part[1:].partition("]")
            if not sep or (rest and not rest.startswith(":")):
                raise ValueError(f"expected [address]:port, got {part!r}")
            port = rest[1:] or "53"
        elif part.count(":") == 1:
            host, _, port = part.partition(":")
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            raise ValueError(f"{part!r}: a name server is an IP address (with an optional :port)") from None
        if not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"{part!r}: the port must be 1-65535")
        shown = f"[{address}]" if address.version == 6 else str(address)
        servers.append(f"{shown}:{int(port)}")
    return tuple(servers)


def _parse_optional_file(raw: str) -> Path | None:
    """A file that must exist (empty: none)."""
    if not raw.strip():
        return None
    path = Path(raw.strip())
    if not path.is_file():
        raise ValueError("no such file")
    return path


MAX_WORKERS = 256


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask: taskset, a container's cpuset)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def parse_workers(raw: str) -> int:
    """A number of server processes, or `auto`: one per usable CPU core."""
    value = raw.strip().lower()
    if value == "auto":
        return max(1, min(MAX_WORKERS, usable_cpus()))
    return _parse_int(1, MAX_WORKERS)(value)


def _parse_path(raw: str) -> Path:
    if not raw.strip():
        raise ValueError("must not be empty")
    return Path(raw.strip())


@dataclass(frozen=True)
class _Field:
    name: str
    env: str
    default: str
    parse: Callable[[str], Any]
    doc: str
    secret: bool = False


# The single list of settings. README.md's configuration table mirrors it (a test checks).
_FIELDS: tuple[_Field, ...] = (
    _Field("database_url", "SHOPLINK_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/shoplink",
           _parse_url("postgresql", "postgres"), "PostgreSQL connection URL.", secret=True),
    _Field("redis_url", "SHOPLINK_REDIS_URL", "redis://127.0.0.1:6379/0",
           _parse_url("redis", "rediss", "unix"), "Redis connection URL.", secret=True),
    _Field("redis_cluster_nodes", "SHOPLINK_REDIS_CLUSTER_NODES", "", _parse_nodes,
           "Redis Cluster seed nodes, `host:port` separated by commas. Empty: one Redis at "
           "SHOPLINK_REDIS_URL; set: a cluster (credentials and TLS still come from "
           "SHOPLINK_REDIS_URL, its host and port are ignored)."),
    _Field("host", "SHOPLINK_HOST", "127.0.0.1", _parse_str, "Address the HTTP server binds."),
    _Field("port", "SHOPLINK_PORT", "8080", _parse_int(0, 65535), "Port the HTTP server binds."),
    _Field("metrics_port", "SHOPLINK_METRICS_PORT", "0", _parse_int(0, 65535),
           "Also serve /metrics of each server process on its own port: this one plus the "
           "process's slot under `serve --workers N` (so every process can be scraped); 0: none."),
    _Field("metrics_token", "SHOPLINK_METRICS_TOKEN", "", lambda raw: _parse_secret(raw) if raw else "",
           "Bearer token (16+ chars) that opens /metrics on the main port. Empty: /metrics is only on "
           "SHOPLINK_METRICS_PORT (the main port answers 404).", secret=True),
    _Field("workers", "SHOPLINK_WORKERS", "1", parse_workers,
           "Server processes `shoplink serve` runs on the one port (SO_REUSEPORT) under a supervisor; "
           "`auto`: one per CPU core; 1: a single process, no supervisor. `--workers` overrides it."),
    _Field("public_base_url", "SHOPLINK_PUBLIC_BASE_URL", "",
           lambda raw: _parse_base_url(raw) if raw.strip() else "",
           "Base URL viewers reach (links, QR codes). Empty: http://HOST:PORT."),
    _Field("secret_key", "SHOPLINK_SECRET_KEY", "dev-only-insecure-secret-key-change-me",
           _parse_secret, "Key for viewer hashes, session cookies and CSRF tokens (16+ chars).",
           secret=True),
    _Field("log_level", "SHOPLINK_LOG_LEVEL", "info",
           _parse_choice("debug", "info", "warning", "error"), "Log level."),
    _Field("access_log", "SHOPLINK_ACCESS_LOG", "true", _parse_bool,
           "Write one structured access-log line per request."),
    _Field("db_pool_min", "SHOPLINK_DB_POOL_MIN", "1", _parse_int(0, 100),
           "Minimum PostgreSQL pool connections."),
    _Field("db_pool_max", "SHOPLINK_DB_POOL_MAX", "10", _parse_int(1, 500),
           "Maximum PostgreSQL pool connections."),
    _Field("db_timeout_s", "SHOPLINK_DB_TIMEOUT_S", "5", _parse_float(0.1, 600),
           "Longest wait for a PostgreSQL connection (connect or pool acquire); then the request "
           "answers 503 with Retry-After."),
    _Field("db_command_timeout_s", "SHOPLINK_DB_COMMAND_TIMEOUT_S", "30", _parse_float(0.1, 3600),
           "Longest a PostgreSQL statement may run; a server that stops answering fails requests after it."),
    _Field("header_timeout_s", "SHOPLINK_HEADER_TIMEOUT_S", "10", _parse_float(0.1, 3600),
           "Longest a client may take to send a request's head (request line and headers), from "
           "its connection's start or the first byte of the request; then the connection is closed."),
    _Field("body_timeout_s", "SHOPLINK_BODY_TIMEOUT_S", "30", _parse_float(0.1, 86_400),
           "A request body must arrive within this many seconds of its head, plus one second per "
           "SHOPLINK_BODY_MIN_RATE bytes received; a slower one is answered 408 and its connection closed."),
    _Field("body_min_rate", "SHOPLINK_BODY_MIN_RATE", "8192", _parse_float(1, 1e12),
           "Bytes per second a request body must keep up, on average, past SHOPLINK_BODY_TIMEOUT_S."),
    _Field("max_body_bytes", "SHOPLINK_MAX_BODY_BYTES", "1048576", _parse_int(1024, 1 << 30),
           "Largest JSON or CSV request body accepted."),
    _Field("allow_http_urls", "SHOPLINK_ALLOW_HTTP_URLS", "false", _parse_bool,
           "Development only: accept http:// product URLs and localhost/IP shop domains; loopback "
           "shop domains count as verified, and domain proof fetches may reach private addresses."),
    # Verified shop domains (docs/security.md): proofs, the re-check schedule of `shoplink domains watch`.
    _Field("dns_nameservers", "SHOPLINK_DNS_NAMESERVERS", "", _parse_nameservers,
           "DNS servers the domain proofs ask (TXT records, and the HTTPS proof's addresses): `host[:port]` "
           "IP addresses separated by commas. Empty: the system's resolvers (/etc/resolv.conf)."),
    _Field("dns_timeout_s", "SHOPLINK_DNS_TIMEOUT_S", "5", _parse_float(0.1, 60),
           "Longest one DNS lookup or one HTTPS proof fetch of a domain check may take."),
    _Field("domain_proof_https_port", "SHOPLINK_DOMAIN_PROOF_HTTPS_PORT", "443", _parse_int(1, 65535),
           "Port the HTTPS file proof (https://DOMAIN/.well-known/shoplink-verify.txt) is fetched from."),
    _Field("domain_proof_ca_file", "SHOPLINK_DOMAIN_PROOF_CA_FILE", "", _parse_optional_file,
           "PEM file of the CAs trusted for the HTTPS proof, instead of the system's trust store "
           "(a private PKI). Empty: the system's trust store."),
    _Field("domain_retry_min_s", "SHOPLINK_DOMAIN_RETRY_MIN_S", "60", _parse_float(0.05, 86_400),
           "First re-check of a pending domain (or of a missing proof) after this long; doubles after each failure."),
    _Field("domain_retry_max_s", "SHOPLINK_DOMAIN_RETRY_MAX_S", "21600", _parse_float(0.05, 30 * 86_400),
           "Longest wait between re-checks of a pending domain or a missing proof."),
    _Field("domain_recheck_s", "SHOPLINK_DOMAIN_RECHECK_S", "86400", _parse_float(0.05, 365 * 86_400),
           "How often a verified domain's proof is checked again (and a lapsed domain's, for recovery)."),
    _Field("domain_pending_max_s", "SHOPLINK_DOMAIN_PENDING_MAX_S", "604800", _parse_float(0.05, 365 * 86_400),
           "A domain still unproven this long after it was claimed becomes `failed` (re-checks stop)."),
    _Field("domain_lapse_after_s", "SHOPLINK_DOMAIN_LAPSE_AFTER_S", "259200", _parse_float(0, 365 * 86_400),
           "A verified domain whose proof has been missing this long becomes `lapsed`: its links stop redirecting."),
    _Field("domain_watch_interval_s", "SHOPLINK_DOMAIN_WATCH_INTERVAL_S", "30", _parse_float(0.05, 86_400),
           "How often `shoplink domains watch` looks for domains due for a check."),
    _Field("media_dir", "SHOPLINK_MEDIA_DIR", "./var/media", _parse_path,
           "Where uploaded videos and thumbnails are stored."),
    _Field("max_upload_bytes", "SHOPLINK_MAX_UPLOAD_BYTES", str(512 * 1024 * 1024),
           _parse_int(1024, 1 << 40), "Largest video upload accepted."),
    _Field("max_video_pixels", "SHOPLINK_MAX_VIDEO_PIXELS", str(4096 * 2160), _parse_int(64, 16384 * 16384),
           "Largest frame (width x height) of a video accepted, read from its container before anything "
           "is decoded; also bounds what decoding one frame costs (default: 4096x2160)."),
    _Field("max_video_duration_s", "SHOPLINK_MAX_VIDEO_DURATION_S", "14400", _parse_float(1, 30 * 86_400),
           "Longest video accepted, in seconds, as its container declares it (scene detection decodes "
           "every frame)."),
    _Field("allow_server_paths", "SHOPLINK_ALLOW_SERVER_PATHS", "false", _parse_bool,
           "Admin setting: allow registering videos by a path on the server."),
    _Field("max_anchors_per_video", "SHOPLINK_MAX_ANCHORS_PER_VIDEO", "30", _parse_int(1, 10_000),
           "Most active anchors one video may carry."),
    _Field("click_shards", "SHOPLINK_CLICK_SHARDS", "4", _parse_int(1, 1024),
           "Number of click streams shoplink:clicks:{n}."),
    _Field("commission_min_bp", "SHOPLINK_COMMISSION_MIN_BP", "100", _parse_int(0, 10_000),
           "Lowest commission rate a promotion plan may set, in basis points (100 = 1 %)."),
    _Field("commission_max_bp", "SHOPLINK_COMMISSION_MAX_BP", "8000", _parse_int(0, 10_000),
           "Highest commission rate a promotion plan may set, in basis points (8000 = 80 %)."),
    _Field("rate_cut_notice_days", "SHOPLINK_RATE_CUT_NOTICE_DAYS", "30", _parse_int(0, 3650),
           "Days before a commission cut reaches creators already enrolled (raises apply at once)."),
    _Field("attribution_window_days", "SHOPLINK_ATTRIBUTION_WINDOW_DAYS", "7", _parse_int(1, 365),
           "A sale is credited to the last qualifying click at most this many days before it."),
    _Field("attribution_consumer", "SHOPLINK_ATTRIBUTION_CONSUMER", "false", _parse_bool,
           "Also run the click-attribution consumer (group `attribution`) in this web instance. "
           "It runs in every `shoplink count` worker; turn this on only without count workers."),
    _Field("attribution_reclaim_idle_s", "SHOPLINK_ATTRIBUTION_RECLAIM_IDLE_S", "60",
           _parse_int(1, 86_400),
           "Click entries pending this long with another consumer are reclaimed (XAUTOCLAIM)."),
    _Field("attribution_pending_s", "SHOPLINK_ATTRIBUTION_PENDING_S", "604800",
           _parse_int(1, 10 * 365 * 86400),
           "A sale whose click (or viewer) is not stored yet waits this long for it "
           "(pending_attribution) before it is recorded unattributed; keep it at least "
           "SHOPLINK_STREAM_RETENTION_S, the longest a click can wait in the streams."),
    _Field("attribution_sweep_s", "SHOPLINK_ATTRIBUTION_SWEEP_S", "5", _parse_float(0.05, 3600),
           "How often the attribution consumer retries pending sales and resolves the expired ones."),
    _Field("return_window_days", "SHOPLINK_RETURN_WINDOW_DAYS", "14", _parse_int(0, 365),
           "A credited sale's commission is `pending` this many days after the sale, then `payable`."),
    _Field("media_workers", "SHOPLINK_MEDIA_WORKERS", "2", _parse_int(1, 64),
           "Threads for OpenCV work (probing, scene cuts, thumbnails, QR codes)."),
    _Field("snap_tolerance_s", "SHOPLINK_SNAP_TOLERANCE_S", "0.5", _parse_float(0.0, 60.0),
           "Default distance within which `snap` moves an anchor edge to a scene cut."),
    _Field("timeline_max_age_s", "SHOPLINK_TIMELINE_MAX_AGE_S", "5", _parse_int(0, 86400),
           "Cache-Control max-age of the public video timeline (ETag revalidation after it)."),
    _Field("live_max_products", "SHOPLINK_LIVE_MAX_PRODUCTS", "100", _parse_int(1, 10_000),
           "Most products in one live session's product set."),
    _Field("live_max_pins", "SHOPLINK_LIVE_MAX_PINS", "3", _parse_int(1, 100),
           "Most products pinned at once during a live."),
    _Field("live_heartbeat_s", "SHOPLINK_LIVE_HEARTBEAT_S", "15", _parse_float(0.05, 300.0),
           "Seconds between heartbeat comments on live event streams (also viewer-count refresh)."),
    _Field("live_resync_s", "SHOPLINK_LIVE_RESYNC_S", "30", _parse_float(0.1, 3600.0),
           "Seconds between safety re-syncs of watched live sessions from PostgreSQL."),
    _Field("spool_dir", "SHOPLINK_SPOOL_DIR", "./var/spool", _parse_path,
           "Where click events spill when Redis is unreachable (one append-only file per process)."),
    _Field("spool_fsync_ms", "SHOPLINK_SPOOL_FSYNC_MS", "1000", _parse_int(0, 60_000),
           "fsync the click spool at most this often (0: after every spooled batch)."),
    _Field("spool_max_bytes", "SHOPLINK_SPOOL_MAX_BYTES", str(1 << 30), _parse_int(0, 1 << 50),
           "Largest click spool file per process (0: no limit); events beyond it are dropped and "
           "counted (shoplink_click_events_dropped_total)."),
    _Field("click_cache_size", "SHOPLINK_CLICK_CACHE_SIZE", "200000", _parse_int(16, 10_000_000),
           "Most anchor codes the click resolver keeps in memory (unknown codes included)."),
    _Field("click_cache_ttl_s", "SHOPLINK_CLICK_CACHE_TTL_S", "60", _parse_float(0.1, 86_400),
           "Longest a cached anchor is used without re-reading it (bounds a missed invalidation)."),
    _Field("click_cache_max_stale_s", "SHOPLINK_CLICK_CACHE_MAX_STALE_S", "3600", _parse_float(0, 30 * 86_400),
           "While PostgreSQL is unreachable, an expired cached anchor is still served this long past its TTL."),
    _Field("click_negative_ttl_s", "SHOPLINK_CLICK_NEGATIVE_TTL_S", "10", _parse_float(0.1, 3600),
           "How long an unknown code is remembered as unknown."),
    _Field("click_flush_ms", "SHOPLINK_CLICK_FLUSH_MS", "5", _parse_int(1, 600_000),
           "Click events wait at most this long in memory before being written to Redis."),
    _Field("click_flush_batch", "SHOPLINK_CLICK_FLUSH_BATCH", "1000", _parse_int(1, 100_000),
           "Write click events as soon as this many are buffered."),
    _Field("click_buffer_max", "SHOPLINK_CLICK_BUFFER_MAX", "100000", _parse_int(100, 10_000_000),
           "Most click events held in memory; beyond that they spill to the spool file."),
    _Field("click_redis_timeout_s", "SHOPLINK_CLICK_REDIS_TIMEOUT_S", "1", _parse_float(0.05, 60),
           "A click flush slower than this counts as a Redis outage (events spill to the spool)."),
    # Analytics (click counting, roll-ups, stream retention, stats).
    _Field("stream_retention_s", "SHOPLINK_STREAM_RETENTION_S", "604800", _parse_int(60, 10 * 365 * 86400),
           "Click stream entries older than this are trimmed, once every consumer group acknowledged them."),
    _Field("stream_max_retention_s", "SHOPLINK_STREAM_MAX_RETENTION_S", "1209600",
           _parse_int(60, 10 * 365 * 86400),
           "A consumer group whose oldest unacknowledged entry is older than this is reported as overdue."),
    _Field("count_dedup_retention_s", "SHOPLINK_COUNT_DEDUP_RETENTION_S", "691200",
           _parse_int(60, 10 * 365 * 86400),
           "How long applied event ids are remembered per shard (must exceed the stream retention)."),
    _Field("count_batch", "SHOPLINK_COUNT_BATCH", "20000", _parse_int(1, 100_000),
           "Stream entries the count worker reads per XREADGROUP (bigger reads: fewer round trips; "
           "about 600 bytes of reply per entry)."),
    _Field("count_apply_chunk", "SHOPLINK_COUNT_APPLY_CHUNK", "40000", _parse_int(1, 1_000_000),
           "Most distinct increments (counter fields, HyperLogLog viewers, event ids) one atomic Lua "
           "call applies (a read batch is split into calls of whole events/batches)."),
    _Field("count_block_ms", "SHOPLINK_COUNT_BLOCK_MS", "1000", _parse_int(1, 60_000),
           "How long one XREADGROUP waits for new entries."),
    _Field("count_claim_idle_ms", "SHOPLINK_COUNT_CLAIM_IDLE_MS", "30000", _parse_int(1, 86_400_000),
           "Pending entries idle this long are reclaimed (XAUTOCLAIM) from a dead worker."),
    _Field("count_rollup_interval_s", "SHOPLINK_COUNT_ROLLUP_INTERVAL_S", "10", _parse_float(0.05, 86400),
           "How often the count worker moves Redis counters into PostgreSQL."),
    _Field("count_uniques_interval_s", "SHOPLINK_COUNT_UNIQUES_INTERVAL_S", "60", _parse_float(0.05, 86400),
           "How often the count worker unions unique-viewer HyperLogLogs into PostgreSQL (reads add the "
           "rest from Redis)."),
    _Field("count_trim_interval_s", "SHOPLINK_COUNT_TRIM_INTERVAL_S", "60", _parse_float(0.05, 86400),
           "How often the count worker trims the click streams."),
    _Field("count_metrics_port", "SHOPLINK_COUNT_METRICS_PORT", "0", _parse_int(0, 65535),
           "Port on which each `shoplink count` process serves /metrics (its counting and "
           "attribution counters), on SHOPLINK_HOST; 0: none. Streams and groups: the web /metrics."),
    _Field("stats_buckets", "SHOPLINK_STATS_BUCKETS", "60,3600,86400", _parse_buckets,
           "Bucket sizes in seconds of the minute, hour and day series (each divides the next)."),
    _Field("stats_minute_retention_s", "SHOPLINK_STATS_MINUTE_RETENTION_S", "172800",
           _parse_int(3600, 10 * 365 * 86400), "How long the minute series is kept."),
    _Field("stats_hour_retention_s", "SHOPLINK_STATS_HOUR_RETENTION_S", "7776000",
           _parse_int(3600, 100 * 365 * 86400), "How long the hour series is kept."),
    _Field("stats_day_retention_s", "SHOPLINK_STATS_DAY_RETENTION_S", "0",
           _parse_int(0, 1000 * 365 * 86400), "How long the day series is kept (0: forever)."),
    _Field("stats_uniques_ttl_s", "SHOPLINK_STATS_UNIQUES_TTL_S", "259200", _parse_int(600, 365 * 86400),
           "How long a day's unique-viewer HyperLogLog stays in Redis after its last click "
           "(PostgreSQL keeps the union)."),
    _Field("stats_heatmap_bucket_s", "SHOPLINK_STATS_HEATMAP_BUCKET_S", "1", _parse_int(1, 3600),
           "Width in playback seconds of one video heatmap cell."),
    # The player's events (POST /v1/events; per server process, see funnel/service.py).
    _Field("events_client_per_s", "SHOPLINK_EVENTS_CLIENT_PER_S", "20", _parse_float(0.001, 1e9),
           "Player events per second one client network (/24 or /48) may send, sustained; events "
           "beyond are dropped and counted (shoplink_player_events_dropped_total{reason=client_limit})."),
    _Field("events_client_burst", "SHOPLINK_EVENTS_CLIENT_BURST", "600", _parse_int(1, 1_000_000_000),
           "Player events one client network may send in a burst."),
    _Field("events_max_per_page_view", "SHOPLINK_EVENTS_MAX_PER_PAGE_VIEW", "500", _parse_int(1, 1_000_000),
           "Most player events counted for one page view (reason=page_view_limit beyond)."),
    _Field("events_page_views_tracked", "SHOPLINK_EVENTS_PAGE_VIEWS_TRACKED", "200000",
           _parse_int(100, 100_000_000),
           "Page views whose events each server process remembers (repeats dropped; least recent forgotten)."),
    # Rate limits (Redis token buckets shared by every instance; see security/ratelimit.py).
    _Field("rate_limits", "SHOPLINK_RATE_LIMITS", "true", _parse_bool,
           "Rate-limit the management API and failed sign-ins (off for benchmarks). Fails open when Redis is down."),
    _Field("rate_api_token_per_s", "SHOPLINK_RATE_API_TOKEN_PER_S", "20", _parse_float(0.001, 1e6),
           "Management API calls per second one token (or web session) may make, sustained."),
    _Field("rate_api_token_burst", "SHOPLINK_RATE_API_TOKEN_BURST", "200", _parse_int(1, 1_000_000),
           "Management API calls one token may make in a burst."),
    _Field("rate_api_client_per_s", "SHOPLINK_RATE_API_CLIENT_PER_S", "50", _parse_float(0.001, 1e6),
           "Management API calls per second one client address may make, sustained (all tokens)."),
    _Field("rate_api_client_burst", "SHOPLINK_RATE_API_CLIENT_BURST", "500", _parse_int(1, 1_000_000),
           "Management API calls one client address may make in a burst."),
    _Field("rate_auth_fail_per_s", "SHOPLINK_RATE_AUTH_FAIL_PER_S", "0.05", _parse_float(0.0001, 1000),
           "Failed authentications (bad token, rejected sign-in) forgiven per second, per client and per "
           "guessed token."),
    _Field("rate_auth_fail_burst", "SHOPLINK_RATE_AUTH_FAIL_BURST", "10", _parse_int(1, 10_000),
           "Failed authentications a client, or attempts at one token's head or tail, may make before "
           "429 (valid tokens are never refused for a client's failures)."),
    _Field("rate_exempt_tokens", "SHOPLINK_RATE_EXEMPT_TOKENS", "", _parse_list,
           "For test and fuzzing runs: API tokens (comma-separated) that no rate limit applies to. "
           "Empty in production (it only ever exempts the holders of the listed tokens).", secret=True),
)


def _fields_by_name() -> dict[str, _Field]:
    return {field.name: field for field in _FIELDS}


@dataclass(frozen=True)
class Settings:
    database_url: str
    redis_url: str
    redis_cluster_nodes: tuple[str, ...]
    host: str
    port: int
    metrics_port: int
    metrics_token: str
    workers: int
    public_base_url: str
    secret_key: str
    log_level: str
    access_log: bool
    db_pool_min: int
    db_pool_max: int
    db_timeout_s: float
    db_command_timeout_s: float
    header_timeout_s: float
    body_timeout_s: float
    body_min_rate: float
    max_body_bytes: int
    allow_http_urls: bool
    dns_nameservers: tuple[str, ...]
    dns_timeout_s: float
    domain_proof_https_port: int
    domain_proof_ca_file: Path | None
    domain_retry_min_s: float
    domain_retry_max_s: float
    domain_recheck_s: float
    domain_pending_max_s: float
    domain_lapse_after_s: float
    domain_watch_interval_s: float
    media_dir: Path
    max_upload_bytes: int
    max_video_pixels: int
    max_video_duration_s: float
    allow_server_paths: bool
    max_anchors_per_video: int
    click_shards: int
    commission_min_bp: int
    commission_max_bp: int
    rate_cut_notice_days: int
    attribution_window_days: int
    attribution_consumer: bool
    attribution_reclaim_idle_s: int
    attribution_pending_s: int
    attribution_sweep_s: float
    return_window_days: int
    media_workers: int
    snap_tolerance_s: float
    timeline_max_age_s: int
    live_max_products: int
    live_max_pins: int
    live_heartbeat_s: float
    live_resync_s: float
    spool_dir: Path
    spool_fsync_ms: int
    spool_max_bytes: int
    click_cache_size: int
    click_cache_ttl_s: float
    click_cache_max_stale_s: float
    click_negative_ttl_s: float
    click_flush_ms: int
    click_flush_batch: int
    click_buffer_max: int
    click_redis_timeout_s: float
    stream_retention_s: int
    stream_max_retention_s: int
    count_dedup_retention_s: int
    count_batch: int
    count_apply_chunk: int
    count_block_ms: int
    count_claim_idle_ms: int
    count_rollup_interval_s: float
    count_uniques_interval_s: float
    count_trim_interval_s: float
    count_metrics_port: int
    stats_buckets: tuple[int, int, int]
    stats_minute_retention_s: int
    stats_hour_retention_s: int
    stats_day_retention_s: int
    stats_uniques_ttl_s: int
    stats_heatmap_bucket_s: int
    events_client_per_s: float
    events_client_burst: int
    events_max_per_page_view: int
    events_page_views_tracked: int
    rate_limits: bool
    rate_api_token_per_s: float
    rate_api_token_burst: int
    rate_api_client_per_s: float
    rate_api_client_burst: int
    rate_auth_fail_per_s: float
    rate_auth_fail_burst: int
    rate_exempt_tokens: tuple[str, ...]

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Read settings from `environ` (default: os.environ); `overrides` win (tests)."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for field in _FIELDS:
            if field.name in overrides:
                values[field.name] = overrides.pop(field.name)
                continue
            raw = _raw_value(env, field)
            try:
                values[field.name] = field.parse(raw)
            except ValueError as exc:
                shown = "(hidden)" if field.secret else repr(raw)
                raise ConfigError(f"{field.env}={shown} is invalid: {exc}") from None
        if overrides:
            raise TypeError(f"unknown settings: {', '.join(sorted(overrides))}")
        if not values["public_base_url"]:
            values["public_base_url"] = f"http://{values['host']}:{values['port']}"
        if values["redis_cluster_nodes"] and values["redis_url"].startswith("unix:"):
            raise ConfigError("SHOPLINK_REDIS_CLUSTER_NODES needs a redis:// or rediss:// "
                              "SHOPLINK_REDIS_URL (a cluster is not reached over a unix socket)")
        if values["db_pool_min"] > values["db_pool_max"]:
            raise ConfigError("SHOPLINK_DB_POOL_MIN must not exceed SHOPLINK_DB_POOL_MAX")
        if values["commission_min_bp"] > values["commission_max_bp"]:
            raise ConfigError("SHOPLINK_COMMISSION_MIN_BP must not exceed SHOPLINK_COMMISSION_MAX_BP")
        if values["domain_retry_min_s"] > values["domain_retry_max_s"]:
            raise ConfigError("SHOPLINK_DOMAIN_RETRY_MIN_S must not exceed SHOPLINK_DOMAIN_RETRY_MAX_S")
        if values["count_dedup_retention_s"] <= values["stream_retention_s"]:
            raise ConfigError("SHOPLINK_COUNT_DEDUP_RETENTION_S must exceed SHOPLINK_STREAM_RETENTION_S")
        return cls(**values)

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)

    @property
    def uses_default_secret(self) -> bool:
        return self.secret_key == _fields_by_name()["secret_key"].default

    def unsafe_to_serve(self) -> str | None:
        """Why `shoplink serve` must not start with these settings (one line), or None.

        The default SHOPLINK_SECRET_KEY is public: with it, session cookies and CSRF tokens can
        be forged and the hashed viewer networks in click events reversed. It is accepted only
        by a server that binds to loopback and whose public base URL is a loopback URL (or
        empty, which means http://HOST:PORT): a developer's own machine."""
        if not self.uses_default_secret:
            return None
        public_host = urlsplit(self.public_base_url).hostname or ""
        if is_loopback_host(self.host) and is_loopback_host(public_host):
            return None
        where = f"binds {self.host!r}" if not is_loopback_host(self.host) else \
            f"is public at {self.public_base_url}"
        return (f"SHOPLINK_SECRET_KEY is the public development default and the server {where}: "
                "set SHOPLINK_SECRET_KEY (or SHOPLINK_SECRET_KEY_FILE) to 16+ random characters "
                "(the default is accepted only on loopback with a loopback public URL)")


def is_loopback_host(host: str) -> bool:
    """`localhost`, a name under `.localhost`, or a loopback address (127.0.0.0/8, ::1)."""
    name = host.strip().strip("[]").rstrip(".").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _raw_value(env: Mapping[str, str], field: _Field) -> str:
    file_var = f"{field.env}_FILE"
    if field.secret and env.get(file_var):
        path = env[file_var]
        try:
            return Path(path).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"{file_var}={path!r} cannot be read: {exc.strerror}") from None
    return env.get(field.env, field.default)


def documented_variables() -> list[tuple[str, str, str, bool]]:
    """(variable, default, description, has *_FILE variant) for docs and tests."""
    return [(f.env, f.default, f.doc, f.secret) for f in _FIELDS]


def markdown_table() -> str:
    """The README's configuration table (`shoplink settings --markdown` prints it)."""
    lines = ["| Variable | Default | Meaning |", "|---|---|---|"]
    for var, default, doc, secret in documented_variables():
        shown = f"`{default}`" if default else "(empty)"
        extra = f" Also `{var}_FILE`." if secret else ""
        lines.append(f"| `{var}` | {shown} | {doc}{extra} |")
    return "\n".join(lines)
