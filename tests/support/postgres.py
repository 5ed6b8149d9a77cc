"""A private PostgreSQL cluster for fault tests: initdb into a temporary directory, then start and
stop it (pg_ctl -m fast) on its own port, as often as a test needs. The shared server of the suite
is never touched.

The binaries are found as scripts/lib/env.sh finds them (SHOPLINK_PG_BINDIR, the newest
/usr/lib/postgresql/*/bin, or PATH); as root, the server runs as the `postgres` user (PostgreSQL
refuses root), which env.sh creates when it installs or starts the local server."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

from support.services import free_port


def pg_bindir() -> Path:
    if os.environ.get("SHOPLINK_PG_BINDIR"):
        return Path(os.environ["SHOPLINK_PG_BINDIR"])
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"),
                   key=lambda p: [int(n) for n in re.findall(r"\d+", p.parent.parent.name)] or [0])
    if found:
        return found[-1].parent
    initdb = shutil.which("initdb")
    if initdb is None:
        raise RuntimeError("PostgreSQL server binaries not found: run the tests through scripts/test")
    return Path(initdb).parent


class PostgresProcess:
    """One throw-away cluster: trust auth on 127.0.0.1, TCP only, fsync off."""

    def __init__(self) -> None:
        self.bindir = pg_bindir()
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="shoplink-pg-"))
        self.data = self.dir / "data"
        self.log = self.dir / "postgres.log"
        self._as_owner: list[str] = []
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
            self._as_owner = ["runuser", "-u", "postgres", "--"]

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, *args: str) -> None:
        result = subprocess.run([*self._as_owner, *args], cwd="/", capture_output=True, text=True,
                                timeout=120, check=False)
        if result.returncode != 0:
            log = self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""
            raise RuntimeError(f"{' '.join(args)} failed: {result.stderr[-2000:]}\n{log}")

    def init(self) -> None:
        self._run(str(self.bindir / "initdb"), "-D", str(self.data), "--auth=trust", "-U", "postgres",
                  "-E", "UTF8", "--no-locale", "--no-sync")

    def start(self) -> None:
        options = (f"-c listen_addresses=127.0.0.1 -c port={self.port} -c unix_socket_directories='' "
                   "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=50")
        self._run(str(self.bindir / "pg_ctl"), "start", "-D", str(self.data), "-l", str(self.log),
                  "-w", "-t", "60", "-o", options)

    def stop(self) -> None:
        """pg_ctl stop -m fast: clients are disconnected, the server is gone when this returns."""
        if (self.data / "postmaster.pid").exists():
            self._run(str(self.bindir / "pg_ctl"), "stop", "-D", str(self.data), "-m", "fast", "-w", "-t", "60")

    def postmaster_pid(self) -> int:
        return int((self.data / "postmaster.pid").read_text().split()[0])

    def freeze(self) -> list[int]:
        """SIGSTOP the postmaster and every backend of this cluster: PostgreSQL hangs (accepts TCP
        connections in the kernel, answers nothing). Returns the pids for `thaw`."""
        parent = self.postmaster_pid()
        children = subprocess.run(["ps", "-o", "pid=", "--ppid", str(parent)], capture_output=True,
                                  text=True, check=False).stdout.split()
        pids = [parent, *(int(pid) for pid in children)]
        for pid in pids:
            os.kill(pid, signal.SIGSTOP)
        return pids

    @staticmethod
    def thaw(pids: list[int]) -> None:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)

    def cleanup(self) -> None:
        try:
            self.stop()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)
