-- Disabling a principal ends its sign-in links (docs/security.md A-72) by
-- principal_id; without an index that read every link.
-- +goose Up
CREATE INDEX login_links_principal ON login_links (principal_id);

-- +goose Down
DROP INDEX login_links_principal;
