"""`shoplink serve --workers N`: one supervisor and N server processes sharing one port.

The supervisor serves nothing. It first reserves the address: a socket bound with SO_REUSEPORT
that never listens, so it receives no connection, but while it is held no program of another
user can take the port between two worker starts, and a busy port fails at once. Then it
starts N children, `shoplink serve --worker-slot I --control-fd F`. Each child is an ordinary
server process (its own event loop, pools, click buffer and spool file) whose listening socket
is bound with SO_REUSEPORT; the kernel spreads new connections over the children.

Each child holds one end of a socketpair, the control link. It writes `ready` there once
started; when the supervisor disappears (even under `kill -9`) the child reads end-of-file and
stops gracefully by itself, so no orphan keeps serving.

- SIGTERM or SIGINT to the supervisor is forwarded once, as SIGTERM, to every child: each stops
  accepting, finishes its requests, flushes its click buffer to Redis or to its spool file, and
  exits. The supervisor exits 0 when every child stopped cleanly, 1 otherwise (a child still
  running after STOP_TIMEOUT_S is killed). Children run in a session of their own, so a
  terminal's Ctrl-C reaches them once, through the supervisor.
- A child that exits while the supervisor is not stopping is started again after a backoff
  (RESTART_MIN_S, doubling up to RESTART_MAX_S; back to the minimum after STABLE_S of running).
- A child that fails before it was ever ready, while no child has ever been ready (database
  unmigrated or unreachable, a bad setting), stops the supervisor with exit 1 rather than being
  restarted forever.

Spool files: every process writes its own (`clicks-<pid>-<random>.spool`) under an flock held
for its life, in the shared SHOPLINK_SPOOL_DIR. A process that starts claims every spool file
nobody holds and replays it (delivery/writer.py): a restarted child replays what its dead
predecessor left, and the files of slots that no longer exist (N lowered) are taken by the
children that start next. Running children look for such files every 30 s too, so a child that
keeps failing to restart does not hold up its predecessor's spool. Two processes never append to
one file.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass

from aiohttp import web

from shoplink.config import Settings
from shoplink.keys import METRICS

log = logging.getLogger(__name__)

RESTART_MIN_S = 0.5
RESTART_MAX_S = 30.0
STABLE_S = 30.0
STOP_TIMEOUT_S = 60.0
READY = b"ready\n"


def reserve(host: str, port: int) -> tuple[list[socket.socket], int]:
    """Bind, without listening, every address of host:port with SO_REUSEPORT. Port 0 picks a
    free port (the same one for every address). Returns the sockets and the port."""
    infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    sockets: list[socket.socket] = []
    seen: set[tuple[int, object]] = set()
    try:
        for family, kind, proto, _, addr in infos:
            if (family, addr[0]) in seen:
                continue
            seen.add((family, addr[0]))
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            if family == socket.AF_INET6:  # as asyncio's create_server does
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind((addr[0], port, *addr[2:]))
            port = sock.getsockname()[1]
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    return sockets, port


@dataclass
class _Child:
    slot: int
    proc: asyncio.subprocess.Process | None = None
    started_at: float = 0.0
    ready: bool = False
    failures: int = 0  # consecutive short runs (backoff)


class Supervisor:
    def __init__(self, settings: Settings, workers: int, *, command: Sequence[str] | None = None) -> None:
        self.settings = settings
        self.children = [_Child(slot) for slot in range(workers)]
        self.command = list(command or (sys.executable, "-m", "shoplink", "serve"))
        self.port = settings.port
        self.restarts = 0
        self._stopping = asyncio.Event()
        self._any_ready = False
        self._unclean = False

    async def run(self) -> int:
        try:
            reserved, self.port = reserve(self.settings.host, self.settings.port)
        except OSError as exc:
            print(f"shoplink: cannot start: {exc}", file=sys.stderr)
            return 1
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self.stop, signum)
        log.info("supervisor started", extra={"bind": f"{self.settings.host}:{self.port}",
                                              "workers": len(self.children)})
        try:
            clean = await asyncio.gather(*(self._keep(child) for child in self.children))
        finally:
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(signum)
            for sock in reserved:
                sock.close()
        ok = all(clean) and not self._unclean
        log.info("supervisor stopped", extra={"clean": ok, "restarts": self.restarts})
        return 0 if ok else 1

    def stop(self, signum: int | None = None) -> None:
        """Stop every worker (on SIGTERM/SIGINT, or after a failed first start)."""
        if self._stopping.is_set():
            log.info("already stopping: waiting for the workers to flush")
            return
        log.info("stopping workers", extra={"signal": signal.Signals(signum).name if signum else None})
        self._stopping.set()
        for child in self.children:
            self._signal(child, signal.SIGTERM)
        asyncio.get_running_loop().call_later(STOP_TIMEOUT_S, self._kill_stragglers)

    def _signal(self, child: _Child, signum: int) -> None:
        if child.proc is not None and child.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                child.proc.send_signal(signum)

    def _kill_stragglers(self) -> None:
        for child in self.children:
            if child.proc is not None and child.proc.returncode is None:
                log.error("worker did not stop in time: killing it (its spool stays for the next start)",
                          extra={"slot": child.slot, "pid": child.proc.pid})
                self._unclean = True
                self._signal(child, signal.SIGKILL)

    async def _keep(self, child: _Child) -> bool:
        """Keep slot `child` running until the supervisor stops. True when it ended cleanly."""
        while True:
            code = await self._run_once(child)
            if self._stopping.is_set():
                # -SIGTERM: stopped before it set up its handlers, so before it served anything
                return code in (0, -signal.SIGTERM)
            if not child.ready and not self._any_ready:
                log.error("worker failed to start: stopping", extra={"slot": child.slot, "exit": code})
                self._unclean = True
                self.stop()
                return False
            ran = time.monotonic() - child.started_at
            child.failures = 0 if ran >= STABLE_S else child.failures + 1
            delay = min(RESTART_MAX_S, RESTART_MIN_S * 2 ** max(0, child.failures - 1))
            log.warning("worker exited: restarting it", extra={
                "slot": child.slot, "pid": child.proc.pid if child.proc else None, "exit": code,
                "ran_s": round(ran, 1), "restart_in_s": delay})
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), delay)
            if self._stopping.is_set():
                return True
            self.restarts += 1

    async def _run_once(self, child: _Child) -> int:
        """Start slot `child`'s process and wait for it to exit; returns its exit status."""
        ours, theirs = socket.socketpair()
        child.ready = False
        child.started_at = time.monotonic()
        try:
            child.proc = await asyncio.create_subprocess_exec(
                *self.command, "--worker-slot", str(child.slot), "--control-fd", str(theirs.fileno()),
                pass_fds=(theirs.fileno(),), start_new_session=True,
                env={**os.environ, "SHOPLINK_PORT": str(self.port)})
        except OSError as exc:
            ours.close()
            log.error("cannot start a worker", extra={"slot": child.slot, "error": repr(exc)})
            return 127
        finally:
            theirs.close()
        if self._stopping.is_set():
            self._signal(child, signal.SIGTERM)
        log.info("worker started", extra={"slot": child.slot, "pid": child.proc.pid})
        watch = asyncio.create_task(self._watch_ready(child, ours))
        try:
            return await child.proc.wait()
        finally:
            watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watch
            ours.close()

    async def _watch_ready(self, child: _Child, sock: socket.socket) -> None:
        sock.setblocking(False)
        with contextlib.suppress(OSError):
            if (await asyncio.get_running_loop().sock_recv(sock, 64)).startswith(READY):
                child.ready = self._any_ready = True
                log.info("worker ready", extra={"slot": child.slot,
                                                "pid": child.proc.pid if child.proc else None})


