-- Live sessions: the per-session event sequence, the current pins, and the pin timeline.
-- A session's product set is its active live anchors (anchors.surface = 'live').

ALTER TABLE live_sessions
    ADD COLUMN last_seq integer NOT NULL DEFAULT 0 CHECK (last_seq >= 0);

-- One active live anchor per product and session (re-adding after removal makes a new code).
CREATE UNIQUE INDEX anchors_live_product_active ON anchors (live_session_id, product_id)
    WHERE surface = 'live' AND status = 'active';

-- Every change viewers see, in order: start, pin, unpin, sold_out, end. `seq` is per session
-- (1, 2, 3, ...) and is the SSE event id; offset_s is seconds since the live's start.
CREATE TABLE live_pin_events (
    live_session_id bigint NOT NULL REFERENCES live_sessions (id),
    seq             integer NOT NULL CHECK (seq > 0),
    type            text NOT NULL CHECK (type IN ('start', 'pin', 'unpin', 'sold_out', 'end')),
    product_id      bigint REFERENCES products (id),
    offset_s        double precision NOT NULL CHECK (offset_s >= 0),
    data            jsonb NOT NULL DEFAULT '{}',
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (live_session_id, seq),
    CHECK ((type IN ('start', 'end')) = (product_id IS NULL))
);

-- What is pinned right now (derivable from the events; kept for cheap reads).
-- `product` is the snapshot shown to viewers (title, price, image, code), taken at pin time.
CREATE TABLE live_pins (
    live_session_id bigint NOT NULL REFERENCES live_sessions (id),
    product_id      bigint NOT NULL REFERENCES products (id),
    anchor_id       bigint NOT NULL REFERENCES anchors (id),
    pin_seq         integer NOT NULL,
    pinned_offset_s double precision NOT NULL,
    sold_out        boolean NOT NULL DEFAULT false,
    product         jsonb NOT NULL,
    PRIMARY KEY (live_session_id, product_id)
);
