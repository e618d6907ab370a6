-- Providers whose tokens may be exchanged once (SECURITY.md b.48).
-- +goose Up
ALTER TABLE providers ADD COLUMN one_time_use INTEGER NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE providers DROP COLUMN one_time_use;
