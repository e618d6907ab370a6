-- A principal's deletion refuses one that pools still issue tokens to
-- (docs/security.md A-86), reading its pools by principal_id, in id
-- order; without an index that read every pool.
-- +goose Up
CREATE INDEX pools_principal ON pools (principal_id, id);

-- +goose Down
DROP INDEX pools_principal;
