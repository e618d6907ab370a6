-- Server-wide secrets (the digest pepper), sealed under the master key.
-- +goose Up
CREATE TABLE server_secrets (
    id            TEXT PRIMARY KEY,
    sealed        BYTEA,
    master_key_id TEXT NOT NULL DEFAULT '',
    created_at    TIMESTAMPTZ
);

-- +goose Down
DROP TABLE server_secrets;
