"""Redis client factory (redis-py's asyncio client)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import PubSub


def create_redis(url: str) -> Redis:
    # decode_responses stays off: stream payloads are bytes and parsed with orjson.
    return Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5,
                          health_check_interval=30, retry_on_timeout=False)


def raise_if_cancelled() -> None:
    """Honour a cancellation that redis-py swallowed.

    redis-py shields a command that is waiting for its reply (a blocking XREADGROUP, say), so a
    `task.cancel()` arriving then can be lost and the loop would go on forever. Loops that issue
    blocking commands call this once per iteration: the request is still recorded on the task.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


async def pubsub_messages(pubsub: PubSub, poll_s: float = 0.25) -> AsyncIterator[dict[str, Any]]:
    """The messages of a subscription, in a loop that a task cancellation always ends.

    `PubSub.listen()` waits without a timeout and can swallow a cancellation (see
    `raise_if_cancelled`); polling with a short timeout bounds how long shutdown waits.
    """
    while True:
        raise_if_cancelled()
        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=poll_s)
        if message is not None:
            yield message
