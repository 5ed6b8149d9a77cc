"""/metrics is not public on the main port: it needs SHOPLINK_METRICS_TOKEN there (the metrics
port, SHOPLINK_METRICS_PORT, serves it to the scraper: tests/process/test_serve_workers.py)."""

from __future__ import annotations

from aiohttp import ClientSession

from support.api import METRICS_AUTH, METRICS_TOKEN, Api, ServerFactory


async def test_metrics_on_the_main_port_need_the_token(start_server: ServerFactory, http: ClientSession) -> None:
    server = await start_server()
    base = str(server.make_url("")).rstrip("/")
    anon = Api(http, base, None)
    refused = await anon.get("/metrics")
    assert (refused.status, refused.error_code) == (401, "unauthorized")
    assert refused.headers["WWW-Authenticate"] == "Bearer"
    assert "shoplink_" not in str(refused.body)
    for wrong in ("Bearer " + METRICS_TOKEN[:-1], "Bearer " + METRICS_TOKEN + "x", METRICS_TOKEN,
                  "Basic " + METRICS_TOKEN):
        assert (await anon.get("/metrics", headers={"Authorization": wrong})).status == 401
    allowed = await anon.get("/metrics", headers=METRICS_AUTH)
    assert allowed.status == 200 and "# TYPE shoplink_" in allowed.body


async def test_without_a_token_metrics_are_not_on_the_main_port(
        start_server: ServerFactory, http: ClientSession) -> None:
    server = await start_server(metrics_token="")
    anon = Api(http, str(server.make_url("")).rstrip("/"), None)
    for headers in ({}, METRICS_AUTH, {"Authorization": "Bearer "}):
        reply = await anon.get("/metrics", headers=headers)
        assert (reply.status, reply.error_code) == (404, "not_found")
        assert "SHOPLINK_METRICS_PORT" in reply.body["error"]["message"]
