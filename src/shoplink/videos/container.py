"""What a video file says about itself, read from its container before any frame is decoded.

A decoder allocates what the file asks for: a 3 MB MJPG AVI of 16000x16000 frames made OpenCV
take 1.4 GB, and a 6 KB AVI claiming 2^31-1 frames passed for a 24-day video. So the size of the
frames, the number of frames and the duration are read here, from the container's headers only
(a few small reads, no codec involved), and checked (`probe.check_limits`) before OpenCV opens
the file. Three container families are accepted, recognised by their first bytes (never by the
file name):

- ISO base media (MP4, MOV, M4V; also fragmented MP4): the first video `trak`'s `tkhd` and sample
  description (`stsd`) sizes, `mdhd` duration, `stsz` sample count; fragments (`moof`/`trun`) are
  summed when the samples are there;
- AVI (RIFF, with OpenDML's `dmlh`): `avih`, the video stream's `strh` and `strf`;
- Matroska and WebM (EBML): `Info`'s duration, the video track's pixel size, and the video blocks
  of the clusters (counted from their headers; MediaRecorder files declare neither count nor
  duration).

A box, chunk or element that claims to run past the end of the file is a truncated file.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

_CHUNK = 64 * 1024


class ContainerError(ValueError):
    """The file is not a video container we accept, or its headers are unusable. `code` names
    the problem for the API (`not_a_video`, `truncated_video`, `no_video_track`,
    `implausible_video`, `bad_container`)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def _truncated(what: str) -> ContainerError:
    return ContainerError("truncated_video", f"the file ends inside its {what} (an incomplete upload?)")


def _implausible(frames: int, size: int) -> ContainerError:
    return ContainerError("implausible_video", f"the container claims {frames:,} frames, more than a "
                                               f"file of {size:,} bytes can hold")


@dataclass(frozen=True)
class ContainerInfo:
    """The video track as its container declares it. `frame_count` and `duration_s` may be 0
    when the container does not say (then OpenCV's reading is used, within the limits)."""

    container: str  # mp4 | avi | matroska
    width: int
    height: int
    frame_count: int
    duration_s: float


class _File:
    """Bounded reads at offsets of one open file."""

    def __init__(self, handle: BinaryIO, size: int) -> None:
        self.handle = handle
        self.size = size

    def read(self, offset: int, n: int, what: str) -> bytes:
        if offset < 0 or offset + n > self.size:
            raise _truncated(what)
        self.handle.seek(offset)
        data = self.handle.read(n)
        if len(data) != n:
            raise _truncated(what)
        return data

    def read_upto(self, offset: int, n: int) -> bytes:
        self.handle.seek(offset)
        return self.handle.read(max(0, min(n, self.size - offset)))


def read(handle: BinaryIO, size: int) -> ContainerInfo:
    """The container's view of the video in `handle` (a file of `size` bytes)."""
    f = _File(handle, size)
    head = f.read_upto(0, 16)
    if len(head) >= 12 and head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return _avi(f)
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return _matroska(f)
    if len(head) >= 8 and head[4:8] in _MP4_FIRST_BOXES:
        return _mp4(f)
    raise ContainerError("not_a_video", "the file is not a video: expected MP4/MOV, WebM/Matroska or AVI")


# ---- ISO base media (MP4, MOV) ---------------------------------------------------------------

