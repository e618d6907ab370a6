-- The authorization_code grant: a client's exact redirect URIs, the codes
-- (digests only, single use) and the consents people remembered.
-- +goose Up
ALTER TABLE clients ADD COLUMN redirect_uris JSONB NOT NULL DEFAULT 'null';

CREATE TABLE auth_codes (
    id           TEXT PRIMARY KEY,
    digest       BYTEA UNIQUE,
    client_id    TEXT NOT NULL DEFAULT '',
    org_id       TEXT NOT NULL DEFAULT '',
    principal_id TEXT NOT NULL DEFAULT '',
    redirect_uri TEXT NOT NULL DEFAULT '',
    challenge    TEXT NOT NULL DEFAULT '',
    scopes       JSONB NOT NULL DEFAULT 'null',
    nonce        TEXT NOT NULL DEFAULT '',
    auth_time    TIMESTAMPTZ,
    created_at   TIMESTAMPTZ,
    expires_at   TIMESTAMPTZ,
    used_at      TIMESTAMPTZ,
    access_jti   TEXT NOT NULL DEFAULT '',
    family_id    TEXT NOT NULL DEFAULT ''
);
CREATE INDEX auth_codes_expires_at ON auth_codes (expires_at);

CREATE TABLE consents (
    principal_id TEXT NOT NULL,
    client_id    TEXT NOT NULL,
    scopes       JSONB NOT NULL DEFAULT 'null',
    created_at   TIMESTAMPTZ,
    updated_at   TIMESTAMPTZ,
    PRIMARY KEY (principal_id, client_id)
);

-- +goose Down
DROP TABLE consents;
DROP TABLE auth_codes;
ALTER TABLE clients DROP COLUMN redirect_uris;
