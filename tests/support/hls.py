"""A small HLS stream made at test time, without ffmpeg: OpenCV writes VP9 in a plain MP4, which is
cut here into CMAF pieces (an init segment and moof+mdat media segments, ISO/IEC 14496-12) listed
in an HLS media playlist (RFC 8216, EXT-X-MAP). Chromium's Media Source Extensions play VP9 in
fragmented MP4, so hls.js can play it; MPEG-TS would need H.264, which OpenCV cannot write here."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"stbl", b"dinf", b"edts"}
SYNC_FLAGS = 0x02000000  # sample_depends_on = 2 (an independent frame)
NON_SYNC_FLAGS = 0x01010000  # depends on others, sample_is_non_sync_sample


@dataclass
class Box:
    kind: bytes
    payload: bytes  # the box's content after its header (children included)
    children: list[Box] | None = None

    def child(self, kind: bytes) -> Box:
        assert self.children is not None
        return next(c for c in self.children if c.kind == kind)

    def find(self, kind: bytes) -> Box | None:
        if self.kind == kind:
            return self
        for c in self.children or []:
            if (hit := c.find(kind)) is not None:
                return hit
        return None

    def encode(self) -> bytes:
        body = b"".join(c.encode() for c in self.children) if self.children is not None else self.payload
        return struct.pack(">I4s", 8 + len(body), self.kind) + body


def parse(data: bytes) -> list[Box]:
    boxes, pos = [], 0
    while pos + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[pos:pos + 8])
        payload = data[pos + 8:pos + size]
        boxes.append(Box(kind, payload, parse(payload) if kind in CONTAINERS else None))
        pos += size
    return boxes


def box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I4s", 8 + len(payload), kind) + payload


def full(kind: bytes, version: int, flags: int, payload: bytes) -> bytes:
    return box(kind, struct.pack(">I", (version << 24) | flags) + payload)


def _entries(b: Box, fmt: str, skip: int = 8) -> list[tuple[int, ...]]:
    count = struct.unpack(">I", b.payload[4:8])[0]
    size = struct.calcsize(fmt)
    return [struct.unpack(fmt, b.payload[skip + i * size:skip + (i + 1) * size]) for i in range(count)]


def write_vp9_mp4(path: Path, *, seconds: float, fps: int, size: tuple[int, int]) -> None:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"vp09"), fps, size)
    if not writer.isOpened():
        raise RuntimeError("OpenCV cannot write VP9 in MP4 here")
    width, height = size
    try:
        for i in range(round(seconds * fps)):
            frame = np.full((height, width, 3), (40 + (i * 7) % 200, 90, 200 - (i * 5) % 150), np.uint8)
            cv2.putText(frame, f"{i / fps:4.1f}s", (8, height // 2), cv2.FONT_HERSHEY_SIMPLEX, 0.9,
                        (255, 255, 255), 2)
            writer.write(frame)
    finally:
        writer.release()


def make_hls(folder: Path, *, seconds: float = 6.0, fps: int = 10, size: tuple[int, int] = (180, 320),
             segment_s: float = 2.0) -> Path:
    """Write folder/live.m3u8, init.mp4 and seg<N>.m4s; returns the playlist's path."""
    folder.mkdir(parents=True, exist_ok=True)
    source = folder / "source.mp4"
    write_vp9_mp4(source, seconds=seconds, fps=fps, size=size)
    data = source.read_bytes()
    top = parse(data)
    moov = next(b for b in top if b.kind == b"moov")
    trak = moov.child(b"trak")
    stbl = trak.find(b"stbl")
    mdhd = trak.find(b"mdhd")
    tkhd = trak.find(b"tkhd")
    assert stbl and mdhd and tkhd
    version = mdhd.payload[0]
    timescale = struct.unpack(">I", mdhd.payload[12:16] if version == 0 else mdhd.payload[20:24])[0]
    track_id = struct.unpack(">I", tkhd.payload[12:16] if tkhd.payload[0] == 0 else tkhd.payload[20:24])[0]

    stsz = stbl.child(b"stsz")
    uniform, count = struct.unpack(">II", stsz.payload[4:12])
    sizes = [uniform] * count if uniform else [struct.unpack(">I", stsz.payload[12 + 4 * i:16 + 4 * i])[0]
                                              for i in range(count)]
    durations = [d for n, d in _entries(stbl.child(b"stts"), ">II") for _ in range(n)]
    co = stbl.find(b"stco") or stbl.find(b"co64")
    assert co is not None
    chunk_offsets = [e[0] for e in _entries(co, ">I" if co.kind == b"stco" else ">Q")]
    stsc = _entries(stbl.child(b"stsc"), ">III")
    offsets: list[int] = []
    for chunk, offset in enumerate(chunk_offsets, start=1):
        per_chunk = next(spc for first, spc, _ in reversed(stsc) if first <= chunk)
        for _ in range(per_chunk):
            if len(offsets) < count:
                offsets.append(offset)
                offset += sizes[len(offsets) - 1]
    stss = stbl.find(b"stss")
    sync = {e[0] - 1 for e in _entries(stss, ">I")} if stss else set(range(count))

    # The init segment: the same track with empty sample tables, and mvex saying fragments follow.
    empty = [Box(b"stts", struct.pack(">II", 0, 0)), Box(b"stsc", struct.pack(">II", 0, 0)),
             Box(b"stsz", struct.pack(">III", 0, 0, 0)), Box(b"stco", struct.pack(">II", 0, 0))]
    stbl.children = [stbl.child(b"stsd"), *empty]
    trak.children = [c for c in trak.children or [] if c.kind != b"edts"]
    trex = full(b"trex", 0, 0, struct.pack(">IIIII", track_id, 1, 0, 0, 0))
    moov.children = [c for c in moov.children or [] if c.kind in (b"mvhd", b"trak")] + \
        [Box(b"mvex", trex, None)]
    ftyp = next(b for b in top if b.kind == b"ftyp")
    (folder / "init.mp4").write_bytes(ftyp.encode() + moov.encode())

    # Media segments, each starting at a sync sample, about segment_s long.
    starts = [0]
    elapsed = 0
    for i in range(count):
        if i in sync and i != starts[-1] and elapsed >= segment_s * timescale:
            starts.append(i)
            elapsed = 0
        elapsed += durations[i]
    lines = ["#EXTM3U", "#EXT-X-VERSION:7", "#EXT-X-MEDIA-SEQUENCE:0", "#EXT-X-PLAYLIST-TYPE:VOD",
             "#EXT-X-INDEPENDENT-SEGMENTS", '#EXT-X-MAP:URI="init.mp4"']
    longest = 0.0
    decode_time = 0
    for n, (a, b) in enumerate(zip(starts, [*starts[1:], count], strict=True)):
        samples = range(a, b)
        trun_entries = b"".join(struct.pack(">III", durations[i], sizes[i],
                                            SYNC_FLAGS if i in sync else NON_SYNC_FLAGS) for i in samples)
        payload = b"".join(data[offsets[i]:offsets[i] + sizes[i]] for i in samples)

        def moof(data_offset: int, seq: int = n + 1, base: int = decode_time,
                 entries: bytes = trun_entries, k: int = len(samples)) -> bytes:
            traf = (full(b"tfhd", 0, 0x020000, struct.pack(">I", track_id))
                    + full(b"tfdt", 1, 0, struct.pack(">Q", base))
                    + full(b"trun", 0, 0x000701, struct.pack(">Ii", k, data_offset) + entries))
            return box(b"moof", full(b"mfhd", 0, 0, struct.pack(">I", seq)) + box(b"traf", traf))

        head = moof(0)
        (folder / f"seg{n}.m4s").write_bytes(moof(len(head) + 8) + box(b"mdat", payload))
        seconds_here = sum(durations[i] for i in samples) / timescale
        longest = max(longest, seconds_here)
        decode_time += sum(durations[i] for i in samples)
        lines += [f"#EXTINF:{seconds_here:.3f},", f"seg{n}.m4s"]
    lines.insert(2, f"#EXT-X-TARGETDURATION:{int(longest + 0.999)}")
    lines.append("#EXT-X-ENDLIST")
    playlist = folder / "live.m3u8"
    playlist.write_text("\n".join(lines) + "\n")
    source.unlink()
    return playlist
