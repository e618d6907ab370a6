-- Principals the instance trusts with deployment-wide administration when
-- their credential holds sts:admin (docs/authorization.md).
-- +goose Up
ALTER TABLE principals ADD COLUMN instance_admin INTEGER NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE principals DROP COLUMN instance_admin;
