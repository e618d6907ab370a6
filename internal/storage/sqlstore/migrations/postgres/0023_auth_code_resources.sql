-- The resources (RFC 8707 §2.1) an authorization request asked for,
-- which its code covers at redemption and its refresh family after
-- (docs/security.md T-190). Existing codes asked for none: they cover
-- the client's first audience, as before.
-- +goose Up
ALTER TABLE auth_codes ADD COLUMN resources JSONB NOT NULL DEFAULT 'null';

-- +goose Down
-- Drops the resources: a code issued with some and redeemed after the
-- downgrade is for the client's first audience, and its redemption
-- naming the resource asked is refused invalid_target.
ALTER TABLE auth_codes DROP COLUMN resources;
