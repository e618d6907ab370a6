-- The upstream identities of the web pages' sign-in providers, the pair
-- (issuer, subject), and the user principal each signs in as: a subject
-- is unique only at its issuer (docs/security.md T-104). Deleting the
-- principal deletes its identities.
-- +goose Up
CREATE TABLE upstream_identities (
    org_id       TEXT NOT NULL,
    issuer       TEXT NOT NULL,
    subject      TEXT NOT NULL,
    principal_id TEXT NOT NULL REFERENCES principals (id) ON DELETE CASCADE,
    created_at   TIMESTAMPTZ,
    PRIMARY KEY (org_id, issuer, subject)
);
CREATE INDEX upstream_identities_principal ON upstream_identities (principal_id);

-- +goose Down
DROP TABLE upstream_identities;
