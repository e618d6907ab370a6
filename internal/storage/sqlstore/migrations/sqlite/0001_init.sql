-- Initial schema, SQLite dialect. Times are INTEGER unix microseconds in UTC
-- (NULL for the zero time.Time), durations INTEGER nanoseconds, []string and
-- Mapping JSON text, bools INTEGER 0/1. Column names match the PostgreSQL
-- migration so both dialects share one set of queries.

-- +goose Up
CREATE TABLE organizations (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL DEFAULT '',
    tier       TEXT NOT NULL DEFAULT '',
    created_at INTEGER,
    updated_at INTEGER
);

CREATE TABLE principals (
    id         TEXT PRIMARY KEY,
    org_id     TEXT NOT NULL DEFAULT '',
    kind       TEXT NOT NULL DEFAULT '',
    name       TEXT NOT NULL DEFAULT '',
    email      TEXT NOT NULL DEFAULT '',
    disabled   INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER,
    updated_at INTEGER
);
CREATE INDEX principals_org_id ON principals (org_id, id);

CREATE TABLE pools (
    id                    TEXT PRIMARY KEY,
    org_id                TEXT NOT NULL DEFAULT '',
    display_name          TEXT NOT NULL DEFAULT '',
    disabled              INTEGER NOT NULL DEFAULT 0,
    identity_claim        TEXT NOT NULL DEFAULT '',
    cel_condition         TEXT NOT NULL DEFAULT '',
    mapping               TEXT NOT NULL DEFAULT '{}',
    scopes                TEXT NOT NULL DEFAULT 'null',
    max_token_lifetime_ns INTEGER NOT NULL DEFAULT 0,
    principal_id          TEXT NOT NULL DEFAULT '',
    allow_unauthenticated INTEGER NOT NULL DEFAULT 0,
    created_at            INTEGER,
    updated_at            INTEGER
);

CREATE TABLE providers (
    pool_id    TEXT NOT NULL REFERENCES pools (id) ON DELETE CASCADE,
    id         TEXT NOT NULL,
    issuer     TEXT NOT NULL DEFAULT '',
    jwks_uri   TEXT NOT NULL DEFAULT '',
    jwks       BLOB,
    audiences  TEXT NOT NULL DEFAULT 'null',
    algorithms TEXT NOT NULL DEFAULT 'null',
    disabled   INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER,
    updated_at INTEGER,
    PRIMARY KEY (pool_id, id)
);

CREATE TABLE clients (
    id            TEXT PRIMARY KEY,
    org_id        TEXT NOT NULL DEFAULT '',
    principal_id  TEXT NOT NULL DEFAULT '',
    name          TEXT NOT NULL DEFAULT '',
    auth_method   TEXT NOT NULL DEFAULT '',
    secret_digest BLOB,
    jwks          BLOB,
    jwks_uri      TEXT NOT NULL DEFAULT '',
    grant_types   TEXT NOT NULL DEFAULT 'null',
    pools         TEXT NOT NULL DEFAULT 'null',
    audiences     TEXT NOT NULL DEFAULT 'null',
    scopes        TEXT NOT NULL DEFAULT 'null',
    disabled      INTEGER NOT NULL DEFAULT 0,
    created_at    INTEGER,
    updated_at    INTEGER
);
CREATE INDEX clients_org_id ON clients (org_id, id);

-- signing_keyset is a singleton row every UpdateSigningKeys writes first, so
-- rotations serialize on it (the PostgreSQL schema needs it for that; SQLite
-- immediate transactions serialize anyway, and the shared query keeps it).
CREATE TABLE signing_keyset (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    version INTEGER NOT NULL DEFAULT 0
);
INSERT INTO signing_keyset (id, version) VALUES (1, 0);

CREATE TABLE signing_keys (
    id            TEXT PRIMARY KEY,
    algorithm     TEXT NOT NULL DEFAULT '',
    state         TEXT NOT NULL DEFAULT '',
    public_jwk    BLOB,
    sealed        BLOB,
    master_key_id TEXT NOT NULL DEFAULT '',
    created_at    INTEGER,
    activated_at  INTEGER,
    retired_at    INTEGER,
    delete_after  INTEGER
);

