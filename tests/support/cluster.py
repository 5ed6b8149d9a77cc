"""A real 3-node Redis Cluster from the `redis-server` binary, on free loopback ports.

No redis-cli and no replicas: each node starts with `--cluster-enabled yes`, gets a third of the
16384 slots with CLUSTER ADDSLOTSRANGE, meets the first node with CLUSTER MEET, and the cluster is
ready once every node reports `cluster_state:ok` and knows every slot (about 1-2 s).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from support.services import free_port

SLOTS = 16384


def command(port: int, *args: str, timeout: float = 2.0) -> bytes:
    """One command over a raw socket; returns the raw RESP reply (enough for these checks)."""
    payload = b"*%d\r\n" % len(args) + b"".join(
        b"$%d\r\n%s\r\n" % (len(a.encode()), a.encode()) for a in args)
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(payload)
        data = b""
        while True:
            chunk = s.recv(65536)
            data += chunk
            if not chunk or _complete(data):
                return data


def _complete(data: bytes) -> bool:
    if not data.endswith(b"\r\n"):
        return False
    if data[:1] != b"$":
        return True
    head, _, rest = data.partition(b"\r\n")
    return len(rest) >= int(head[1:]) + 2


class ClusterNode:
    def __init__(self, root: Path) -> None:
        self.port = free_port()
        self.bus_port = free_port()  # not port + 10000, which may not exist (port > 55535)
        self.dir = root / str(self.port)
        self.dir.mkdir()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not on PATH: run the tests through scripts/test")
        self.proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--cluster-enabled", "yes",
             "--cluster-port", str(self.bus_port),
             "--cluster-config-file", str(self.dir / "nodes.conf"), "--cluster-node-timeout", "2000",
             "--cluster-require-full-coverage", "no",
             "--save", "", "--appendonly", "no", "--dir", str(self.dir), "--daemonize", "no",
             "--loglevel", "warning"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if command(self.port, "PING", timeout=0.2).startswith(b"+PONG"):
                    return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError(f"redis-server (cluster node) did not start on port {self.port}")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(timeout=10)
            self.proc = None

    def info(self) -> str:
        return command(self.port, "CLUSTER", "INFO").decode(errors="replace")


class RedisCluster3:
    """Three masters, slots 0-5460, 5461-10922, 10923-16383 (like redis-cli --cluster create)."""

    def __init__(self, size: int = 3) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="shoplink-cluster-"))
        self.nodes = [ClusterNode(self.root) for _ in range(size)]

    @property
    def seeds(self) -> str:
        """The value of SHOPLINK_REDIS_CLUSTER_NODES."""
        return ",".join(n.address for n in self.nodes)

    def start(self) -> None:
        for node in self.nodes:
            node.start()
        step = SLOTS // len(self.nodes)
        for i, node in enumerate(self.nodes):
            first = i * step
            last = SLOTS - 1 if i == len(self.nodes) - 1 else first + step - 1
            reply = command(node.port, "CLUSTER", "ADDSLOTSRANGE", str(first), str(last))
            if not reply.startswith(b"+OK"):
                raise RuntimeError(f"CLUSTER ADDSLOTSRANGE failed: {reply!r}")
        for node in self.nodes[1:]:
            command(node.port, "CLUSTER", "MEET", "127.0.0.1", str(self.nodes[0].port),
                    str(self.nodes[0].bus_port))
        self.wait_ok()

    def wait_ok(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                infos = [n.info() for n in self.nodes]
            except OSError:
                infos = []
            if infos and all("cluster_state:ok" in i and f"cluster_known_nodes:{len(self.nodes)}" in i
                             and f"cluster_slots_ok:{SLOTS}" in i for i in infos):
                return
            time.sleep(0.05)
        raise RuntimeError(f"the test Redis Cluster did not reach cluster_state:ok: {infos}")

    def flushall(self) -> None:
        for node in self.nodes:
            command(node.port, "FLUSHALL")

    def node_of_slot(self, slot: int) -> ClusterNode:
        step = SLOTS // len(self.nodes)
        return self.nodes[min(slot // step, len(self.nodes) - 1)]

    def restart(self, node: ClusterNode) -> None:
        """Kill a node and start it again on the same port with its nodes.conf (data is lost:
        no persistence)."""
        node.stop()
        node.start()
        self.wait_ok()

    def cleanup(self) -> None:
        for node in self.nodes:
            node.stop()
        shutil.rmtree(self.root, ignore_errors=True)
