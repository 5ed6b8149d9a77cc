"""Hand-made video files for the upload limits: decode bombs, lying headers, odd containers.

Nothing here needs the memory the files ask for: a JPEG of 16000x16000 uniform grey is written
directly in its entropy-coded form (each 8x8 block: DC difference 0, end of block: 6 bits), so a
3 MB file decodes to 256 million pixels. The AVI, WebM and fragmented MP4 writers produce just
the structure the container reader looks at (the WebM and MP4 frames are not decodable).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass

# ---- JPEG --------------------------------------------------------------------------------------

# The standard luminance Huffman tables (ITU T.81, annex K.3): code lengths, then values.
_DC_LENGTHS = bytes([0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0])
_DC_VALUES = bytes(range(12))
_AC_LENGTHS = bytes([0, 2, 1, 3, 3, 2, 4, 3, 5, 5, 4, 4, 0, 0, 1, 0x7D])
_AC_VALUES = bytes.fromhex(
    "01020300041105122131410613516107227114328191a1082342b1c11552d1f02433627282090a161718191a"
    "25262728292a3435363738393a434445464748494a535455565758595a636465666768696a737475767778797a"
    "838485868788898a92939495969798999aa2a3a4a5a6a7a8a9aab2b3b4b5b6b7b8b9bac2c3c4c5c6c7c8c9ca"
    "d2d3d4d5d6d7d8d9dae1e2e3e4e5e6e7e8e9eaf1f2f3f4f5f6f7f8f9fa")


def _segment(marker: int, payload: bytes) -> bytes:
    return bytes([0xFF, marker]) + struct.pack(">H", len(payload) + 2) + payload


def flat_jpeg(width: int, height: int) -> bytes:
    """A valid baseline greyscale JPEG of `width` x `height`, uniform grey, about 6 bits per 8x8 block."""
    out = bytearray(b"\xff\xd8")
    out += _segment(0xDB, b"\x00" + bytes([1]) * 64)
    out += _segment(0xC0, b"\x08" + struct.pack(">HH", height, width) + b"\x01\x01\x11\x00")
    out += _segment(0xC4, b"\x00" + _DC_LENGTHS + _DC_VALUES)
    out += _segment(0xC4, b"\x10" + _AC_LENGTHS + _AC_VALUES)
    out += _segment(0xDA, b"\x01\x01\x00\x00\x3f\x00")
    blocks = ((width + 7) // 8) * ((height + 7) // 8)
    groups, rest = divmod(blocks, 4)
    out += b"\x28\xa2\x8a" * groups  # 001010 four times: 24 bits
    if rest:
        bits = "001010" * rest
        bits += "1" * (-len(bits) % 8)
        out += int(bits, 2).to_bytes(len(bits) // 8, "big")
    out += b"\xff\xd9"
    return bytes(out)


# ---- AVI ---------------------------------------------------------------------------------------

def _chunk(cid: bytes, data: bytes) -> bytes:
    return cid + struct.pack("<I", len(data)) + data + (b"\x00" if len(data) % 2 else b"")


def _list(kind: bytes, body: bytes) -> bytes:
    return b"LIST" + struct.pack("<I", len(body) + 4) + kind + body


def mjpg_avi(frames: Sequence[bytes], width: int, height: int, *, fps: int = 25,
             claimed_frames: int | None = None, padding: int = 0) -> bytes:
    """An MJPG AVI of `frames` (JPEGs) as OpenCV and FFmpeg read it; `claimed_frames`: what its
    headers (avih and strh) say instead of the real count; `padding`: bytes of a JUNK chunk."""
    total = len(frames) if claimed_frames is None else claimed_frames
    avih = struct.pack("<10I", 1_000_000 // fps, 0, 0, 0x10, total, 0, 1, 0, width, height) + bytes(16)
    strh = (b"vids" + b"MJPG" + struct.pack("<IHHIIIIIIII", 0, 0, 0, 0, 1, fps, 0, total, 0, 0xFFFFFFFF, 0)
            + struct.pack("<hhhh", 0, 0, width, height))
    strf = struct.pack("<IiiHH4sIiiII", 40, width, height, 1, 24, b"MJPG", width * height * 3, 0, 0, 0, 0)
    hdrl = _list(b"hdrl", _chunk(b"avih", avih) + _list(b"strl", _chunk(b"strh", strh) + _chunk(b"strf", strf)))
    movi, index, offset = b"", b"", 4
    for frame in frames:
        chunk = _chunk(b"00dc", frame)
        index += b"00dc" + struct.pack("<III", 0x10, offset, len(frame))
        movi += chunk
        offset += len(chunk)
    junk = _chunk(b"JUNK", bytes(padding)) if padding else b""
    body = b"AVI " + hdrl + junk + _list(b"movi", movi) + _chunk(b"idx1", index)
    return b"RIFF" + struct.pack("<I", len(body)) + body


# ---- WebM --------------------------------------------------------------------------------------

_UNKNOWN_SIZE = b"\x01\xff\xff\xff\xff\xff\xff\xff"


def _ebml_size(n: int) -> bytes:
    for length in range(1, 9):
        if n < (1 << (7 * length)) - 1:
            return (n | (1 << (7 * length))).to_bytes(length, "big")
    raise ValueError(n)


def _el(eid: int, payload: bytes) -> bytes:
    return eid.to_bytes((eid.bit_length() + 7) // 8, "big") + _ebml_size(len(payload)) + payload


def _uint(n: int) -> bytes:
    return n.to_bytes(max(1, (n.bit_length() + 7) // 8), "big")


def live_webm(width: int, height: int, frames: int, *, fps: int = 25, frames_per_cluster: int = 10,
              audio_blocks: int = 0) -> bytes:
    """A WebM as a browser's MediaRecorder writes it: segment and clusters of unknown size, no
    duration, no frame count; `frames` video blocks (track 1) and `audio_blocks` audio ones."""
    header = _el(0x1A45DFA3, _el(0x4286, b"\x01") + _el(0x4282, b"webm") + _el(0x4287, b"\x04"))
    info = _el(0x1549A966, _el(0x2AD7B1, _uint(1_000_000)) + _el(0x4D80, b"shoplink-tests"))
    video = _el(0xAE, _el(0xD7, b"\x01") + _el(0x83, b"\x01") + _el(0x86, b"V_VP8")
                + _el(0xE0, _el(0xB0, _uint(width)) + _el(0xBA, _uint(height))))
    audio = _el(0xAE, _el(0xD7, b"\x02") + _el(0x83, b"\x02") + _el(0x86, b"A_OPUS"))
    body = info + _el(0x1654AE6B, video + audio)
    step_ms = 1000 // fps
    for first in range(0, frames, frames_per_cluster):
        blocks = b""
        for n in range(first, min(frames, first + frames_per_cluster)):
            relative = (n - first) * step_ms
            blocks += _el(0xA3, b"\x81" + struct.pack(">hB", relative, 0x80) + b"\x00" * 40)
        for n in range(audio_blocks if first == 0 else 0):
            blocks += _el(0xA3, b"\x82" + struct.pack(">hB", n * 20, 0x80) + b"\x00" * 20)
        body += b"\x1f\x43\xb6\x75" + _UNKNOWN_SIZE + _el(0xE7, _uint(first * step_ms)) + blocks
    return header + b"\x18\x53\x80\x67" + _UNKNOWN_SIZE + body


# ---- fragmented MP4 ------------------------------------------------------------------------------

def _box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def _full(kind: bytes, payload: bytes, flags: int = 0, version: int = 0) -> bytes:
    return _box(kind, bytes([version]) + flags.to_bytes(3, "big") + payload)


@dataclass(frozen=True)
class Fragment:
    samples: int
    per_sample_duration: int | None = None  # in the trun; None: the tfhd default


def fragmented_mp4(width: int, height: int, fragments: Sequence[Fragment], *, timescale: int = 1000,
                   default_duration: int = 40, handler: bytes = b"vide") -> bytes:
    """An fMP4 (moov without samples, then moof + mdat pairs), as MediaRecorder and streaming
    packagers write it; the samples are zero bytes of one byte each. `handler=b"soun"`: an
    audio-only file."""
    mvhd = _full(b"mvhd", struct.pack(">IIII", 0, 0, timescale, 0) + bytes(80))
    tkhd = _full(b"tkhd", struct.pack(">IIII", 0, 0, 1, 0) + bytes(56) + struct.pack(">II", width << 16, height << 16),
                 flags=3)
    mdhd = _full(b"mdhd", struct.pack(">IIIIHH", 0, 0, timescale, 0, 0, 0))
    hdlr = _full(b"hdlr", b"\x00" * 4 + handler + bytes(12) + b"track\x00")
    entry = _box(b"avc1", bytes(6) + struct.pack(">H", 1) + bytes(16) + struct.pack(">HH", width, height) + bytes(50))
    stbl = _box(b"stbl", _full(b"stsd", struct.pack(">I", 1) + entry) + _full(b"stts", bytes(4))
                + _full(b"stsc", bytes(4)) + _full(b"stsz", bytes(8)) + _full(b"stco", bytes(4)))
    trak = _box(b"trak", tkhd + _box(b"mdia", mdhd + hdlr + _box(b"minf", stbl)))
    mvex = _box(b"mvex", _full(b"trex", struct.pack(">IIIII", 1, 1, default_duration, 1, 0)))
    out = _box(b"ftyp", b"iso5" + bytes(4) + b"iso5") + _box(b"moov", mvhd + trak + mvex)
    for number, fragment in enumerate(fragments, 1):
        tfhd = _full(b"tfhd", struct.pack(">I", 1), flags=0x020000)
        if fragment.per_sample_duration is None:
            trun = _full(b"trun", struct.pack(">I", fragment.samples) + struct.pack(">I", 1) * fragment.samples,
                         flags=0x200)
        else:
            entries = struct.pack(">II", fragment.per_sample_duration, 1) * fragment.samples
            trun = _full(b"trun", struct.pack(">I", fragment.samples) + entries, flags=0x300)
        out += _box(b"moof", _full(b"mfhd", struct.pack(">I", number)) + _box(b"traf", tfhd + trun))
        out += _box(b"mdat", bytes(fragment.samples))
    return out


# ---- the battery -------------------------------------------------------------------------------

PNG = bytes.fromhex("89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489") + bytes(64)
ZIP = b"PK\x03\x04" + bytes(26) + b"notes.txt" + b"hello" * 50


@dataclass(frozen=True)
class Hostile:
    """An upload that must be refused: 422 with `code`, and a message containing `says`."""

    name: str  # the file name it is uploaded as
    data: bytes
    code: str
    says: str


def battery(mp4: bytes) -> list[Hostile]:
    """Decode bombs, lying headers, truncated files and things that are not videos; `mp4`: a
    real, small MP4 (moov at the end, as OpenCV writes it) to cut short."""
    small = flat_jpeg(320, 240)
    three = mjpg_avi([small] * 3, 320, 240)
    webm = live_webm(640, 360, 60)
    return [
        Hostile("bomb-16000x16000.avi", mjpg_avi([flat_jpeg(16000, 16000)], 16000, 16000),
                "video_frame_too_large", "16000x16000"),
        Hostile("bomb-8000x8000.avi", mjpg_avi([flat_jpeg(8000, 8000)], 8000, 8000),
                "video_frame_too_large", "8000x8000"),
        Hostile("claims-2147483647-frames.avi", mjpg_avi([small], 320, 240, claimed_frames=2**31 - 1),
                "implausible_video", "2,147,483,647 frames"),
        Hostile("claims-6-hours.avi", mjpg_avi([small], 320, 240, fps=1, claimed_frames=21_600, padding=200_000),
                "video_too_long", "21,600 s"),
        Hostile("lies-about-its-size.avi", mjpg_avi([flat_jpeg(2000, 2000)], 320, 240),
                "inconsistent_video", "2000x2000"),
        Hostile("truncated.avi", three[:len(three) // 2], "truncated_video", "ends inside"),
        Hostile("truncated.mp4", mp4[:len(mp4) // 2], "truncated_video", "ends inside"),
        Hostile("truncated.webm", webm[:len(webm) - 17], "truncated_video", "ends inside"),
        Hostile("notes.mp4", b"just some notes, definitely not a video\n" * 200, "not_a_video", "not a video"),
        Hostile("photo.mov", PNG, "not_a_video", "not a video"),
        Hostile("archive.webm", ZIP, "not_a_video", "not a video"),
        Hostile("song.mp4", fragmented_mp4(0, 0, [Fragment(50)], handler=b"soun"), "no_video_track", "no video"),
    ]
