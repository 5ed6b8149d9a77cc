"""SQL for videos."""

from __future__ import annotations

import dataclasses

import asyncpg

from shoplink.db import Conn
from shoplink.videos.models import NewVideo, Video

_COLUMNS = """id, owner_id, title, file_path, original_filename, source, size_bytes, duration_s, fps,
              frame_count, width, height, codec, scene_cuts, status, created_at, updated_at"""


def _video(row: asyncpg.Record) -> Video:
    values = {k: row[k] for k in Video.__dataclass_fields__}
    if values["scene_cuts"] is not None:
        values["scene_cuts"] = list(values["scene_cuts"])
    return Video(**values)


async def insert_video(con: Conn, video: NewVideo) -> Video:
    fields = dataclasses.asdict(video)
    names = ", ".join(fields)
    params = ", ".join(f"${i + 1}" for i in range(len(fields)))
    row = await con.fetchrow(
        f"INSERT INTO videos ({names}) VALUES ({params}) RETURNING {_COLUMNS}", *fields.values())
    assert row is not None
    return _video(row)


async def get_video(con: Conn, video_id: int, *, for_update: bool = False,
                    include_deleted: bool = False) -> Video | None:
    lock = " FOR UPDATE" if for_update else ""
    status = "" if include_deleted else " AND status = 'active'"
    row = await con.fetchrow(f"SELECT {_COLUMNS} FROM videos WHERE id = $1{status}{lock}", video_id)
    return _video(row) if row else None


async def list_videos(con: Conn, owner_id: int | None, limit: int, after_id: int) -> list[Video]:
    rows = await con.fetch(
        f"""SELECT {_COLUMNS} FROM videos
             WHERE status = 'active' AND ($1::bigint IS NULL OR owner_id = $1) AND id > $2
             ORDER BY id LIMIT $3""", owner_id, after_id, limit)
    return [_video(r) for r in rows]


async def rename_video(con: Conn, video_id: int, title: str) -> None:
    await con.execute("UPDATE videos SET title = $2, updated_at = now() WHERE id = $1", video_id, title)


async def mark_deleted(con: Conn, video_id: int) -> None:
    await con.execute(
        """UPDATE videos SET status = 'deleted', deleted_at = now(), updated_at = now()
            WHERE id = $1 AND status = 'active'""", video_id)


async def store_scene_cuts(con: Conn, video_id: int, cuts: list[float]) -> None:
    await con.execute(
        """UPDATE videos SET scene_cuts = $2::double precision[], scene_cuts_at = now()
            WHERE id = $1""", video_id, cuts)
