"""The container reader (shoplink.videos.container) on real files of each accepted family and
on hand-made ones: what it reads before anything is decoded, and what it refuses."""

from __future__ import annotations

import io
from pathlib import Path

import cv2
import numpy as np
import pytest

from shoplink.videos import container, probe

from support.hostile_media import Fragment, flat_jpeg, fragmented_mp4, live_webm, mjpg_avi

# (file name, fourcc) that this OpenCV build writes: one file per accepted container family.
WRITTEN = [("clip.mp4", "mp4v"), ("clip.mov", "MJPG"), ("clip.mkv", "MJPG"), ("clip.webm", "VP80"),
           ("clip.avi", "MJPG")]


def _read(data: bytes) -> container.ContainerInfo:
    return container.read(io.BytesIO(data), len(data))


def _write(path: Path, fourcc: str, frames: int = 30, size: tuple[int, int] = (96, 64)) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*fourcc), 25.0, size)
    assert writer.isOpened(), fourcc
    try:
        for n in range(frames):
            writer.write(np.full((size[1], size[0], 3), (n * 8) % 256, np.uint8))
    finally:
        writer.release()
    return path


@pytest.mark.parametrize(("name", "fourcc"), WRITTEN)
def test_real_files_are_read_from_their_headers(tmp_path: Path, name: str, fourcc: str) -> None:
    path = _write(tmp_path / name, fourcc)
    info = _read(path.read_bytes())
    assert (info.width, info.height, info.frame_count) == (96, 64, 30)
    assert info.duration_s == pytest.approx(1.2, abs=0.05)
    probed = probe.probe(path)  # and they are accepted as they were before the limits
    assert (probed.width, probed.height, probed.frame_count) == (96, 64, 30)


@pytest.mark.parametrize(("name", "fourcc"), WRITTEN)
def test_every_cut_of_a_real_file_is_truncated(tmp_path: Path, name: str, fourcc: str) -> None:
    data = _write(tmp_path / name, fourcc).read_bytes()
    for cut in range(64, len(data), max(1, len(data) // 23)):
        with pytest.raises(container.ContainerError) as refused:
            _read(data[:cut])
        assert refused.value.code in ("truncated_video", "not_a_video", "bad_container"), (cut, refused.value)
        if cut >= 512:  # past the first header: the cut is named
            assert refused.value.code == "truncated_video", (cut, refused.value)


def test_a_live_recorded_webm_is_counted_block_by_block() -> None:
    """MediaRecorder's WebM: unknown sizes, no duration, no count, audio blocks in between."""
    info = _read(live_webm(1280, 720, 95, fps=25, audio_blocks=5))
    assert (info.container, info.width, info.height, info.frame_count) == ("matroska", 1280, 720, 95)
    assert info.duration_s == pytest.approx(3.8)
    data = live_webm(1280, 720, 95)
    with pytest.raises(container.ContainerError) as cut:
        _read(data[:-17])  # inside the last block
    assert cut.value.code == "truncated_video"


def test_fragmented_mp4_sums_its_fragments() -> None:
    info = _read(fragmented_mp4(1920, 1080, [Fragment(25), Fragment(25, per_sample_duration=20)]))
    assert (info.width, info.height, info.frame_count) == (1920, 1080, 50)
    assert info.duration_s == pytest.approx(25 * 0.040 + 25 * 0.020)
    with pytest.raises(container.ContainerError) as audio:
        _read(fragmented_mp4(0, 0, [Fragment(10)], handler=b"soun"))
    assert audio.value.code == "no_video_track"


def test_an_avi_declares_its_size_and_count_and_lies_are_caught() -> None:
    bomb = _read(mjpg_avi([flat_jpeg(16000, 16000)], 16000, 16000))
    assert (bomb.width, bomb.height, bomb.frame_count) == (16000, 16000, 1)
    with pytest.raises(probe.ProbeError) as too_large:
        probe.check_limits(bomb, probe.ProbeLimits())
    assert too_large.value.code == "video_frame_too_large" and "256,000,000 pixels" in str(too_large.value)
    with pytest.raises(container.ContainerError) as claims:
        _read(mjpg_avi([flat_jpeg(64, 48)], 64, 48, claimed_frames=2**31 - 1))
    assert claims.value.code == "implausible_video"
    long = _read(mjpg_avi([flat_jpeg(64, 48)], 64, 48, fps=1, claimed_frames=20_000, padding=170_000))
    assert long.duration_s == 20_000
    with pytest.raises(probe.ProbeError) as too_long:
        probe.check_limits(long, probe.ProbeLimits())
    assert too_long.value.code == "video_too_long"


@pytest.mark.parametrize("data", [b"", b"RIFF", b"hello" * 100, b"\x89PNG\r\n\x1a\n" + bytes(100),
                                  b"\x00\x00\x00\x20ftypisom" + bytes(8), b"\x1a\x45\xdf\xa3\x80"])
def test_what_is_not_a_whole_video_is_refused_with_a_code(data: bytes) -> None:
    with pytest.raises(container.ContainerError) as refused:
        _read(data)
    assert refused.value.code in ("not_a_video", "truncated_video", "bad_container")
