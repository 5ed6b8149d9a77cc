-- Click analytics history: counters moved out of Redis by the count worker (see
-- src/shoplink/analytics/rollup.py). Every row holds increments that have left Redis; the stats
-- reads add what is still in Redis. Nothing here is per click: one row per entity and bucket.

-- Clicks per entity and time bucket, split by user-agent class and outcome.
CREATE TABLE click_counts (
    entity_kind text NOT NULL CHECK (entity_kind IN
                    ('anchor', 'video', 'live', 'product', 'shop', 'creator', 'plan')),
    entity_id   bigint NOT NULL,
    granularity text NOT NULL CHECK (granularity IN ('minute', 'hour', 'day')),
    bucket      timestamptz NOT NULL,              -- start of the bucket (UTC)
    human_redirected         bigint NOT NULL DEFAULT 0,
    human_fallback           bigint NOT NULL DEFAULT 0,
    human_gone               bigint NOT NULL DEFAULT 0,
    human_not_found          bigint NOT NULL DEFAULT 0,
    bot_redirected           bigint NOT NULL DEFAULT 0,
    bot_fallback             bigint NOT NULL DEFAULT 0,
    bot_gone                 bigint NOT NULL DEFAULT 0,
    bot_not_found            bigint NOT NULL DEFAULT 0,
    link_preview_redirected  bigint NOT NULL DEFAULT 0,
    link_preview_fallback    bigint NOT NULL DEFAULT 0,
    link_preview_gone        bigint NOT NULL DEFAULT 0,
    link_preview_not_found   bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (entity_kind, entity_id, granularity, bucket)
);
CREATE INDEX click_counts_retention ON click_counts (granularity, bucket);

-- Unique human viewers per entity and day: the HyperLogLog (Redis format) of the union of every
-- shard's and every roll-up's viewers, and its count. Unions are idempotent.
CREATE TABLE click_uniques (
    entity_kind text NOT NULL,
    entity_id   bigint NOT NULL,
    day         timestamptz NOT NULL,
    hll         bytea NOT NULL,
    viewers     bigint NOT NULL,
    PRIMARY KEY (entity_kind, entity_id, day)
);
CREATE INDEX click_uniques_retention ON click_uniques (day);

-- Human clicks per second (heatmap cell) of a video's playback.
CREATE TABLE click_heatmap (
    video_id bigint NOT NULL,
    second   integer NOT NULL CHECK (second >= 0),
    clicks   bigint NOT NULL,
    PRIMARY KEY (video_id, second)
);

-- Human clicks per child (anchor of a video or live session, product of a shop or creator).
CREATE TABLE click_top (
    parent_kind text NOT NULL CHECK (parent_kind IN ('video', 'live', 'shop', 'creator')),
    parent_id   bigint NOT NULL,
    child_id    bigint NOT NULL,
    clicks      bigint NOT NULL,
    PRIMARY KEY (parent_kind, parent_id, child_id)
);
CREATE INDEX click_top_rank ON click_top (parent_kind, parent_id, clicks DESC);

-- The last roll-up move applied per stream shard: a move is applied at most once.
CREATE TABLE click_rollup_shards (
    shard    integer PRIMARY KEY,
    last_seq bigint NOT NULL DEFAULT 0,
    moved_at timestamptz
);
