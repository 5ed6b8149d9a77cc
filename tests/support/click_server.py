"""`python -m shoplink serve` in a subprocess, for shutdown and crash tests."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from support.api import METRICS_AUTH, METRICS_TOKEN
from support.services import free_port


class ServeProcess:
    def __init__(self, database_url: str, redis_url: str, spool_dir: Path, secret: str, *,
                 wrapper: tuple[str, ...] = (), args: tuple[str, ...] = (), capture_stderr: bool = False,
                 **settings: str) -> None:
        """`wrapper` prefixes the command (the benchmark pins CPUs with taskset); `args` go to
        `serve` (e.g. `--workers 2`); with `capture_stderr` the server's log lines are collected
        in `stderr_lines` (read from a pipe by a thread, so the server never blocks on it)."""
        self.port = free_port()
        self.wrapper = wrapper
        self.args = args
        self.env = {**os.environ, "SHOPLINK_DATABASE_URL": database_url, "SHOPLINK_REDIS_URL": redis_url,
                    "SHOPLINK_PORT": str(self.port), "SHOPLINK_SPOOL_DIR": str(spool_dir),
                    "SHOPLINK_SECRET_KEY": secret, "SHOPLINK_ACCESS_LOG": "false",
                    "SHOPLINK_METRICS_TOKEN": METRICS_TOKEN,
                    "SHOPLINK_LOG_LEVEL": "warning",
                    **{f"SHOPLINK_{k.upper()}": v for k, v in settings.items()}}
        self.proc: subprocess.Popen[bytes] | None = None
        self.capture_stderr = capture_stderr
        self.stderr_lines: list[str] = []
        self._drainer: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.proc = subprocess.Popen([*self.wrapper, sys.executable, "-m", "shoplink", "serve", *self.args],
                                     env=self.env, stderr=subprocess.PIPE if self.capture_stderr else None)
        if self.proc.stderr is not None:
            self._drainer = threading.Thread(target=self._drain, args=(self.proc.stderr,), daemon=True)
            self._drainer.start()
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

    def _drain(self, pipe: Any) -> None:
        for line in pipe:
            self.stderr_lines.append(line.decode(errors="replace"))

    def stderr_text(self, timeout: float = 10) -> str:
        """Everything the server wrote to stderr, once it has exited (`capture_stderr`): waits for
        the process, then for the reader thread to reach the end of the pipe."""
        assert self.proc is not None and self._drainer is not None, "capture_stderr=True"
        self.proc.wait(timeout=timeout)
        self._drainer.join(timeout=timeout)
        assert not self._drainer.is_alive(), "stderr still open after the server exited"
        return "".join(self.stderr_lines)

    def _metrics_request(self) -> urllib.request.Request:
        return urllib.request.Request(self.url + "/metrics", headers=METRICS_AUTH)

    def metric(self, name: str) -> float:
        """The value of a metric from /metrics, summed over its labels (0 when absent)."""
        with urllib.request.urlopen(self._metrics_request(), timeout=5) as resp:
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
                with urllib.request.urlopen(self._metrics_request(), timeout=5) as resp:
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
        code = self.proc.wait(timeout=timeout)
        self._close_stderr()
        return code

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self._close_stderr()

    def _close_stderr(self) -> None:
        if self._drainer is not None:  # the pipe ends with the process (EOF)
            self._drainer.join(timeout=10)
            self._drainer = None
        if self.proc is not None and self.proc.stderr is not None:
            self.proc.stderr.close()
