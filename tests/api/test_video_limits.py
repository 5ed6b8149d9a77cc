"""Uploads are bounded before anything is decoded: decode bombs, files claiming absurd frame
counts or durations, lying headers, truncated files and non-videos named like videos are refused
with a 422 naming the problem, and nothing is kept. (The server's memory during this battery is
measured by bench/upload_bombs.py.)"""

from __future__ import annotations

import pytest
from aiohttp import ClientSession

from shoplink.config import Settings

from support.api import AccountFactory, Api, ServerFactory
from support.hostile_media import Hostile, battery, flat_jpeg, mjpg_avi
from support.video_data import GeneratedVideo, make_video, media_files, upload


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> GeneratedVideo:
    return make_video(tmp_path_factory.mktemp("clips") / "clip.mp4")


@pytest.fixture(scope="module")
def hostile(clip: GeneratedVideo) -> dict[str, Hostile]:
    return {h.name: h for h in battery(clip.path.read_bytes())}


NAMES = [h.name for h in battery(b"\0" * 1000)]


@pytest.mark.parametrize("name", NAMES)
async def test_the_battery_is_refused_with_a_422_naming_the_problem(
        make_account: AccountFactory, settings: Settings, hostile: dict[str, Hostile], name: str) -> None:
    creator = await make_account("creator")
    case = hostile[name]
    reply = await upload(creator, case.data, filename=case.name)
    assert reply.status == 422, reply.body
    assert reply.error_code == case.code, reply.body
    assert case.says in reply.body["error"]["message"], reply.body
    assert reply.body["error"]["details"][0]["field"] == "file"
    assert media_files(settings.media_dir) == []
    assert (await creator.get("/api/v1/videos")).body["items"] == []


async def test_an_mjpg_avi_within_the_limits_is_accepted(make_account: AccountFactory) -> None:
    creator = await make_account("creator")
    reply = await upload(creator, mjpg_avi([flat_jpeg(640, 360)] * 5, 640, 360), filename="small.avi")
    assert reply.status == 201, reply.body
    assert (reply.body["width"], reply.body["height"], reply.body["frame_count"]) == (640, 360, 5)
    assert reply.body["duration_s"] == pytest.approx(0.2)


async def test_the_limits_are_settings(start_server: ServerFactory, make_account: AccountFactory,
                                       clip: GeneratedVideo, http: ClientSession) -> None:
    token = (await make_account("creator")).token
    narrow = await start_server(max_video_pixels=320 * 240 - 1)
    reply = await upload(Api(http, str(narrow.make_url("")), token), clip)
    assert (reply.status, reply.error_code) == (422, "video_frame_too_large")
    assert "76,799 pixels" in reply.body["error"]["message"]
    short = await start_server(max_video_duration_s=3.5)  # the clip lasts 4 s
    reply = await upload(Api(http, str(short.make_url("")), token), clip)
    assert (reply.status, reply.error_code) == (422, "video_too_long")
    assert "lasts 4 s; at most 3.5 s" in reply.body["error"]["message"]
    roomy = await start_server(max_video_pixels=320 * 240, max_video_duration_s=4.0)
    assert (await upload(Api(http, str(roomy.make_url("")), token), clip)).status == 201
