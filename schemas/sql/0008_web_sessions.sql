-- Browser sessions for the web pages: a signed-in user holds an opaque cookie; only its hash is kept.
CREATE TABLE web_sessions (
    id_hash     bytea PRIMARY KEY,
    account_id  bigint NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    token_id    bigint NOT NULL REFERENCES api_tokens (id) ON DELETE CASCADE,
    csrf_token  text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    revoked_at  timestamptz
);
CREATE INDEX web_sessions_account ON web_sessions (account_id);
