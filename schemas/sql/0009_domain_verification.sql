-- Verified shop domains: a domain counts for redirects only once its shop has proven it owns it
-- (DNS TXT record or HTTPS file carrying a per-domain token, re-checked) or an operator approved
-- it. Existing domains become `pending`: nothing they hold redirects until it is verified or
-- approved (see docs/security.md, "Upgrading to verified domains").

ALTER TABLE shop_domains
    ADD COLUMN state text NOT NULL DEFAULT 'pending'
        CHECK (state IN ('pending', 'verified', 'failed', 'lapsed')),
    -- The secret the proofs must carry (`shoplink-verify=<token>`); one per (shop, domain) claim.
    ADD COLUMN token text,
    -- How the domain was last verified.
    ADD COLUMN verified_by text CHECK (verified_by IN ('dns_txt', 'https_file', 'operator', 'dev_loopback')),
    ADD COLUMN created_at timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN state_changed_at timestamptz NOT NULL DEFAULT now(),
    -- Start of the current pending period (re-adding a failed domain starts a new one).
    ADD COLUMN pending_since timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN last_checked_at timestamptz,
    -- When the background job (`shoplink domains watch`) looks at it next; NULL: never by itself.
    ADD COLUMN next_check_at timestamptz,
    ADD COLUMN check_failures integer NOT NULL DEFAULT 0 CHECK (check_failures >= 0),
    -- Since when a verified (or lapsed) domain's proof has been missing.
    ADD COLUMN proof_missing_since timestamptz,
    -- Why the last check failed: a stable code (no_record, wrong_value, nxdomain, timeout, ...),
    -- and the whole answer of the last failed check (both proofs) for the API.
    ADD COLUMN failure_reason text,
    ADD COLUMN failure jsonb;

-- Verification happens now, not when the row is inserted.
ALTER TABLE shop_domains ALTER COLUMN verified_at DROP NOT NULL, ALTER COLUMN verified_at DROP DEFAULT;

-- The upgrade: every existing domain starts over as pending, with a fresh token (122 random bits).
UPDATE shop_domains
   SET state = 'pending', verified_at = NULL, verified_by = NULL,
       token = replace(gen_random_uuid()::text, '-', ''),
       created_at = now(), state_changed_at = now(), pending_since = now(), next_check_at = now();

ALTER TABLE shop_domains ALTER COLUMN token SET NOT NULL,
    ADD CONSTRAINT shop_domains_token CHECK (token ~ '^[0-9a-f]{32}$'),
    ADD CONSTRAINT shop_domains_verified
        CHECK (state <> 'verified' OR (verified_at IS NOT NULL AND verified_by IS NOT NULL));

-- One owner: a name is verified for at most one shop (development loopback hosts excepted).
-- Wildcards (include_subdomains) are checked by the service under a per-registrable-domain lock.
CREATE UNIQUE INDEX shop_domains_one_owner ON shop_domains (domain)
    WHERE state = 'verified' AND verified_by <> 'dev_loopback';
CREATE INDEX shop_domains_by_domain ON shop_domains (domain);
CREATE INDEX shop_domains_due ON shop_domains (next_check_at) WHERE next_check_at IS NOT NULL;

-- Every operator approval and revocation (and development auto-verification): who, when, why.
CREATE TABLE domain_audit (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    shop_id    bigint NOT NULL REFERENCES shops (id),
    domain     text NOT NULL,
    action     text NOT NULL CHECK (action IN ('approve', 'revoke', 'auto_verify')),
    actor      text NOT NULL CHECK (length(actor) BETWEEN 1 AND 200),
    reason     text NOT NULL CHECK (length(reason) BETWEEN 1 AND 2000),
    include_subdomains boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX domain_audit_claim ON domain_audit (shop_id, domain, id);
