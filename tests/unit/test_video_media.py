"""OpenCV parts on real generated videos: probe, scene cuts, exact-frame thumbnails, QR codes."""

from __future__ import annotations

from pathlib import Path

import cv2
import pytest

from shoplink.anchors.qr import render_png
from shoplink.videos import probe, scenes, thumbnails

from support.video_data import GeneratedVideo, decode_image, frame_number, make_video, read_qr


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> GeneratedVideo:
    return make_video(tmp_path_factory.mktemp("clips") / "cuts.mp4", seconds=6.0, fps=25.0,
                      cut_frames=(31, 77, 118))


@pytest.fixture(scope="module")
def one_shot(tmp_path_factory: pytest.TempPathFactory) -> GeneratedVideo:
    return make_video(tmp_path_factory.mktemp("clips") / "moving.mp4", seconds=4.0, fps=30.0,
                      cut_frames=())


def test_probe_values(clip: GeneratedVideo) -> None:
    info = probe.probe(clip.path)
    assert info.fps == pytest.approx(25.0)
    assert info.frame_count == clip.frame_count == 150
    assert info.duration_s == pytest.approx(6.0)
    assert (info.width, info.height) == (320, 240)
    assert info.codec in ("FMP4", "mp4v")


def test_probe_rejects_garbage(tmp_path: Path, clip: GeneratedVideo) -> None:
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video\n" * 100)
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(clip.path.read_bytes()[:3000])
    for path in (empty, text, truncated):
        with pytest.raises(probe.ProbeError):
            probe.probe(path)


def test_scene_cuts_within_one_frame(clip: GeneratedVideo) -> None:
    found = scenes.detect(clip.path, clip.fps)
    assert len(found.frames) == len(clip.cut_frames), found.frames
    for got, want in zip(found.frames, clip.cut_frames, strict=True):
        assert abs(got - want) <= 1
    for got_s, want_s in zip(found.seconds, clip.cut_seconds, strict=True):
        assert abs(got_s - want_s) <= 1 / clip.fps + 1e-9


def test_no_false_cuts_on_a_moving_object_shot(one_shot: GeneratedVideo) -> None:
    assert scenes.detect(one_shot.path, one_shot.fps).frames == []


def test_cut_at_the_last_frame_is_found(tmp_path: Path) -> None:
    video = make_video(tmp_path / "tail.mp4", seconds=2.0, fps=25.0, cut_frames=(49,))
    assert scenes.detect(video.path, video.fps).frames == [49]


@pytest.mark.parametrize("seconds", [0.0, 0.04, 0.28, 0.44, 1.2399, 1.24, 3.07, 5.99])
def test_thumbnail_is_the_exact_frame(clip: GeneratedVideo, tmp_path: Path, seconds: float) -> None:
    index = thumbnails.frame_at(seconds, clip.fps, clip.frame_count)
    assert index == min(int(seconds * 25 + 1e-6), 149)
    name = thumbnails.cut(clip.path, index, tmp_path)
    assert thumbnails.NAME_PATTERN.match(name)
    assert frame_number(decode_image((tmp_path / name).read_bytes())) == index


def test_thumbnail_names_are_content_addressed(clip: GeneratedVideo, tmp_path: Path) -> None:
    a = thumbnails.cut(clip.path, 10, tmp_path)
    assert thumbnails.cut(clip.path, 10, tmp_path) == a
    assert thumbnails.cut(clip.path, 11, tmp_path) != a


def test_frame_at_clamps_to_the_video() -> None:
    assert thumbnails.frame_at(10.0, 25.0, 100) == 99
    assert thumbnails.frame_at(-1.0, 25.0, 100) == 0


@pytest.mark.parametrize("scale", [2, 8])
def test_qr_decodes_back_to_the_link(scale: int) -> None:
    link = "https://shop.example.com/r/Ab3dEf7h"
    image = decode_image(render_png(link, scale))
    gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    # Quiet zone: four modules of white all round.
    assert gray[: 4 * scale].min() == 255 and gray[:, : 4 * scale].min() == 255
    assert read_qr(image) == link
