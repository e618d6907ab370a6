-- Host tokens: a per-row data key (wrapped under master_key_id) seals the
-- token and refresh token; refresh bookkeeping (status, failures, lease).
-- +goose Up
ALTER TABLE host_tokens ADD COLUMN sealed_data_key BYTEA;
ALTER TABLE host_tokens ADD COLUMN refreshed_at TIMESTAMPTZ;
ALTER TABLE host_tokens ADD COLUMN refresh_error TEXT NOT NULL DEFAULT '';
ALTER TABLE host_tokens ADD COLUMN refresh_failures INTEGER NOT NULL DEFAULT 0;
ALTER TABLE host_tokens ADD COLUMN refresh_lease_id TEXT NOT NULL DEFAULT '';
ALTER TABLE host_tokens ADD COLUMN refresh_lease_until TIMESTAMPTZ;
CREATE INDEX host_tokens_org_id ON host_tokens (org_id, id);

-- +goose Down
DROP INDEX host_tokens_org_id;
ALTER TABLE host_tokens DROP COLUMN refresh_lease_until;
ALTER TABLE host_tokens DROP COLUMN refresh_lease_id;
ALTER TABLE host_tokens DROP COLUMN refresh_failures;
ALTER TABLE host_tokens DROP COLUMN refresh_error;
ALTER TABLE host_tokens DROP COLUMN refreshed_at;
ALTER TABLE host_tokens DROP COLUMN sealed_data_key;
