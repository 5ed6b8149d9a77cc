"""Waiting for what happens elsewhere (a background flush, a consumer, another process): poll a
condition until it holds, within a deadline. This is the one way the tests wait; a sleep followed
by an assertion races whatever it waits for."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, overload

T = TypeVar("T")


# A check may answer None for "not yet": what until() returns is never None.
@overload
async def until(check: Callable[[], Awaitable[T | None]], *, timeout: float = ...,  # type: ignore[overload-overlap]
                interval: float = ..., what: str | None = ...) -> T: ...


@overload
async def until(check: Callable[[], T | None], *, timeout: float = ..., interval: float = ...,
                what: str | None = ...) -> T: ...


async def until(check: Callable[[], Any], *, timeout: float = 10.0, interval: float = 0.01,
                what: str | None = None) -> Any:
    """Call `check()` (a plain or an async function) every `interval` seconds until it returns
    something truthy, and return that. Past `timeout` seconds (a check that hangs included) the
    test fails with an AssertionError that names `what` (by default the check's source)."""
    last: Any = None
    try:
        async with asyncio.timeout(timeout) as deadline:
            while True:
                value = check()
                if inspect.isawaitable(value):
                    value = await value
                if value:
                    return value
                last = value
                await asyncio.sleep(interval)
    except TimeoutError:
        if not deadline.expired():  # raised by the check itself
            raise
        raise AssertionError(f"not true within {timeout} s: {what or _describe(check)} "
                             f"(last: {last!r})") from None


def _describe(check: Callable[[], Any]) -> str:
    try:
        return inspect.getsource(check).strip()
    except (OSError, TypeError):
        return getattr(check, "__qualname__", repr(check))


async def stays_true(check: Callable[[], Any], *, for_s: float, interval: float = 0.02,
                     what: str | None = None) -> None:
    """Assert that `check()` (plain or async) stays truthy for `for_s` seconds: for the rare
    negative check ("nothing consumes this stream"), where no event can end the wait early. When
    something observable does happen first (a later message, a file removed), wait for that with
    `until` instead."""
    loop = asyncio.get_running_loop()
    end = loop.time() + for_s
    while True:
        value = check()
        if inspect.isawaitable(value):
            value = await value
        assert value, f"no longer true: {what or _describe(check)} (got {value!r})"
        if loop.time() >= end:
            return
        await asyncio.sleep(interval)
