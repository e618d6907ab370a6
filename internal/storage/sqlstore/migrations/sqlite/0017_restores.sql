-- One row per restore from a backup (sts restore): a one-time identifier
-- that may have been presented before a restore counts as spent, since
-- the record of its use may have gone with the replaced database
-- (docs/security.md F-62).
-- +goose Up
CREATE TABLE restores (
    id          TEXT PRIMARY KEY,
    restored_at INTEGER NOT NULL
);

-- +goose Down
DROP TABLE restores;
