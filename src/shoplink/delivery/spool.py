"""The local spool: the append-only journal of a process's events, and its shipping mark.

One file per process, `clicks-<pid>-<random>.spool` in SHOPLINK_SPOOL_DIR, held under an
exclusive flock(2) for the life of the process. Each line is `<shard> <event JSON>\n` (orjson
never emits a raw newline). Every recorded event is appended (one write(2), before the click is
answered): the kernel's page cache keeps it when the process is killed, so a kill -9 loses
nothing that was answered. The writer ships events to Redis and records how far it got in the
file's mark, `<name>.spool.ack` (below); a file whose events are all shipped is emptied (or, once
it is larger than ROTATE_BYTES under steady load, replaced by a new one and removed).

A file whose lock can be taken belongs to no running process (it was left by a crash, or by a
shutdown while Redis was down): the next process that starts, or a running one within
ORPHAN_SCAN_S (delivery/writer.py), claims it and ships what its mark says is not shipped yet. A
line cut short by a crash is skipped.

The mark (`Mark`): four integers rewritten in place with one pwrite(2) per shipped batch:
`shipped` (bytes of the file acknowledged by Redis), `sent` (bytes of it written to Redis, maybe
not acknowledged: the batch in flight), `since_ms` (a Redis-clock time no later than when any
event past `shipped` can have been applied: the last reply before that batch was sent, or the
connection's TIME) and `client_id` (the CLIENT ID of the connection that sent it). Events in
[shipped, sent) are uncertain: the claiming writer first looks them up in the streams (XRANGE
from since_ms, after killing the dead process's connection) and sends only those not there.

Durability: the file is fsynced at most every SHOPLINK_SPOOL_FSYNC_MS (0: after every batch)
while Redis is unavailable (events wait in the file) and at shutdown, never per click: a power
loss can cost that window; a killed process costs nothing.
"""

from __future__ import annotations

import fcntl
import os
import secrets
from collections.abc import Iterable
from pathlib import Path

SUFFIX = ".spool"
READ_CHUNK = 1 << 20
MARK_SUFFIX = ".ack"
MARK_BYTES = 96

Record = tuple[int, bytes]  # (shard, event JSON)


def encode_lines(records: Iterable[Record]) -> bytes:
    return b"".join([b"%d %s\n" % (shard, payload) for shard, payload in records])


def fitting(records: list[Record], room: int) -> int:
    """How many of `records`, from the first, take at most `room` bytes as spool lines."""
    for n, (shard, payload) in enumerate(records):
        room -= len(payload) + (2 if shard < 10 else len(str(shard)) + 1)
        if room < 0:
            return n
    return len(records)


class Mark:
    """How far a spool file is shipped (see the module docstring)."""

    __slots__ = ("client_id", "sent", "shipped", "since_ms")

    def __init__(self, shipped: int = 0, sent: int = 0, since_ms: int = 0, client_id: int = 0) -> None:
        self.shipped = shipped
        self.sent = sent
        self.since_ms = since_ms
        self.client_id = client_id

    def encode(self) -> bytes:
        return (b"%d %d %d %d\n" % (self.shipped, self.sent, self.since_ms, self.client_id)).ljust(MARK_BYTES)

    @classmethod
    def decode(cls, data: bytes) -> Mark | None:
        parts = data.split(b"\n", 1)[0].split()
        if len(parts) != 4 or not all(p.isdigit() for p in parts):
            return None
        return cls(*(int(p) for p in parts))


def mark_path(path: Path) -> Path:
    return path.with_name(path.name + MARK_SUFFIX)


