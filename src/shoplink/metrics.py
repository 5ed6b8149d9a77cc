"""A small Prometheus text-format registry (counters, gauges, summaries of durations).

Domains register their metrics once (module level or at start-up) and update them on their
hot paths; updating is a dict operation. `GET /metrics` renders everything. Gauges may also be
computed at scrape time through `register_collector`.
"""

from __future__ import annotations

import hmac
import math
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

from aiohttp import web

from shoplink.errors import NotFound, Unauthorized
from shoplink.keys import METRICS, SETTINGS

Labels = tuple[tuple[str, str], ...]
# The Prometheus text exposition format, version 0.0.4, as scrapers negotiate it.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _fmt_labels(labels: Labels) -> str:
    if not labels:
        return ""
    inner = ",".join(f'{k}="{v.replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34))}"'
                     for k, v in labels)
    return "{" + inner + "}"


def _fmt_value(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value)) if not float(value).is_integer() else str(int(value))


@dataclass
class Metric:
    name: str
    help: str
    kind: str  # counter | gauge | summary
    values: dict[Labels, float] = field(default_factory=dict)

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        key = tuple(sorted(labels.items()))
        self.values[key] = self.values.get(key, 0.0) + amount

    def set(self, value: float, **labels: str) -> None:
        self.values[tuple(sorted(labels.items()))] = value

    def get(self, **labels: str) -> float:
        return self.values.get(tuple(sorted(labels.items())), 0.0)

    def observe(self, seconds: float, **labels: str) -> None:
        """Summary: keeps _count and _sum (enough for rates and averages)."""
        key = tuple(sorted(labels.items()))
        self.values[(*key, ("__part", "count"))] = self.values.get((*key, ("__part", "count")), 0) + 1
        self.values[(*key, ("__part", "sum"))] = self.values.get((*key, ("__part", "sum")), 0) + seconds

    def render(self) -> Iterable[str]:
        yield f"# HELP {self.name} {self.help}"
        yield f"# TYPE {self.name} {self.kind}"
        for labels, value in sorted(self.values.items()):
            if self.kind == "summary":
                part = dict(labels)["__part"]
                rest = tuple(kv for kv in labels if kv[0] != "__part")
                yield f"{self.name}_{part}{_fmt_labels(rest)} {_fmt_value(value)}"
            else:
                yield f"{self.name}{_fmt_labels(labels)} {_fmt_value(value)}"


class Registry:
    def __init__(self) -> None:
        self._metrics: dict[str, Metric] = {}
        self._collectors: list[Callable[[], Awaitable[None]]] = []

    def _get(self, name: str, help: str, kind: str) -> Metric:
        metric = self._metrics.get(name)
        if metric is None:
            metric = self._metrics[name] = Metric(name, help, kind)
        return metric

    def counter(self, name: str, help: str) -> Metric:
        return self._get(name, help, "counter")

    def gauge(self, name: str, help: str) -> Metric:
        return self._get(name, help, "gauge")

    def summary(self, name: str, help: str) -> Metric:
        return self._get(name, help, "summary")

    def register_collector(self, collect: Callable[[], Awaitable[None]]) -> None:
        """`collect()` runs before each scrape (e.g. to read stream lag from Redis)."""
        self._collectors.append(collect)

    async def render(self) -> str:
        for collect in self._collectors:
            try:
                await collect()
            except Exception:  # a failing collector must not hide the other metrics
                continue
        lines: list[str] = []
        for name in sorted(self._metrics):
            lines.extend(self._metrics[name].render())
        return "\n".join(lines) + "\n"


async def _render(request: web.Request) -> web.Response:
    body = await request.app[METRICS].render()
    return web.Response(body=body.encode(), headers={"Content-Type": CONTENT_TYPE,
                                                     "Cache-Control": "no-store"})


async def metrics_view(request: web.Request) -> web.Response:
    """/metrics on the metrics port (SHOPLINK_METRICS_PORT): open, the port is for the scraper."""
    return await _render(request)


async def guarded_metrics_view(request: web.Request) -> web.Response:
    """/metrics on the main port: only with `Authorization: Bearer SHOPLINK_METRICS_TOKEN`; without
    a token configured it does not exist there (404: scrape the metrics port)."""
    token = request.app[SETTINGS].metrics_token
    if not token:
        raise NotFound("/metrics is served on SHOPLINK_METRICS_PORT (or here with SHOPLINK_METRICS_TOKEN)")
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
        raise Unauthorized("/metrics needs Authorization: Bearer <SHOPLINK_METRICS_TOKEN>")
    return await _render(request)


def setup_routes(app: web.Application) -> None:
    """The main app's /metrics (token-guarded)."""
    app.router.add_get("/metrics", guarded_metrics_view)


async def serve_registry(registry: Registry, host: str, port: int, *, setting: str) -> web.AppRunner:
    """`registry` alone on `GET http://host:port/metrics` (a process's own scrape endpoint).
    Raises OSError naming the port and the `setting` it came from when it cannot be bound;
    `cleanup()` the runner to stop it."""
    app = web.Application()
    app[METRICS] = registry
    app.router.add_get("/metrics", metrics_view)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError as exc:
        await runner.cleanup()
        raise OSError(f"cannot serve /metrics on port {port} ({setting}): {exc}") from exc
    return runner
