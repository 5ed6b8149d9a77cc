-- Affiliate program: promotion plans, their products and rate history, creator enrolments,
-- clicks persisted for attribution (from the click streams), and reported conversions.

CREATE TABLE plans (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    seller_id   bigint NOT NULL REFERENCES accounts (id),
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    kind        text NOT NULL CHECK (kind IN ('open', 'targeted')),
    status      text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'paused', 'ended')),
    starts_at   timestamptz NOT NULL,
    ends_at     timestamptz,                    -- NULL: until ended by the seller
    paused_at   timestamptz,
    ended_at    timestamptz,                    -- set when the seller ends the plan
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL,
    CHECK (ends_at IS NULL OR ends_at > starts_at)
);
CREATE INDEX plans_seller ON plans (seller_id, id);

CREATE TABLE plan_products (
    plan_id    bigint NOT NULL REFERENCES plans (id),
    product_id bigint NOT NULL REFERENCES products (id),
    added_at   timestamptz NOT NULL,
    PRIMARY KEY (plan_id, product_id)
);
CREATE INDEX plan_products_product ON plan_products (product_id);

-- Every rate a plan (product_id NULL) or a product override ever had. A raise takes effect when
-- announced; a cut reaches creators enrolled before the announcement only at effective_at.
CREATE TABLE plan_rate_changes (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    plan_id      bigint NOT NULL REFERENCES plans (id),
    product_id   bigint REFERENCES products (id),
    rate_bp      integer CHECK (rate_bp BETWEEN 0 AND 10000),   -- NULL: the override is removed
    announced_at timestamptz NOT NULL,
    effective_at timestamptz NOT NULL,
    changed_by   bigint REFERENCES accounts (id),
    CHECK (effective_at >= announced_at),
    CHECK (product_id IS NOT NULL OR rate_bp IS NOT NULL)
);
CREATE INDEX plan_rate_changes_plan ON plan_rate_changes (plan_id, announced_at, id);

CREATE TABLE plan_enrolments (
    plan_id    bigint NOT NULL REFERENCES plans (id),
    creator_id bigint NOT NULL REFERENCES accounts (id),
    status     text NOT NULL CHECK (status IN ('invited', 'declined', 'enrolled', 'left')),
    invited_at timestamptz,
    joined_at  timestamptz,                     -- the latest join
    left_at    timestamptz,
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (plan_id, creator_id)
);
CREATE INDEX plan_enrolments_creator ON plan_enrolments (creator_id, status);

-- Clicks on plan anchors, copied from the click streams by the `attribution` consumer group.
-- No foreign keys: the stream is the source, rows must never be refused for a missing parent.
CREATE TABLE attributed_clicks (
    event_id    text PRIMARY KEY,                -- the click id (sl_click)
    ts          timestamptz NOT NULL,
    code        text NOT NULL,
    outcome     text NOT NULL,
    surface     text NOT NULL,
    anchor_id   bigint,
    plan_id     bigint NOT NULL,
    creator_id  bigint,
    product_id  bigint,
    shop_id     bigint,
    viewer      text NOT NULL,
    ua_class    text NOT NULL,
    rate_bp     integer,
    rate_source text,
    received_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX attributed_clicks_viewer ON attributed_clicks (viewer, shop_id, ts DESC);
CREATE INDEX attributed_clicks_plan ON attributed_clicks (plan_id, ts);
CREATE INDEX attributed_clicks_creator ON attributed_clicks (creator_id, ts);

CREATE TABLE conversions (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    shop_id           bigint NOT NULL REFERENCES shops (id),
    order_id          text NOT NULL CHECK (length(order_id) BETWEEN 1 AND 200),
    amount_minor      bigint NOT NULL CHECK (amount_minor >= 0),
    currency          char(3) NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    occurred_at       timestamptz NOT NULL,
    reported_at       timestamptz NOT NULL,
    reported_by       bigint REFERENCES accounts (id),
    given_click_id    text,                      -- what the shop sent
    given_viewer      text,
    click_id          text,                      -- the click credited (NULL: unattributed)
    plan_id           bigint,
    creator_id        bigint,
    product_id        bigint,
    rate_bp           integer,
    rate_source       text,
    commission_minor  bigint NOT NULL DEFAULT 0 CHECK (commission_minor >= 0),
    reason            text NOT NULL,             -- why credited or not
    status            text NOT NULL DEFAULT 'confirmed' CHECK (status IN ('confirmed', 'refunded')),
    refunded_at       timestamptz,
    UNIQUE (shop_id, order_id)
);
CREATE INDEX conversions_plan ON conversions (plan_id, occurred_at) WHERE plan_id IS NOT NULL;
CREATE INDEX conversions_creator ON conversions (creator_id, occurred_at) WHERE creator_id IS NOT NULL;