class SpoolFile:
    def __init__(self, path: Path, fd: int, mark_fd: int = -1) -> None:
        self.path = path
        self.fd = fd
        self.mark_fd = mark_fd  # the mark file (-1: none; a spool written by an older version)
        self.size = os.fstat(fd).st_size  # bytes in the file
        self.replayed_to = 0  # bytes already shipped (the start of the next line to send)
        self.dirty = False  # written since the last fsync
        self.skipped = 0  # malformed lines dropped while reading
        self.mark: Mark | None = None  # read from the mark file when claimed

    @classmethod
    def create(cls, directory: Path) -> SpoolFile:
        """A new, locked file for this process (locked before it gets the name others scan)."""
        directory.mkdir(parents=True, exist_ok=True)
        name = f"clicks-{os.getpid()}-{secrets.token_hex(4)}"
        temp = directory / (name + ".new")
        fd = os.open(temp, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_EXCL, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        path = directory / (name + SUFFIX)
        try:
            mark_fd = os.open(mark_path(path), os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        except OSError:
            os.close(fd)
            temp.unlink(missing_ok=True)
            raise
        os.rename(temp, path)
        return cls(path, fd, mark_fd)

    @classmethod
    def claim_orphans(cls, directory: Path, *, exclude: Path | None = None) -> list[SpoolFile]:
        """Spool files no live process holds, oldest first."""
        if not directory.is_dir():
            return []
        found = []
        for path, _ in sorted(_with_mtimes(directory.glob("*" + SUFFIX)), key=lambda item: item[1]):
            if path == exclude:
                continue
            try:
                fd = os.open(path, os.O_RDWR | os.O_APPEND)
            except FileNotFoundError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:  # a live process owns it
                os.close(fd)
                continue
            if not path.exists():  # replayed and removed by another process meanwhile
                os.close(fd)
                continue
            spool = cls(path, fd, _open_mark(path))
            spool.mark = spool.read_mark()
            if spool.mark is not None:  # what the dead process had shipped already
                spool.replayed_to = min(spool.mark.shipped, spool.size)
            found.append(spool)
        return found

    @property
    def pending(self) -> bool:
        return self.replayed_to < self.size

    def write_mark(self, mark: Mark) -> None:
        """Rewrite the mark in place (one pwrite; survives the process being killed)."""
        if self.mark_fd >= 0:
            os.pwrite(self.mark_fd, mark.encode(), 0)

    def read_mark(self) -> Mark | None:
        if self.mark_fd < 0:
            return None
        return Mark.decode(os.pread(self.mark_fd, MARK_BYTES, 0))

    def append_line(self, line: bytes) -> None:
        """One event line (the hot path: a single write(2); a short write is completed or cut
        off like `append`'s)."""
        written = os.write(self.fd, line)
        if written != len(line):
            try:
                rest = memoryview(line)[written:]
                while rest:
                    rest = rest[os.write(self.fd, rest):]
            except OSError:
                os.ftruncate(self.fd, self.size)
                raise
        self.size += len(line)

    def read_range(self, start: int, end: int) -> list[tuple[int, bytes, int]]:
        """Every well-formed (shard, payload, end offset) between two line boundaries."""
        out: list[tuple[int, bytes, int]] = []
        pos = start
        while pos < end:
            chunk = os.pread(self.fd, min(READ_CHUNK, end - pos), pos)
            if not chunk:
                break
            cut = chunk.rfind(b"\n") + 1
            if cut == 0:
                if len(chunk) < READ_CHUNK:
                    break
                pos += len(chunk)  # a line longer than a chunk: malformed
                continue
            offset = pos
            for line in chunk[:cut].split(b"\n")[:-1]:
                offset += len(line) + 1
                record = _parse(line)
                if record is not None:
                    out.append((record[0], record[1], offset))
            pos += cut
        return out

    def append(self, records: list[Record]) -> None:
        """Write `records` at the end, all or none: on a failed write (disk full: ENOSPC, a file
        size limit: EFBIG) a partly written batch is cut off again, then the OSError is raised."""
        data = memoryview(encode_lines(records))
        total = len(data)
        try:
            while data:
                written = os.write(self.fd, data)
                data = data[written:]
        except OSError:
            if os.fstat(self.fd).st_size != self.size:
                os.ftruncate(self.fd, self.size)  # shrinking needs no space
            raise
        self.size += total
        self.dirty = True

    def read(self, max_records: int) -> list[tuple[int, bytes, int]]:
        """Up to `max_records` (shard, payload, end offset) from the replay position. Advances
        past malformed lines, and past a torn last line (a crash mid-write), by itself."""
        out: list[tuple[int, bytes, int]] = []
        while not out and self.pending:
            chunk = os.pread(self.fd, READ_CHUNK, self.replayed_to)
            if not chunk:
                self.size = self.replayed_to
                break
            pos = self.replayed_to
            start = 0
            while len(out) < max_records:
                end = chunk.find(b"\n", start)
                if end < 0:
                    break
                line = chunk[start:end]
                start = end + 1
                record = _parse(line)
                if record is None:
                    self.skipped += 1
                    if not out:
                        self.replayed_to = pos + start
                    continue
                out.append((record[0], record[1], pos + start))
            if not out and start == 0:  # no complete line in a whole chunk: torn tail
                self.skipped += 1
                self.replayed_to = self.size
        return out

    def reset(self, mark: Mark) -> None:
        """Everything was shipped: empty the file (our own file only), then its mark. A kill
        between the two leaves an empty file with an old mark: nothing to ship either way."""
        os.ftruncate(self.fd, 0)
        self.size = self.replayed_to = 0
        mark.shipped = mark.sent = 0
        self.write_mark(mark)

    def fsync(self) -> None:
        os.fsync(self.fd)
        self.dirty = False

    def remove(self) -> None:
        """The file first: a mark left without its file is harmless, a file without its mark
        would be shipped again."""
        self.path.unlink(missing_ok=True)
        mark_path(self.path).unlink(missing_ok=True)
        self.close()

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        if self.mark_fd >= 0:
            os.close(self.mark_fd)
            self.mark_fd = -1


def _open_mark(path: Path) -> int:
    try:
        return os.open(mark_path(path), os.O_RDWR)
    except FileNotFoundError:
        return -1


def _with_mtimes(paths: Iterable[Path]) -> list[tuple[Path, float]]:
    """(path, mtime) of the files that still exist (another process may remove one meanwhile)."""
    out = []
    for path in paths:
        try:
            out.append((path, path.stat().st_mtime))
        except FileNotFoundError:
            continue
    return out


def _parse(line: bytes) -> Record | None:
    shard, sep, payload = line.partition(b" ")
    if not sep or not shard.isdigit() or not payload.startswith(b"{") or not payload.endswith(b"}"):
        return None
    return int(shard), payload
