"""`python -m shoplink serve` in a subprocess, for shutdown and crash tests."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from support.services import free_port


class ServeProcess:
    def __init__(self, database_url: str, redis_url: str, spool_dir: Path, secret: str, *,
                 wrapper: tuple[str, ...] = (), args: tuple[str, ...] = (), **settings: str) -> None:
        """`wrapper` prefixes the command (the benchmark pins CPUs with taskset); `args` go to
        `serve` (e.g. `--workers 2`)."""
        self.port = free_port()
        self.wrapper = wrapper
        self.args = args
        self.env = {**os.environ, "SHOPLINK_DATABASE_URL": database_url, "SHOPLINK_REDIS_URL": redis_url,
                    "SHOPLINK_PORT": str(self.port), "SHOPLINK_SPOOL_DIR": str(spool_dir),
                    "SHOPLINK_SECRET_KEY": secret, "SHOPLINK_ACCESS_LOG": "false",
                    "SHOPLINK_LOG_LEVEL": "warning",
                    **{f"SHOPLINK_{k.upper()}": v for k, v in settings.items()}}
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.proc = subprocess.Popen([*self.wrapper, sys.executable, "-m", "shoplink", "serve", *self.args],
                                     env=self.env)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"shoplink serve exited with {self.proc.returncode}")
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=1):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("shoplink serve did not start")

    def metric(self, name: str) -> float:
        """The value of a metric from /metrics, summed over its labels (0 when absent)."""
        with urllib.request.urlopen(self.url + "/metrics", timeout=5) as resp:
            text = resp.read().decode()
        pattern = rf"^{re.escape(name)}(?:{{[^}}]*}})? (\S+)$"
        return sum(float(m[1]) for m in re.finditer(pattern, text, re.MULTILINE))

    def worker_metrics(self, name: str, *, scrapes: int = 30) -> dict[int, float]:
        """{pid: value of `name`} of each worker process that answered one of `scrapes` scrapes
        of /metrics (each on a new connection, which the kernel hands to any of them). A scrape
        reset by a dying worker is skipped."""
        seen: dict[int, float] = {}
        for _ in range(scrapes):
            try:
                with urllib.request.urlopen(self.url + "/metrics", timeout=5) as resp:
                    text = resp.read().decode()
            except OSError:  # reset: queued on the socket of a worker that just died
                continue
            pid = re.search(r'^shoplink_worker_info\{pid="(\d+)"', text, re.MULTILINE)
            assert pid is not None, "not a worker of serve --workers N"
            pattern = rf"^{re.escape(name)}(?:{{[^}}]*}})? (\S+)$"
            seen[int(pid[1])] = sum(float(m[1]) for m in re.finditer(pattern, text, re.MULTILINE))
        return seen

    def terminate(self, timeout: float = 30) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
