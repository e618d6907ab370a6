-- The authorization_code grant: a client's exact redirect URIs, the codes
-- (digests only, single use) and the consents people remembered.
-- +goose Up
ALTER TABLE clients ADD COLUMN redirect_uris TEXT NOT NULL DEFAULT 'null';

CREATE TABLE auth_codes (
    id           TEXT PRIMARY KEY,
    digest       BLOB UNIQUE,
    client_id    TEXT NOT NULL DEFAULT '',
    org_id       TEXT NOT NULL DEFAULT '',
    principal_id TEXT NOT NULL DEFAULT '',
    redirect_uri TEXT NOT NULL DEFAULT '',
    challenge    TEXT NOT NULL DEFAULT '',
    scopes       TEXT NOT NULL DEFAULT 'null',
    nonce        TEXT NOT NULL DEFAULT '',
    auth_time    INTEGER,
    created_at   INTEGER,
    expires_at   INTEGER,
    used_at      INTEGER,
    access_jti   TEXT NOT NULL DEFAULT '',
    family_id    TEXT NOT NULL DEFAULT ''
);
CREATE INDEX auth_codes_expires_at ON auth_codes (expires_at);

CREATE TABLE consents (
    principal_id TEXT NOT NULL,
    client_id    TEXT NOT NULL,
    scopes       TEXT NOT NULL DEFAULT 'null',
    created_at   INTEGER,
    updated_at   INTEGER,
    PRIMARY KEY (principal_id, client_id)
);

-- +goose Down
DROP TABLE consents;
DROP TABLE auth_codes;
ALTER TABLE clients DROP COLUMN redirect_uris;
