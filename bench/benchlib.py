"""Helpers shared by the benchmark scripts (each is run as `python bench/<name>.py`, so this
directory is on sys.path)."""

from __future__ import annotations

import asyncio
import time

import aiohttp


async def wait_http(url: str, timeout: float = 30) -> None:
    """Until `url` answers 200 (a server the benchmark started is up), at most `timeout` s."""
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as s:
        while time.monotonic() < deadline:
            try:
                async with s.get(url) as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")
