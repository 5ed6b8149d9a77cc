-- The host's stream (HLS .m3u8, or any URL a <video> plays) that the public viewer page plays.
-- Validated by the live service (https, or http with SHOPLINK_ALLOW_HTTP_URLS); NULL: not set yet.
ALTER TABLE live_sessions
    ADD COLUMN stream_url text CHECK (stream_url IS NULL OR length(stream_url) BETWEEN 1 AND 2048);
