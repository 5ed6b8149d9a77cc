"""HTTP: upload (multipart, streamed) or register videos, list, read, rename, delete, scene cuts."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import BodyPartReader, web
from aiohttp.http_exceptions import HttpProcessingError

from shoplink.errors import (
    BadRequest,
    NotFound,
    PayloadTooLarge,
    UnsupportedMediaType,
    ValidationFailed,
    field_error,
)
from shoplink.http import json_response, page, page_params, path_id, principal
from shoplink.keys import SETTINGS, VIDEOS
from shoplink.validation import read_json
from shoplink.videos.service import Incoming
from shoplink.videos.thumbnails import NAME_PATTERN

routes = web.RouteTableDef()

CHUNK = 256 * 1024
MULTIPART_OVERHEAD = 64 * 1024  # boundaries, part headers, a title field
MAX_TITLE_BYTES = 4096
THUMBNAIL_CACHE_CONTROL = "public, max-age=31536000, immutable"  # names are content hashes


async def _chunks(part: BodyPartReader) -> AsyncIterator[bytes]:
    while True:
        chunk = await part.read_chunk(CHUNK)
        if not chunk:
            return
        yield chunk


async def _small_text(part: BodyPartReader, field: str) -> str:
    data = bytearray()
    async for chunk in _chunks(part):
        data.extend(chunk)
        if len(data) > MAX_TITLE_BYTES:
            raise field_error(field, f"must be at most {MAX_TITLE_BYTES} bytes")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise field_error(field, "must be UTF-8 text") from None


@routes.post("/api/v1/videos/register")
async def register_video(request: web.Request) -> web.Response:
    """JSON {path, title}: a file already on the server (only with SHOPLINK_ALLOW_SERVER_PATHS)."""
    service = request.app[VIDEOS]
    who = principal(request)
    service.require_publisher(who)
    body = await read_json(request, "video_register", request.app[SETTINGS].max_body_bytes)
    video = await service.register_path(who, body["path"], body.get("title"))
    return json_response(video.to_json(), status=201)


@routes.post("/api/v1/videos")
async def create_video(request: web.Request) -> web.Response:
    """multipart/form-data with `file` (and optional `title`), streamed to disk and probed."""
    service = request.app[VIDEOS]
    who = principal(request)
    service.require_publisher(who)
    if request.content_type == "application/json":
        raise UnsupportedMediaType("upload the video as multipart/form-data; a file already on the server "
                                   "is registered with POST /api/v1/videos/register")
    if request.content_type != "multipart/form-data":
        raise UnsupportedMediaType("upload the video as multipart/form-data with a `file` field")
    length = request.content_length
    if length is not None and length > service.max_upload_bytes + MULTIPART_OVERHEAD:
        raise PayloadTooLarge(f"the video is larger than {service.max_upload_bytes} bytes",
                              code="upload_too_large")
    incoming: Incoming | None = None
    title: str | None = None
    try:
        try:
            reader = await request.multipart()
        except (AssertionError, ValueError) as exc:
            raise BadRequest(f"malformed multipart body: {exc}", code="malformed_multipart") from None
        while True:
            try:
                part = await reader.next()
            except (HttpProcessingError, ValueError) as exc:  # e.g. a control character in a part header
                raise BadRequest(f"malformed multipart body: {exc.__class__.__name__}",
                                 code="malformed_multipart") from None
            if part is None:
                break
            if not isinstance(part, BodyPartReader):
                raise BadRequest("nested multipart is not supported", code="malformed_multipart")
            if part.name == "file" and incoming is None:
                incoming = await service.receive(_chunks(part), part.filename)
            elif part.name == "title" and title is None:
                title = await _small_text(part, "title")
            else:
                raise field_error(part.name or "(part)", "unexpected form field (expected file, title)")
        if incoming is None:
            raise ValidationFailed("file: is required", details=[
                {"field": "file", "message": "is required", "code": "required"}])
        if title is not None and len(title.strip()) > 300:
            raise field_error("title", "must be at most 300 characters")
        video = await service.create_from_upload(who, incoming, title)
    except BaseException:
        service.discard(incoming)
        raise
    return json_response(video.to_json(), status=201)


@routes.get("/api/v1/videos")
async def list_videos(request: web.Request) -> web.Response:
    limit, after = page_params(request)
    videos = await request.app[VIDEOS].list_videos(principal(request), limit, after)
    return json_response(page([v.to_json() for v in videos], limit))


@routes.get("/api/v1/videos/{video_id}")
async def get_video(request: web.Request) -> web.Response:
    video = await request.app[VIDEOS].get(principal(request), path_id(request, "video_id"))
    return json_response(video.to_json())


@routes.patch("/api/v1/videos/{video_id}")
async def rename_video(request: web.Request) -> web.Response:
    body = await read_json(request, "video_update", request.app[SETTINGS].max_body_bytes)
    video = await request.app[VIDEOS].rename(principal(request), path_id(request, "video_id"),
                                             body["title"])
    return json_response(video.to_json())


@routes.delete("/api/v1/videos/{video_id}")
async def delete_video(request: web.Request) -> web.Response:
    """Deletes the video and archives its anchors (their clicks keep their history)."""
    await request.app[VIDEOS].delete(principal(request), path_id(request, "video_id"))
    return web.Response(status=204)


@routes.get("/api/v1/videos/{video_id}/scenes")
async def scene_cuts(request: web.Request) -> web.Response:
    service = request.app[VIDEOS]
    video = await service.get(principal(request), path_id(request, "video_id"))
    cuts = await service.scene_cuts(video)
    return json_response({"video_id": video.id, "duration_s": video.duration_s, "fps": video.fps,
                          "cuts": cuts})


@routes.get("/media/thumbnails/{name}")
async def thumbnail(request: web.Request) -> web.StreamResponse:
    """Public: an anchor thumbnail (content-addressed JPEG, cacheable forever)."""
    name = request.match_info["name"]
    if not NAME_PATTERN.match(name):
        raise NotFound("thumbnail not found")
    path = request.app[VIDEOS].store.thumbnail_path(name)
    if not path.is_file():
        raise NotFound("thumbnail not found")
    return web.FileResponse(path, headers={"Cache-Control": THUMBNAIL_CACHE_CONTROL,
                                           "Content-Type": "image/jpeg"})


def setup_routes(app: web.Application) -> None:
    app.add_routes(routes)
