"""The local spool: an append-only file of click events that could not be written to Redis.

One file per process, `clicks-<pid>-<random>.spool` in SHOPLINK_SPOOL_DIR, held under an
exclusive flock(2) for the life of the process. Each line is `<shard> <event JSON>\n` (orjson
never emits a raw newline). A file whose lock can be taken belongs to no running process (it
was left by a crash, or by a shutdown while Redis was down): the next process that starts, or
a running one within ORPHAN_SCAN_S (delivery/writer.py), claims it and replays it. A line cut
short by a crash is skipped.

Durability: each spooled batch goes to the kernel in one write(2) before the writer moves on,
so it survives the process being killed; the file is fsynced at most every
SHOPLINK_SPOOL_FSYNC_MS (0: after every batch) and at shutdown, so a power loss can cost at
most that window of spooled events.
"""

from __future__ import annotations

import fcntl
import os
import secrets
from collections.abc import Iterable
from pathlib import Path

SUFFIX = ".spool"
READ_CHUNK = 1 << 20

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


class SpoolFile:
    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self.fd = fd
        self.size = os.fstat(fd).st_size  # bytes in the file
        self.replayed_to = 0  # bytes already replayed (the start of the next line to send)
        self.dirty = False  # written since the last fsync
        self.skipped = 0  # malformed lines dropped while reading

    @classmethod
    def create(cls, directory: Path) -> SpoolFile:
        """A new, locked file for this process (locked before it gets the name others scan)."""
        directory.mkdir(parents=True, exist_ok=True)
        name = f"clicks-{os.getpid()}-{secrets.token_hex(4)}"
        temp = directory / (name + ".new")
        fd = os.open(temp, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_EXCL, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        path = directory / (name + SUFFIX)
        os.rename(temp, path)
        return cls(path, fd)

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
            found.append(cls(path, fd))
        return found

    @property
    def pending(self) -> bool:
        return self.replayed_to < self.size

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

    def reset(self) -> None:
        """Everything was replayed: empty the file (our own file only)."""
        os.ftruncate(self.fd, 0)
        self.size = self.replayed_to = 0

    def fsync(self) -> None:
        os.fsync(self.fd)
        self.dirty = False

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)
        self.close()

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


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
