-- Videos and anchors (video surface): where a video came from, when its scene cuts were computed,
-- and the indexes the creator's views use. Tables themselves are in 0002.

-- 'upload': our file under SHOPLINK_MEDIA_DIR (removed when the video is deleted);
-- 'server_path': registered by path (SHOPLINK_ALLOW_SERVER_PATHS), never removed by us.
ALTER TABLE videos ADD COLUMN source text NOT NULL DEFAULT 'upload'
    CHECK (source IN ('upload', 'server_path'));
ALTER TABLE videos ADD COLUMN scene_cuts_at timestamptz;

ALTER TABLE anchors ADD CONSTRAINT anchors_thumbnail_s_range
    CHECK (thumbnail_s IS NULL OR (thumbnail_s >= 0 AND (end_s IS NULL OR thumbnail_s < end_s)));
ALTER TABLE anchors ADD CONSTRAINT anchors_position_shape
    CHECK (position IS NULL OR jsonb_typeof(position) = 'object');

-- The owner's list of a video's anchors, archived ones included.
CREATE INDEX anchors_video_all ON anchors (video_id, id) WHERE video_id IS NOT NULL;
