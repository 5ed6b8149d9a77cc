-- Affiliate money: sales held until their click arrives (pending attribution), partial refunds,
-- settlement (return window, freezes, payouts). docs/affiliates.md, "Money rules".
--
-- The net of a conversion, in one expression each (what the stats read):
--   net GMV          amount_minor - refunded_minor
--   net commission   commission_minor - commission_refunded_minor
--   counts as order  click_id IS NOT NULL AND status = 'confirmed'   (attributed, not wholly refunded)

CREATE TABLE payouts (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    seller_id     bigint NOT NULL REFERENCES accounts (id),
    creator_id    bigint NOT NULL REFERENCES accounts (id),
    currency      char(3) NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    amount_minor  bigint NOT NULL CHECK (amount_minor > 0),
    conversions   integer NOT NULL CHECK (conversions > 0),
    reference     text NOT NULL CHECK (length(reference) BETWEEN 1 AND 200),
    paid_at       timestamptz NOT NULL,
    recorded_by   bigint REFERENCES accounts (id),
    UNIQUE (seller_id, reference)              -- the same payout recorded twice is the same payout
);
CREATE INDEX payouts_creator ON payouts (creator_id, paid_at);
CREATE INDEX payouts_seller ON payouts (seller_id, paid_at);

ALTER TABLE conversions
    ADD COLUMN refunded_minor            bigint NOT NULL DEFAULT 0,
    ADD COLUMN commission_refunded_minor bigint NOT NULL DEFAULT 0,
    ADD COLUMN pending_until             timestamptz,   -- set while reason = 'pending_attribution'
    ADD COLUMN attributed_at             timestamptz,   -- when the click was credited
    ADD COLUMN frozen_at                 timestamptz,
    ADD COLUMN frozen_reason             text CHECK (length(frozen_reason) BETWEEN 1 AND 500),
    ADD COLUMN payout_id                 bigint REFERENCES payouts (id);

-- Sales refunded before partial refunds existed were refunded whole.
UPDATE conversions SET refunded_minor = amount_minor, commission_refunded_minor = commission_minor
 WHERE status = 'refunded';

ALTER TABLE conversions
    ADD CONSTRAINT conversions_refund_within_sale
        CHECK (refunded_minor >= 0 AND refunded_minor <= amount_minor),
    ADD CONSTRAINT conversions_commission_refund_within_commission
        CHECK (commission_refunded_minor >= 0 AND commission_refunded_minor <= commission_minor),
    ADD CONSTRAINT conversions_refunded_status
        CHECK ((status = 'refunded') = (refunded_minor = amount_minor AND refunded_at IS NOT NULL)),
    ADD CONSTRAINT conversions_pending_has_bound
        CHECK ((reason = 'pending_attribution') = (pending_until IS NOT NULL)),
    ADD CONSTRAINT conversions_pending_unattributed
        CHECK (reason <> 'pending_attribution' OR click_id IS NULL),
    ADD CONSTRAINT conversions_paid_attributed
        CHECK (payout_id IS NULL OR click_id IS NOT NULL);

CREATE INDEX conversions_pending ON conversions (pending_until) WHERE reason = 'pending_attribution';
CREATE INDEX conversions_pending_click ON conversions (given_click_id)
    WHERE reason = 'pending_attribution';
CREATE INDEX conversions_pending_viewer ON conversions (given_viewer)
    WHERE reason = 'pending_attribution';
CREATE INDEX conversions_unpaid ON conversions (creator_id, currency, occurred_at)
    WHERE click_id IS NOT NULL AND payout_id IS NULL;
CREATE INDEX conversions_payout ON conversions (payout_id) WHERE payout_id IS NOT NULL;

-- Every refund, partial or whole; `refund_key` makes a retried refund request a no-op.
CREATE TABLE conversion_refunds (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    conversion_id     bigint NOT NULL REFERENCES conversions (id),
    refund_key        text CHECK (length(refund_key) BETWEEN 1 AND 200),
    amount_minor      bigint NOT NULL CHECK (amount_minor >= 0),
    refunded_at       timestamptz NOT NULL,
    refunded_by       bigint REFERENCES accounts (id),
    UNIQUE (conversion_id, refund_key)
);
CREATE INDEX conversion_refunds_conversion ON conversion_refunds (conversion_id, id);

-- Freezes and unfreezes, with their reasons (the conversion holds the current state).
CREATE TABLE conversion_holds (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    conversion_id bigint NOT NULL REFERENCES conversions (id),
    action        text NOT NULL CHECK (action IN ('freeze', 'unfreeze')),
    reason        text NOT NULL CHECK (length(reason) BETWEEN 1 AND 500),
    at            timestamptz NOT NULL,
    by_account    bigint REFERENCES accounts (id)
);
CREATE INDEX conversion_holds_conversion ON conversion_holds (conversion_id, id);

-- The whole refunds made before this table existed, so that every conversion's refunded_minor
-- is the sum of its refunds (`shoplink reconcile` checks it).
INSERT INTO conversion_refunds (conversion_id, amount_minor, refunded_at)
SELECT id, amount_minor, refunded_at FROM conversions WHERE status = 'refunded';
