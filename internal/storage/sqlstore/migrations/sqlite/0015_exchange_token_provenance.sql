-- What the credential that created an exchange token derives from, so the
-- access token it buys ends with it (docs/design.md#lifetimes,
-- docs/security.md A-50): its principal, its expiry and the source claims
-- carried into the bought token (JSON, as refresh_tokens.claims).
-- +goose Up
ALTER TABLE exchange_tokens ADD COLUMN creator_id TEXT NOT NULL DEFAULT '';
ALTER TABLE exchange_tokens ADD COLUMN creator_expires_at INTEGER;
ALTER TABLE exchange_tokens ADD COLUMN claims BLOB;

-- +goose Down
ALTER TABLE exchange_tokens DROP COLUMN claims;
ALTER TABLE exchange_tokens DROP COLUMN creator_expires_at;
ALTER TABLE exchange_tokens DROP COLUMN creator_id;
