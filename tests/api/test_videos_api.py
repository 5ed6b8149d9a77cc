"""Video uploads over real HTTP: probing, rejections that leave nothing behind, ownership."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import ClientSession
from aiohttp.test_utils import TestServer

from shoplink.config import Settings

from support.api import AccountFactory, Api, ServerFactory
from support.hostile_media import mjpg_avi
from support.video_data import GeneratedVideo, form, make_video, media_files, upload
from support.web_media import make_webm


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> GeneratedVideo:
    return make_video(tmp_path_factory.mktemp("clips") / "clip.mp4")


async def test_upload_probes_and_lists(make_account: AccountFactory, clip: GeneratedVideo, settings: Settings) -> None:
    creator = await make_account("creator")
    reply = await upload(creator, clip, title="My clip")
    assert reply.status == 201, reply.body
    video = reply.body
    assert video["title"] == "My clip" and video["original_filename"] == "clip.mp4"
    assert video["fps"] == pytest.approx(25.0) and video["frame_count"] == 100
    assert video["duration_s"] == pytest.approx(4.0)
    assert (video["width"], video["height"]) == (320, 240)
    assert video["codec"] in ("FMP4", "mp4v") and video["size_bytes"] == clip.path.stat().st_size
    # MPEG-4 Part 2: accepted, but flagged as unplayable in browsers, with what to do instead.
    assert video["playable"] is False
    assert "MPEG-4 Part 2" in video["playback_warning"] and "H.264" in video["playback_warning"]
    assert video["scene_cuts"] is None
    stored = [p for p in media_files(settings.media_dir) if ".incoming" not in p.parts]
    assert len(stored) == 1 and stored[0].read_bytes() == clip.path.read_bytes()

    listed = await creator.get("/api/v1/videos")
    assert [v["id"] for v in listed.body["items"]] == [video["id"]]
    renamed = await creator.patch(f"/api/v1/videos/{video['id']}", {"title": " Renamed "})
    assert renamed.status == 200 and renamed.body["title"] == "Renamed"
    assert (await creator.get(f"/api/v1/videos/{video['id']}")).body["title"] == "Renamed"


async def test_title_defaults_to_file_name(make_account: AccountFactory, clip: GeneratedVideo) -> None:
    creator = await make_account("creator")
    reply = await upload(creator, clip, filename="../../etc/holiday.mp4")
    assert reply.status == 201, reply.body
    assert reply.body["title"] == "holiday.mp4" == reply.body["original_filename"]


async def test_scene_cuts_endpoint_computes_once(make_account: AccountFactory, clip: GeneratedVideo) -> None:
    creator = await make_account("creator")
    video = (await upload(creator, clip)).body
    reply = await creator.get(f"/api/v1/videos/{video['id']}/scenes")
    assert reply.status == 200, reply.body
    assert len(reply.body["cuts"]) == 2
    for got, want in zip(reply.body["cuts"], clip.cut_seconds, strict=True):
        assert abs(got - want) <= 1 / clip.fps + 1e-9
    again = await creator.get(f"/api/v1/videos/{video['id']}")
    assert again.body["scene_cuts"] == reply.body["cuts"]


async def test_another_creators_video_is_not_found(make_account: AccountFactory, clip: GeneratedVideo) -> None:
    owner, other = await make_account("creator"), await make_account("creator")
    video_id = (await upload(owner, clip)).body["id"]
    for method, path, body in [("GET", f"/api/v1/videos/{video_id}", None),
                               ("PATCH", f"/api/v1/videos/{video_id}", {"title": "mine"}),
                               ("DELETE", f"/api/v1/videos/{video_id}", None),
                               ("GET", f"/api/v1/videos/{video_id}/scenes", None),
                               ("GET", f"/api/v1/videos/{video_id}/anchors", None),
                               ("POST", f"/api/v1/videos/{video_id}/anchors",
                                {"product_id": 1, "start_s": 0, "end_s": 1})]:
        reply = await other.request(method, path, json=body)
        assert reply.status == 404, (method, path, reply.body)
    assert (await other.get("/api/v1/videos")).body["items"] == []
    assert (await owner.get(f"/api/v1/videos/{video_id}")).status == 200


async def test_roles(make_account: AccountFactory, clip: GeneratedVideo, anon: Api) -> None:
    analyst = await make_account("analyst")
    reply = await upload(analyst, clip)
    assert reply.status == 403 and reply.error_code == "role_required"
    assert (await upload(anon, clip)).status == 401


@pytest.mark.parametrize(("case", "code"), [("empty", "empty_file"), ("text", "not_a_video"),
                                           ("truncated", "truncated_video"), ("garbage", "not_a_video"),
                                           ("undecodable", "undecodable_video")])
async def test_undecodable_uploads_are_rejected_and_leave_nothing(
        make_account: AccountFactory, clip: GeneratedVideo, settings: Settings, case: str, code: str) -> None:
    creator = await make_account("creator")
    data = {"empty": b"",
            "text": b"just some notes, definitely not a video\n" * 200,
            "truncated": clip.path.read_bytes()[:4000],
            "garbage": bytes(range(256)) * 400,
            "undecodable": mjpg_avi([b"\xff\xd8 not a jpeg"] * 3, 64, 48)}[case]  # a sound container
    reply = await upload(creator, data, filename="movie.mp4")
    assert reply.status == 422, reply.body
    assert reply.error_code == code
    assert media_files(settings.media_dir) == []
    assert (await creator.get("/api/v1/videos")).body["items"] == []


async def test_missing_file_field_and_wrong_type(make_account: AccountFactory) -> None:
    creator = await make_account("creator")
    body = aiohttp.FormData(default_to_multipart=True)
    body.add_field("title", "no file")
    reply = await creator.post("/api/v1/videos", data=body)
    assert reply.status == 422 and reply.body["error"]["details"][0]["field"] == "file"
    reply = await creator.post("/api/v1/videos", data=b"raw", headers={"Content-Type": "video/mp4"})
    assert reply.status == 415


async def test_upload_over_the_limit_is_rejected_early(
        start_server: ServerFactory, make_account: AccountFactory, clip: GeneratedVideo, settings: Settings,
        http: ClientSession) -> None:
    small: TestServer = await start_server(max_upload_bytes=20_000)
    creator = await make_account("creator")
    api = Api(http, str(small.make_url("")), creator.token)
    data = clip.path.read_bytes()
    assert len(data) > 20_000 + 64 * 1024
    reply = await upload(api, data)  # Content-Length known: refused before reading the body
    assert reply.status == 413 and reply.error_code == "upload_too_large"
    assert media_files(settings.media_dir) == []


async def test_chunked_upload_over_the_limit_stops_while_streaming(
        start_server: ServerFactory, make_account: AccountFactory, clip: GeneratedVideo, settings: Settings,
        http: ClientSession) -> None:
    small: TestServer = await start_server(max_upload_bytes=20_000)
    creator = await make_account("creator")
    writer = form(clip.path.read_bytes())()  # the multipart body, sent without Content-Length
    chunks: list[bytes] = []

    class Sink:
        async def write(self, data: bytes) -> None:
            chunks.append(bytes(data))

    await writer.write(Sink())  # type: ignore[arg-type]
    raw = b"".join(chunks)

    async def stream() -> AsyncIterator[bytes]:
        for i in range(0, len(raw), 8192):
            yield raw[i:i + 8192]

    async with http.post(small.make_url("/api/v1/videos"), data=stream(),
                         headers={"Authorization": f"Bearer {creator.token}",
                                  "Content-Type": writer.headers["Content-Type"]}) as resp:
        assert resp.status == 413
        assert (await resp.json())["error"]["code"] == "upload_too_large"
    assert media_files(settings.media_dir) == []


async def test_server_paths_only_when_allowed(
        start_server: ServerFactory, make_account: AccountFactory, clip: GeneratedVideo, http: ClientSession,
        tmp_path: Path) -> None:
    creator = await make_account("creator")
    reply = await creator.post("/api/v1/videos/register", {"path": str(clip.path)})
    assert reply.status == 403 and reply.error_code == "server_paths_disabled"
    allowed: TestServer = await start_server(allow_server_paths=True)
    api = Api(http, str(allowed.make_url("")), creator.token)
    reply = await api.post("/api/v1/videos/register", {"path": str(clip.path), "title": "On disk"})
    assert reply.status == 201, reply.body
    assert reply.body["source"] == "server_path" and reply.body["frame_count"] == 100
    assert (await api.post("/api/v1/videos/register", {"path": "relative.mp4"})).status == 422
    assert (await api.post("/api/v1/videos/register", {"path": str(tmp_path / "nope.mp4")})).status == 422
    # the upload operation takes uploads only (one content type per operation, for generated clients)
    moved = await api.post("/api/v1/videos", {"path": str(clip.path)})
    assert moved.status == 415 and "/api/v1/videos/register" in moved.body["error"]["message"]
    # Deleting a registered video never removes the server's file.
    assert (await api.delete(f"/api/v1/videos/{reply.body['id']}")).status == 204
    assert clip.path.exists()


async def test_delete_removes_the_upload(
        make_account: AccountFactory, clip: GeneratedVideo, settings: Settings) -> None:
    creator = await make_account("creator")
    video_id = (await upload(creator, clip)).body["id"]
    assert len(media_files(settings.media_dir / "videos")) == 1
    assert (await creator.delete(f"/api/v1/videos/{video_id}")).status == 204
    assert media_files(settings.media_dir / "videos") == []
    assert (await creator.get(f"/api/v1/videos/{video_id}")).status == 404
    assert (await creator.delete(f"/api/v1/videos/{video_id}")).status == 404


async def test_a_webm_upload_is_playable(make_account: AccountFactory, tmp_path: Path) -> None:
    creator = await make_account("creator")
    webm = make_webm(tmp_path / "ok.webm")
    reply = await upload(creator, webm.read_bytes(), filename="ok.webm")
    assert reply.status == 201, reply.body
    assert reply.body["codec"] == "VP80" and reply.body["playable"] is True and reply.body["playback_warning"] is None
    got = await creator.get(f"/api/v1/videos/{reply.body['id']}")
    assert got.body["playable"] is True