_MP4_FIRST_BOXES = frozenset({b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide", b"pnot", b"uuid"})
_MP4_CONTAINERS = frozenset({b"moov", b"trak", b"mdia", b"minf", b"stbl", b"mvex", b"moof", b"traf", b"edts"})


@dataclass
class _Box:
    kind: bytes
    start: int  # of the payload
    end: int


def _boxes(f: _File, start: int, end: int, what: str) -> Iterator[_Box]:
    pos = start
    while pos + 8 <= end:
        size, kind = struct.unpack(">I4s", f.read(pos, 8, what))
        header = 8
        if size == 1:
            size = struct.unpack(">Q", f.read(pos + 8, 8, what))[0]
            header = 16
        elif size == 0:  # to the end of the enclosing box (the file, at the top level)
            size = end - pos
        if size < header:
            raise ContainerError("bad_container", f"a {kind!r} box of {size} bytes in the {what}")
        if pos + size > end:
            raise _truncated(what if end < f.size else f"{kind.decode('latin-1')!r} box")
        yield _Box(kind, pos + header, pos + size)
        pos += size


def _child(f: _File, box: _Box, kind: bytes) -> _Box | None:
    return next((b for b in _boxes(f, box.start, box.end, box.kind.decode("latin-1")) if b.kind == kind), None)


def _full_box(f: _File, box: _Box, n: int) -> tuple[int, bytes]:
    """(version, the n bytes after version and flags)."""
    data = f.read(box.start, 4 + n, box.kind.decode("latin-1"))
    return data[0], data[4:]


def _mp4(f: _File) -> ContainerInfo:
    moov: _Box | None = None
    moofs: list[_Box] = []
    for box in _boxes(f, 0, f.size, "file"):
        if box.kind == b"moov":
            moov = box
        elif box.kind == b"moof":
            moofs.append(box)
    if moov is None:
        raise ContainerError("truncated_video", "the MP4/MOV has no movie header (moov): an incomplete upload?")
    video = _mp4_video_track(f, moov)
    if video is None:
        raise ContainerError("no_video_track", "the file has no video track")
    track_id, width, height, timescale, duration, samples, stbl = video
    mvex = _child(f, moov, b"mvex")
    if samples == 0 and mvex is not None:  # fragmented: the samples are in the fragments
        default_duration = _trex_default_duration(f, mvex, track_id)
        samples, ticks = _fragments(f, moofs, track_id, default_duration)
        duration = duration or ticks
    elif stbl is not None:
        _check_chunk_offsets(f, stbl)
    if samples > f.size:  # every sample takes at least a byte of the file
        raise _implausible(samples, f.size)
    duration_s = duration / timescale if timescale else 0.0
    return ContainerInfo("mp4", width, height, samples, duration_s)


def _mp4_video_track(f: _File, moov: _Box) -> tuple[int, int, int, int, int, int, _Box | None] | None:
    """(track id, width, height, timescale, duration, sample count, stbl) of the first video track."""
    for trak in _boxes(f, moov.start, moov.end, "movie header"):
        if trak.kind != b"trak":
            continue
        mdia = _child(f, trak, b"mdia")
        hdlr = _child(f, mdia, b"hdlr") if mdia else None
        if mdia is None or hdlr is None or f.read(hdlr.start + 8, 4, "handler") != b"vide":
            continue
        track_id, width, height = 0, 0, 0
        tkhd = _child(f, trak, b"tkhd")
        if tkhd is not None:
            version, _ = _full_box(f, tkhd, 0)
            id_at = tkhd.start + (20 if version == 1 else 12)
            track_id = struct.unpack(">I", f.read(id_at, 4, "track header"))[0]
            w, h = struct.unpack(">II", f.read(tkhd.end - 8, 8, "track header"))
            width, height = w >> 16, h >> 16  # 16.16 fixed point
        timescale, duration = 0, 0
        mdhd = _child(f, mdia, b"mdhd")
        if mdhd is not None:
            version, data = _full_box(f, mdhd, 28)
            timescale, duration = (struct.unpack(">IQ", data[16:28]) if version == 1
                                   else struct.unpack(">II", data[8:16]))
        samples, stbl = 0, None
        minf = _child(f, mdia, b"minf")
        stbl = _child(f, minf, b"stbl") if minf else None
        if stbl is not None:
            stsd = _child(f, stbl, b"stsd")
            if stsd is not None and stsd.end - stsd.start >= 8 + 36:
                # the first sample description: size, format, 6 reserved, data ref index, 16 bytes, w, h
                coded_w, coded_h = struct.unpack(">HH", f.read(stsd.start + 8 + 32, 4, "sample description"))
                width, height = max(width, coded_w), max(height, coded_h)
            stsz = _child(f, stbl, b"stsz")
            if stsz is not None:
                _, data = _full_box(f, stsz, 8)
                samples = struct.unpack(">II", data)[1]
            elif (stz2 := _child(f, stbl, b"stz2")) is not None:
                _, data = _full_box(f, stz2, 8)
                samples = struct.unpack(">I", data[4:8])[0]
        return track_id, width, height, timescale, duration, samples, stbl
    return None


def _check_chunk_offsets(f: _File, stbl: _Box) -> None:
    """Every chunk of samples starts inside the file (an `mdat` sized to the end of the file
    hides a cut otherwise)."""
    for kind, width in ((b"stco", 4), (b"co64", 8)):
        box = _child(f, stbl, kind)
        if box is None:
            continue
        _, data = _full_box(f, box, 4)
        count = struct.unpack(">I", data)[0]
        if box.start + 8 + count * width > box.end:
            raise _truncated("chunk offset table")
        fmt = ">%d" + ("I" if width == 4 else "Q")
        pos, left = box.start + 8, count
        while left:
            n = min(left, _CHUNK // width)
            offsets = struct.unpack(fmt % n, f.read(pos, n * width, "chunk offset table"))
            if max(offsets) >= f.size:
                raise _truncated("media data")
            pos, left = pos + n * width, left - n


def _trex_default_duration(f: _File, mvex: _Box, track_id: int) -> int:
    for trex in _boxes(f, mvex.start, mvex.end, "movie extends"):
        if trex.kind == b"trex":
            _, data = _full_box(f, trex, 12)
            tid, _, default_duration = struct.unpack(">III", data)
            if tid == track_id:
                return int(default_duration)
    return 0


def _fragments(f: _File, moofs: list[_Box], track_id: int, trex_duration: int) -> tuple[int, int]:
    """(samples, ticks) of the video track summed over the movie fragments."""
    samples = ticks = 0
    for moof in moofs:
        for traf in _boxes(f, moof.start, moof.end, "movie fragment"):
            if traf.kind != b"traf":
                continue
            tfhd = _child(f, traf, b"tfhd")
            if tfhd is None:
                continue
            head = f.read(tfhd.start, 8, "fragment header")
            flags = int.from_bytes(head[1:4], "big")
            if struct.unpack(">I", head[4:8])[0] != track_id:
                continue
            default_duration = trex_duration
            if flags & 0x08:  # default-sample-duration-present, after the optional fields before it
                at = tfhd.start + 8 + (8 if flags & 0x01 else 0) + (4 if flags & 0x02 else 0)
                default_duration = struct.unpack(">I", f.read(at, 4, "fragment header"))[0]
            for trun in _boxes(f, traf.start, traf.end, "track fragment"):
                if trun.kind != b"trun":
                    continue
                head = f.read(trun.start, 8, "track run")
                tflags = int.from_bytes(head[1:4], "big")
                count = struct.unpack(">I", head[4:8])[0]
                samples += count
                at = trun.start + 8 + (4 if tflags & 0x01 else 0) + (4 if tflags & 0x04 else 0)
                entry = 4 * bin(tflags & 0xF00).count("1")
                if count * entry > trun.end - at:
                    raise _truncated("track run")
                if tflags & 0x100:  # per-sample durations: the first field of each entry
                    table = f.read(at, count * entry, "track run")
                    ticks += sum(struct.unpack_from(">I", table, index * entry)[0] for index in range(count))
                else:
                    ticks += count * default_duration
    return samples, ticks


# ---- AVI ----------------------------------------------------------------------------------------

def _riff_chunks(f: _File, start: int, end: int, what: str) -> Iterator[tuple[bytes, int, int, bytes]]:
    """(id, payload start, payload end, list type or b"") of the chunks in [start, end)."""
    pos = start
    while pos + 8 <= end:
        cid, size = struct.unpack("<4sI", f.read(pos, 8, what))
        payload = pos + 8
        if payload + size > end:
            raise _truncated(what if end < f.size else f"{cid.decode('latin-1')!r} chunk")
        kind = f.read(payload, 4, what) if cid in (b"LIST", b"RIFF") and size >= 4 else b""
        yield cid, payload, payload + size, kind
        pos = payload + size + (size & 1)


def _avi(f: _File) -> ContainerInfo:
    riff_size = struct.unpack("<I", f.read(4, 4, "file header"))[0]
    if 8 + riff_size > f.size:
        raise _truncated("AVI data")
    width = height = total = length = 0
    rate = scale = 0
    usec_per_frame = 0
    movi = False
    for cid, start, end, kind in _riff_chunks(f, 12, 8 + riff_size, "AVI file"):
        if cid == b"LIST" and kind == b"hdrl":
            for sub, s_start, s_end, s_kind in _riff_chunks(f, start + 4, end, "AVI header"):
                if sub == b"avih" and s_end - s_start >= 40:
                    fields = struct.unpack("<10I", f.read(s_start, 40, "AVI header"))
                    usec_per_frame, total = fields[0], fields[4]
                    width, height = max(width, fields[8]), max(height, fields[9])
                elif sub == b"LIST" and s_kind == b"strl" and not length:
                    stream = _avi_video_stream(f, s_start + 4, s_end)
                    if stream is not None:
                        w, h, scale, rate, length = stream
                        width, height = max(width, w), max(height, h)
                elif sub == b"LIST" and s_kind == b"odml":
                    for odml, o_start, o_end, _ in _riff_chunks(f, s_start + 4, s_end, "AVI header"):
                        if odml == b"dmlh" and o_end - o_start >= 4:
                            total = max(total, struct.unpack("<I", f.read(o_start, 4, "AVI header"))[0])
        elif cid == b"LIST" and kind == b"movi":
            movi = True
    if not length and not width:
        raise ContainerError("no_video_track", "the AVI file has no video stream")
    if not movi:
        raise ContainerError("truncated_video", "the AVI file has no frames (movi list): an incomplete upload?")
    frames = max(total, length)
    if frames * 8 > f.size:  # every frame is a chunk of the movi list: 8 bytes at least
        raise _implausible(frames, f.size)
    duration_s = frames * scale / rate if rate and scale else frames * usec_per_frame / 1e6
    return ContainerInfo("avi", width, height, frames, duration_s)


def _avi_video_stream(f: _File, start: int, end: int) -> tuple[int, int, int, int, int] | None:
    """(width, height, scale, rate, length) of a `vids` stream list."""
    header = fmt = None
    for cid, c_start, c_end, _ in _riff_chunks(f, start, end, "AVI stream header"):
        if cid == b"strh" and c_end - c_start >= 36:
            header = f.read(c_start, 36, "AVI stream header")
        elif cid == b"strf" and c_end - c_start >= 12:
            fmt = f.read(c_start, 12, "AVI stream format")
    if header is None or header[:4] != b"vids":
        return None
    scale, rate, _start, length = struct.unpack("<IIII", header[20:36])
    width = height = 0
    if fmt is not None:
        _, w, h = struct.unpack("<Iii", fmt)
        width, height = abs(w), abs(h)  # a negative height: rows stored top-down
    return width, height, scale, rate, length


# ---- Matroska / WebM ----------------------------------------------------------------------------

_EBML, _SEGMENT, _INFO, _TRACKS, _CLUSTER = 0x1A45DFA3, 0x18538067, 0x1549A966, 0x1654AE6B, 0x1F43B675
# The children of a segment (SeekHead, Info, Tracks, Cluster, Cues, Tags, Chapters, Attachments):
# an element of unknown size ends where one of them, or a new segment, begins.
_LEVEL_1 = frozenset({0x114D9B74, _INFO, _TRACKS, _CLUSTER, 0x1C53BB6B, 0x1254C367, 0x1043A770, 0x1941A469})
_UNKNOWN = -1


def _vint(f: _File, pos: int, what: str, *, marker: bool) -> tuple[int, int]:
    """(value, length) of the EBML variable-length number at `pos` (an element id keeps its
    length marker); a size of all ones (unknown: live-written files) is _UNKNOWN."""
    first = f.read(pos, 1, what)[0]
    if first == 0:
        raise ContainerError("bad_container", f"an invalid number in the {what}")
    length = 9 - first.bit_length()
    value = int.from_bytes(f.read(pos, length, what), "big")
    if marker:
        return value, length
    value &= (1 << (7 * length)) - 1
    return (_UNKNOWN if value == (1 << (7 * length)) - 1 else value), length


def _elements(f: _File, start: int, end: int, what: str) -> Iterator[tuple[int, int, int]]:
    """(id, payload start, payload end) of the elements in [start, end)."""
    pos = start
    while pos < end:
        eid, id_len = _vint(f, pos, what, marker=True)
        size, size_len = _vint(f, pos + id_len, what, marker=False)
        payload = pos + id_len + size_len
        if size == _UNKNOWN:
            stop = end if eid == _SEGMENT else _unknown_size_end(f, payload, end, what)
        elif payload + size > end:
            raise _truncated(what if end < f.size else "WebM/Matroska data")
        else:
            stop = payload + size
        yield eid, payload, stop
        pos = stop


def _unknown_size_end(f: _File, start: int, end: int, what: str) -> int:
    pos = start
    while pos < end:
        eid, id_len = _vint(f, pos, what, marker=True)
        if eid in _LEVEL_1 or eid in (_SEGMENT, _EBML):
            return pos
        size, size_len = _vint(f, pos + id_len, what, marker=False)
        pos += id_len + size_len + (0 if size == _UNKNOWN else size)
        if pos > end:
            raise _truncated(what)
    return end


def _uint(f: _File, start: int, end: int, what: str) -> int:
    return int.from_bytes(f.read(start, min(8, end - start), what), "big") if end > start else 0


def _matroska(f: _File) -> ContainerInfo:
    eid, header_start, header_end = next(_elements(f, 0, f.size, "EBML header"))
    doctype = b""
    for sub, start, end in _elements(f, header_start, header_end, "EBML header"):
        if sub == 0x4282:
            doctype = f.read(start, min(end - start, 32), "EBML header").rstrip(b"\0")
    if eid != _EBML or doctype not in (b"webm", b"matroska"):
        raise ContainerError("not_a_video", f"an EBML file that is not WebM or Matroska ({doctype!r})")
    segment = next(((s, e) for sub, s, e in _elements(f, header_end, f.size, "file") if sub == _SEGMENT), None)
    if segment is None:
        raise ContainerError("truncated_video", "the WebM/Matroska file has no segment: an incomplete upload?")
    scale, declared = 1_000_000, 0.0
    track = width = height = frame_ns = 0
    frames, first, last = 0, -1, 0
    for sub, start, end in _elements(f, segment[0], segment[1], "segment"):
        if sub == _INFO:
            for item, s, e in _elements(f, start, end, "segment info"):
                if item == 0x2AD7B1:
                    scale = _uint(f, s, e, "segment info") or scale
                elif item == 0x4489 and e - s in (4, 8):
                    declared = struct.unpack(">f" if e - s == 4 else ">d", f.read(s, e - s, "segment info"))[0]
        elif sub == _TRACKS and not track:
            track, width, height, frame_ns = _matroska_video_track(f, start, end)
        elif sub == _CLUSTER and track:
            count, low, high = _cluster_frames(f, start, end, track)
            if count:
                frames += count
                first = low if first < 0 else min(first, low)
                last = max(last, high)
    if not track:
        raise ContainerError("no_video_track", "the file has no video track")
    if declared > 0:  # (NaN is not)
        duration_s = declared * scale / 1e9
    elif frames:  # first to last frame, plus the last one's own duration
        span = (last - first) * scale / 1e9
        duration_s = span + (frame_ns / 1e9 if frame_ns else span / max(1, frames - 1))
    else:
        duration_s = 0.0
    return ContainerInfo("matroska", width, height, frames, duration_s)


def _matroska_video_track(f: _File, start: int, end: int) -> tuple[int, int, int, int]:
    """(track number, pixel width, pixel height, default frame duration in ns) of the first video track."""
    for eid, t_start, t_end in _elements(f, start, end, "tracks"):
        if eid != 0xAE:
            continue
        number = kind = width = height = frame_ns = 0
        for sub, s, e in _elements(f, t_start, t_end, "track entry"):
            if sub == 0xD7:
                number = _uint(f, s, e, "track entry")
            elif sub == 0x83:
                kind = _uint(f, s, e, "track entry")
            elif sub == 0x23E383:
                frame_ns = _uint(f, s, e, "track entry")
            elif sub == 0xE0:
                for v, vs, ve in _elements(f, s, e, "video settings"):
                    if v == 0xB0:
                        width = _uint(f, vs, ve, "video settings")
                    elif v == 0xBA:
                        height = _uint(f, vs, ve, "video settings")
        if kind == 1 and number:
            return number, width, height, frame_ns
    return 0, 0, 0, 0


def _cluster_frames(f: _File, start: int, end: int, track: int) -> tuple[int, int, int]:
    """(frames of `track`, their lowest and highest timestamp) in one cluster, from block headers."""
    base = 0
    count, low, high = 0, 0, 0
    for eid, s, e in _elements(f, start, end, "cluster"):
        if eid == 0xE7:
            base = _uint(f, s, e, "cluster")
            continue
        if eid == 0xA0:  # a block group: its block
            s, e = next(((bs, be) for sub, bs, be in _elements(f, s, e, "block group") if sub == 0xA1), (s, s))
        elif eid != 0xA3:  # not a simple block
            continue
        if e <= s:
            continue
        n, relative = _block(f, s, e, track)
        if n:
            at = base + relative
            low = at if not count else min(low, at)
            high = max(high, at)
            count += n
    return count, low, high


def _block(f: _File, start: int, end: int, track: int) -> tuple[int, int]:
    """(frames in the block when it belongs to `track`, else 0; its timestamp in the cluster)."""
    number, length = _vint(f, start, "block", marker=False)
    if number != track:
        return 0, 0
    head = f.read(start + length, 3, "block")
    relative = struct.unpack(">h", head[:2])[0]
    laced = (head[2] >> 1) & 0x03
    frames = f.read(start + length + 3, 1, "block")[0] + 1 if laced and start + length + 3 < end else 1
    return frames, relative