CREATE TABLE revocations (
    id            TEXT PRIMARY KEY,
    issued_before INTEGER,
    reason        TEXT NOT NULL DEFAULT '',
    created_at    INTEGER,
    expires_at    INTEGER
);
CREATE INDEX revocations_created_at ON revocations (created_at, id);
CREATE INDEX revocations_expires_at ON revocations (expires_at);

CREATE TABLE pats (
    id           TEXT PRIMARY KEY,
    org_id       TEXT NOT NULL DEFAULT '',
    owner_id     TEXT NOT NULL DEFAULT '',
    description  TEXT NOT NULL DEFAULT '',
    scopes       TEXT NOT NULL DEFAULT 'null',
    digest       BLOB UNIQUE,
    created_at   INTEGER,
    expires_at   INTEGER,
    last_used_at INTEGER
);
CREATE INDEX pats_owner_id ON pats (owner_id, created_at, id);

CREATE TABLE exchange_tokens (
    id           TEXT PRIMARY KEY,
    org_id       TEXT NOT NULL DEFAULT '',
    principal_id TEXT NOT NULL DEFAULT '',
    digest       BLOB UNIQUE,
    created_at   INTEGER,
    expires_at   INTEGER
);
CREATE INDEX exchange_tokens_expires_at ON exchange_tokens (expires_at);

CREATE TABLE refresh_tokens (
    id           TEXT PRIMARY KEY,
    family_id    TEXT NOT NULL DEFAULT '',
    digest       BLOB UNIQUE,
    client_id    TEXT NOT NULL DEFAULT '',
    org_id       TEXT NOT NULL DEFAULT '',
    subject      TEXT NOT NULL DEFAULT '',
    principal_id TEXT NOT NULL DEFAULT '',
    scopes       TEXT NOT NULL DEFAULT 'null',
    audiences    TEXT NOT NULL DEFAULT 'null',
    claims       BLOB,
    created_at   INTEGER,
    expires_at   INTEGER,
    rotated_at   INTEGER,
    successor_id TEXT NOT NULL DEFAULT '',
    revoked      INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX refresh_tokens_family_id ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_expires_at ON refresh_tokens (expires_at);

CREATE TABLE host_tokens (
    id             TEXT PRIMARY KEY,
    org_id         TEXT NOT NULL DEFAULT '',
    runner_id      TEXT NOT NULL DEFAULT '',
    subject_id     TEXT NOT NULL DEFAULT '',
    host           TEXT NOT NULL DEFAULT '',
    integration_id TEXT NOT NULL DEFAULT '',
    scopes         TEXT NOT NULL DEFAULT 'null',
    source         TEXT NOT NULL DEFAULT '',
    sealed_token   BLOB,
    sealed_refresh BLOB,
    master_key_id  TEXT NOT NULL DEFAULT '',
    expires_at     INTEGER,
    created_at     INTEGER,
    updated_at     INTEGER
);
CREATE INDEX host_tokens_runner_id ON host_tokens (runner_id, id);
CREATE INDEX host_tokens_expires_at ON host_tokens (expires_at);

CREATE TABLE audit_events (
    id         TEXT PRIMARY KEY,
    event_time INTEGER,
    org_id     TEXT NOT NULL DEFAULT '',
    actor      TEXT NOT NULL DEFAULT '',
    action     TEXT NOT NULL DEFAULT '',
    target     TEXT NOT NULL DEFAULT '',
    request_id TEXT NOT NULL DEFAULT '',
    outcome    TEXT NOT NULL DEFAULT '',
    detail     TEXT NOT NULL DEFAULT ''
);
CREATE INDEX audit_events_time ON audit_events (event_time, id);
CREATE INDEX audit_events_org_time ON audit_events (org_id, event_time, id);

CREATE TABLE used_jtis (
    id         TEXT PRIMARY KEY,
    expires_at INTEGER
);
CREATE INDEX used_jtis_expires_at ON used_jtis (expires_at);

-- +goose Down
DROP TABLE used_jtis;
DROP TABLE audit_events;
DROP TABLE host_tokens;
DROP TABLE refresh_tokens;
DROP TABLE exchange_tokens;
DROP TABLE pats;
DROP TABLE revocations;
DROP TABLE signing_keys;
DROP TABLE signing_keyset;
DROP TABLE clients;
DROP TABLE providers;
DROP TABLE pools;
DROP TABLE principals;
DROP TABLE organizations;
