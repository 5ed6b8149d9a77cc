-- The player's funnel events (issue 15): impressions, views and view-through quartiles counted
-- beside the clicks, in the same rows (src/shoplink/analytics/keys.py: PAIRS = the 12 click
-- columns, then these 18), so one roll-up move and one read serve the whole funnel.
ALTER TABLE click_counts
    ADD COLUMN human_impression bigint NOT NULL DEFAULT 0,
    ADD COLUMN human_view bigint NOT NULL DEFAULT 0,
    ADD COLUMN human_q25 bigint NOT NULL DEFAULT 0,
    ADD COLUMN human_q50 bigint NOT NULL DEFAULT 0,
    ADD COLUMN human_q75 bigint NOT NULL DEFAULT 0,
    ADD COLUMN human_q100 bigint NOT NULL DEFAULT 0,
    ADD COLUMN bot_impression bigint NOT NULL DEFAULT 0,
    ADD COLUMN bot_view bigint NOT NULL DEFAULT 0,
    ADD COLUMN bot_q25 bigint NOT NULL DEFAULT 0,
    ADD COLUMN bot_q50 bigint NOT NULL DEFAULT 0,
    ADD COLUMN bot_q75 bigint NOT NULL DEFAULT 0,
    ADD COLUMN bot_q100 bigint NOT NULL DEFAULT 0,
    ADD COLUMN link_preview_impression bigint NOT NULL DEFAULT 0,
    ADD COLUMN link_preview_view bigint NOT NULL DEFAULT 0,
    ADD COLUMN link_preview_q25 bigint NOT NULL DEFAULT 0,
    ADD COLUMN link_preview_q50 bigint NOT NULL DEFAULT 0,
    ADD COLUMN link_preview_q75 bigint NOT NULL DEFAULT 0,
    ADD COLUMN link_preview_q100 bigint NOT NULL DEFAULT 0;

-- The view map: human impressions by playback second, beside the clicks of the heatmap.
ALTER TABLE click_heatmap
    ALTER COLUMN clicks SET DEFAULT 0,
    ADD COLUMN impressions bigint NOT NULL DEFAULT 0;

-- Unique human viewers per entity and day, of clicks (as before) and of impressions.
ALTER TABLE click_uniques
    ADD COLUMN measure text NOT NULL DEFAULT 'click' CHECK (measure IN ('click', 'impression'));
ALTER TABLE click_uniques DROP CONSTRAINT click_uniques_pkey;
ALTER TABLE click_uniques ADD PRIMARY KEY (entity_kind, entity_id, day, measure);

-- Top lists: the children's human impressions beside their human clicks.
ALTER TABLE click_top
    ALTER COLUMN clicks SET DEFAULT 0,
    ADD COLUMN impressions bigint NOT NULL DEFAULT 0;
