-- Surfaces that carry product anchors: videos and live sessions, and the anchors themselves.
-- Anchors are never deleted, only archived, so a code is never reused and clicks keep history.

CREATE TABLE videos (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    owner_id          bigint NOT NULL REFERENCES accounts (id),
    title             text NOT NULL CHECK (length(title) BETWEEN 1 AND 300),
    file_path         text NOT NULL,
    original_filename text,
    size_bytes        bigint NOT NULL CHECK (size_bytes > 0),
    duration_s        double precision NOT NULL CHECK (duration_s > 0),
    fps               double precision NOT NULL CHECK (fps > 0),
    frame_count       integer NOT NULL CHECK (frame_count > 0),
    width             integer NOT NULL CHECK (width > 0),
    height            integer NOT NULL CHECK (height > 0),
    codec             text NOT NULL,
    scene_cuts        double precision[],          -- NULL until computed
    status            text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'deleted')),
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    deleted_at        timestamptz
);
CREATE INDEX videos_owner ON videos (owner_id, id) WHERE status = 'active';

CREATE TABLE live_sessions (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    owner_id         bigint NOT NULL REFERENCES accounts (id),
    title            text NOT NULL CHECK (length(title) BETWEEN 1 AND 300),
    planned_start_at timestamptz,
    status           text NOT NULL DEFAULT 'scheduled' CHECK (status IN ('scheduled', 'live', 'ended')),
    started_at       timestamptz,
    ended_at         timestamptz,
    replay_video_id  bigint REFERENCES videos (id),
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX live_sessions_owner ON live_sessions (owner_id, id);

CREATE TABLE anchors (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    code            text NOT NULL UNIQUE CHECK (code ~ '^[A-Za-z0-9_-]{6,32}$'),
    surface         text NOT NULL CHECK (surface IN ('video', 'live')),
    video_id        bigint REFERENCES videos (id),
    live_session_id bigint REFERENCES live_sessions (id),
    product_id      bigint NOT NULL REFERENCES products (id),
    publisher_id    bigint NOT NULL REFERENCES accounts (id),
    plan_id         bigint,                        -- promotion plan (affiliate program), if any
    start_s         double precision,
    end_s           double precision,
    thumbnail_s     double precision,
    label           text CHECK (length(label) <= 200),
    position        jsonb,                         -- {"x":..,"y":..,"w":..,"h":..} fractions of the frame
    thumbnail_path  text,
    status          text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'archived')),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    archived_at     timestamptz,
    CHECK (
        (surface = 'video' AND video_id IS NOT NULL AND live_session_id IS NULL
            AND start_s >= 0 AND end_s > start_s)
        OR (surface = 'live' AND live_session_id IS NOT NULL AND video_id IS NULL)
    )
);
CREATE INDEX anchors_video_timeline ON anchors (video_id, start_s) WHERE status = 'active';
CREATE INDEX anchors_live_session ON anchors (live_session_id) WHERE live_session_id IS NOT NULL;
CREATE INDEX anchors_product ON anchors (product_id);
