-- A confidential client may be registered to use the authorization_code
-- grant without PKCE (require_pkce false); every existing client keeps
-- requiring it (docs/security.md T-90).
-- +goose Up
ALTER TABLE clients ADD COLUMN pkce_optional INTEGER NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE clients DROP COLUMN pkce_optional;
