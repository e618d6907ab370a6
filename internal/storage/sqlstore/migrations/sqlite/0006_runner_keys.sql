-- Runner public keys (X25519) that host-token values are sealed to for
-- delivery; host tokens gain the SCM account a runner reported and the
-- version of the associated data their ciphertexts were sealed with
-- (1: organization and row; 2: also runner and subject).
-- +goose Up
CREATE TABLE runner_keys (
    runner_id  TEXT PRIMARY KEY,
    org_id     TEXT NOT NULL DEFAULT '',
    public_key BLOB NOT NULL,
    created_at INTEGER,
    updated_at INTEGER
);
CREATE INDEX runner_keys_org_id ON runner_keys (org_id, runner_id);
ALTER TABLE host_tokens ADD COLUMN external_user_id TEXT NOT NULL DEFAULT '';
ALTER TABLE host_tokens ADD COLUMN seal_version INTEGER NOT NULL DEFAULT 1;

-- +goose Down
ALTER TABLE host_tokens DROP COLUMN seal_version;
ALTER TABLE host_tokens DROP COLUMN external_user_id;
DROP INDEX runner_keys_org_id;
DROP TABLE runner_keys;
