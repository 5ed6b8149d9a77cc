-- Accounts, API tokens, and the seller catalog (shops, their domains, products).

CREATE TABLE accounts (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    roles       text[] NOT NULL CHECK (cardinality(roles) >= 1
                    AND roles <@ ARRAY['admin', 'seller', 'creator', 'analyst']::text[]),
    created_at  timestamptz NOT NULL DEFAULT now(),
    disabled_at timestamptz
);

-- Tokens are shown once; only their SHA-256 is kept.
CREATE TABLE api_tokens (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id  bigint NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    token_hash  bytea NOT NULL UNIQUE,
    label       text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    revoked_at  timestamptz
);
CREATE INDEX api_tokens_account ON api_tokens (account_id);

CREATE TABLE shops (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    owner_id     bigint NOT NULL REFERENCES accounts (id),
    name         text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    fallback_url text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX shops_owner ON shops (owner_id);

-- A domain is stored in its ASCII (IDNA) form, lower case, without a trailing dot.
CREATE TABLE shop_domains (
    shop_id            bigint NOT NULL REFERENCES shops (id) ON DELETE CASCADE,
    domain             text NOT NULL CHECK (domain = lower(domain) AND length(domain) BETWEEN 1 AND 253),
    include_subdomains boolean NOT NULL DEFAULT false,
    verified_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (shop_id, domain)
);

CREATE TABLE products (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    shop_id     bigint NOT NULL REFERENCES shops (id),
    title       text NOT NULL CHECK (length(title) BETWEEN 1 AND 300),
    url         text NOT NULL,
    price_minor bigint CHECK (price_minor >= 0),
    currency    char(3) CHECK (currency ~ '^[A-Z]{3}$'),
    image_url   text,
    sku         text,
    status      text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'delisted')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    delisted_at timestamptz,
    CHECK ((price_minor IS NULL) = (currency IS NULL))
);
CREATE INDEX products_shop ON products (shop_id, id);
CREATE UNIQUE INDEX products_shop_sku ON products (shop_id, sku) WHERE sku IS NOT NULL;
