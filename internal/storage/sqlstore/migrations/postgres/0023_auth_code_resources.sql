-- The resources (RFC 8707 §2.1) an authorization request asked for,
-- which its code covers at redemption and its refresh family after
-- (docs/security.md T-198). Existing codes asked for none: they cover
-- the client's first audience, as before.
-- +goose Up
ALTER TABLE auth_codes ADD COLUMN resources JSONB NOT NULL DEFAULT 'null';

-- +goose Down
ALTER TABLE auth_codes DROP COLUMN resources;
