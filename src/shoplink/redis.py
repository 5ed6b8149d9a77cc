"""Redis client factory (redis-py's asyncio client)."""

from __future__ import annotations

from redis.asyncio import Redis


def create_redis(url: str) -> Redis:
    # decode_responses stays off: stream payloads are bytes and parsed with orjson.
    return Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5,
                          health_check_interval=30, retry_on_timeout=False)
