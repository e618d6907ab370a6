-- Per-provider leniencies, off by default: a subject token without kid
-- (accepted only when the key set has one key) and a subject token naming
-- several audiences.
-- +goose Up
ALTER TABLE providers ADD COLUMN allow_missing_kid BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE providers ADD COLUMN allow_multiple_audiences BOOLEAN NOT NULL DEFAULT FALSE;

-- +goose Down
ALTER TABLE providers DROP COLUMN allow_multiple_audiences;
ALTER TABLE providers DROP COLUMN allow_missing_kid;