def supervise(settings: Settings, workers: int) -> int:
    return asyncio.run(Supervisor(settings, workers).run())


class _SlotFilter(logging.Filter):
    def __init__(self, slot: int) -> None:
        super().__init__()
        self.slot = slot

    def filter(self, record: logging.LogRecord) -> bool:
        record.worker = self.slot
        return True


class WorkerLink:
    """A server process's end of the control link (`serve --worker-slot I --control-fd F`)."""

    def __init__(self, slot: int, control_fd: int) -> None:
        self.slot = slot
        self._sock = socket.socket(fileno=control_fd)  # OSError when it is not a socket
        self._sock.setblocking(False)
        for handler in logging.getLogger().handlers:  # every log line names the worker
            handler.addFilter(_SlotFilter(slot))

    async def on_startup(self, app: web.Application) -> None:
        """The last start-up step: say `ready`, then watch the link for the supervisor's end."""
        app[METRICS].gauge("shoplink_worker_info",
                           "This server process: its pid and its slot under `serve --workers N`.").set(
            1, pid=str(os.getpid()), slot=str(self.slot))
        try:
            self._sock.send(READY)
        except OSError:
            self._supervisor_gone()
            return
        asyncio.get_running_loop().add_reader(self._sock.fileno(), self._on_readable)

    def _on_readable(self) -> None:
        try:
            data = self._sock.recv(64)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            asyncio.get_running_loop().remove_reader(self._sock.fileno())
            self._supervisor_gone()

    def _supervisor_gone(self) -> None:
        log.warning("the supervisor is gone: stopping")
        os.kill(os.getpid(), signal.SIGTERM)  # the graceful path, as if it had been asked
