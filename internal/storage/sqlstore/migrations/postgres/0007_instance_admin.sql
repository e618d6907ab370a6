-- Principals the instance trusts with deployment-wide administration when
-- their credential holds sts:admin (docs/authorization.md).
-- +goose Up
ALTER TABLE principals ADD COLUMN instance_admin BOOLEAN NOT NULL DEFAULT FALSE;

-- +goose Down
ALTER TABLE principals DROP COLUMN instance_admin;
