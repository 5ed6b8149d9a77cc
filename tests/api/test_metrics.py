"""GET /metrics read by Prometheus' own text-format parser (prometheus_client), as a scraper would."""

from __future__ import annotations

import asyncpg
from prometheus_client.parser import text_string_to_metric_families
from redis.asyncio import Redis

from shoplink.analytics import keys as k
from shoplink.analytics.streams import ensure_group

from support.api import METRICS_AUTH, AccountFactory, Api
from support.click_data import make_shop, video_anchor
from support.wait import until


async def test_metrics_parse_as_prometheus_text(make_account: AccountFactory, anon: Api, pool: asyncpg.Pool,
                                                redis: Redis) -> None:
    shop = await make_shop(await make_account("seller"))
    _, code, video_id = await video_anchor(pool, shop)
    assert (await anon.get(f"/r/{code}")).status == 302
    assert (await anon.get(f"/v1/videos/{video_id}/anchors")).status == 200

    async def flushed() -> bool:
        return sum([await redis.xlen(k.stream(n)) for n in range(4)]) == 1
    await until(flushed, what="the click on its stream")
    # a consumer group that has read nothing, on a stream with a deleted entry: Redis' lag is nil
    stream = k.stream(0)
    ids = [await redis.xadd(stream, {"e": b"{}"}) for _ in range(3)]
    await ensure_group(redis, stream, "fresh")
    await redis.xdel(stream, ids[1])
    reply = await anon.get("/metrics", headers=METRICS_AUTH)
    assert reply.status == 200
    assert reply.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    families = {f.name: f for f in text_string_to_metric_families(reply.body)}
    assert families, "no metric parsed"
    for family in families.values():
        assert family.documentation, f"{family.name}: no HELP"
        assert "per_second" not in family.name, f"{family.name}: rates are Prometheus' job (rate())"
        if family.type == "counter":  # the parser drops _total from the family name
            names = {s.name for s in family.samples}
            assert all(n.endswith(("_total", "_created")) for n in names), (family.name, names)
    # every counter the server exports is typed as one and named with _total
    for line in reply.body.splitlines():
        if line.startswith("# TYPE ") and line.endswith(" counter"):
            assert line.split()[2].endswith("_total"), line
    timeline = families["shoplink_timeline_cache_misses"]
    assert timeline.type == "counter" and timeline.samples[0].value >= 1
    lag = {s.labels["group"]: s.value for s in families["shoplink_click_group_lag"].samples
           if s.labels["shard"] == "0"}
    assert lag["fresh"] == await redis.xlen(stream) >= 2  # every entry: two of the three added (+ the click?)
