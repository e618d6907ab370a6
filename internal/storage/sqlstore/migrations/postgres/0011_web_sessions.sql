-- Browser sessions of the web pages and one-time sign-in links; both are
-- stored as digests of the secret the browser holds.
-- +goose Up
CREATE TABLE web_sessions (
    id           TEXT PRIMARY KEY,
    digest       BYTEA NOT NULL UNIQUE,
    org_id       TEXT NOT NULL DEFAULT '',
    principal_id TEXT NOT NULL DEFAULT '',
    method       TEXT NOT NULL DEFAULT '',
    user_agent   TEXT NOT NULL DEFAULT '',
    created_at   TIMESTAMPTZ,
    last_seen_at TIMESTAMPTZ,
    expires_at   TIMESTAMPTZ
);
CREATE INDEX web_sessions_principal ON web_sessions (principal_id);
CREATE INDEX web_sessions_expires_at ON web_sessions (expires_at);

CREATE TABLE login_links (
    id           TEXT PRIMARY KEY,
    org_id       TEXT NOT NULL DEFAULT '',
    principal_id TEXT NOT NULL DEFAULT '',
    digest       BYTEA NOT NULL UNIQUE,
    created_at   TIMESTAMPTZ,
    expires_at   TIMESTAMPTZ
);
CREATE INDEX login_links_expires_at ON login_links (expires_at);

-- +goose Down
DROP TABLE login_links;
DROP TABLE web_sessions;
