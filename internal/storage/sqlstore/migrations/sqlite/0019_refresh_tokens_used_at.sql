-- The first refresh with a token that does not rotate it (Google's
-- /v1/oauthtoken) closes its parent's retry window, as a rotation does
-- (docs/security.md T-119). Existing rows are unused.
-- +goose Up
ALTER TABLE refresh_tokens ADD COLUMN used_at INTEGER;

-- +goose Down
ALTER TABLE refresh_tokens DROP COLUMN used_at;
