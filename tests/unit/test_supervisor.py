"""The parts of `serve --workers N` that need no server: the port reservation and the CLI."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from shoplink import cli
from shoplink.supervisor import reserve


def test_reservation_keeps_the_port_for_reuseport_listeners_only() -> None:
    reserved, port = reserve("127.0.0.1", 0)
    try:
        assert port and [s.getsockname()[1] for s in reserved] == [port]
        with socket.socket() as foreign, pytest.raises(OSError):  # no SO_REUSEPORT: refused
            foreign.bind(("127.0.0.1", port))
        with socket.socket() as worker:
            worker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            worker.bind(("127.0.0.1", port))
            worker.listen()
            with socket.create_connection(("127.0.0.1", port), timeout=2):
                conn, _ = worker.accept()  # the worker gets the connection, never the reservation
                conn.close()
    finally:
        for sock in reserved:
            sock.close()


def test_reservation_of_a_busy_port_fails() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        with pytest.raises(OSError):
            reserve("127.0.0.1", taken.getsockname()[1])


@pytest.mark.parametrize("value", ["0", "-1", "257", "many"])
def test_workers_flag_refuses_bad_values(value: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["serve", "--workers", value])
    assert exit_info.value.code == 2
    assert "--workers" in capsys.readouterr().err


def serve(*args: str, pass_fds: tuple[int, ...] = ()) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "shoplink", "serve", *args], capture_output=True, text=True,
                          timeout=60, pass_fds=pass_fds)


def test_worker_flags_go_together() -> None:
    done = serve("--worker-slot", "0")
    assert done.returncode == 2 and "go together" in done.stderr


def test_a_control_fd_that_is_not_a_socket_is_refused(tmp_path: Path) -> None:
    with open(tmp_path / "file", "w") as f:
        done = serve("--worker-slot", "0", "--control-fd", str(f.fileno()), pass_fds=(f.fileno(),))
    assert done.returncode == 2 and "--control-fd" in done.stderr
