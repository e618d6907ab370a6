-- A pool's downstream audiences (the resource servers its tokens may be
-- minted for) and what Google's default scope means in it.
-- +goose Up
ALTER TABLE pools ADD COLUMN audiences JSONB NOT NULL DEFAULT 'null';
ALTER TABLE pools ADD COLUMN google_default_scopes JSONB NOT NULL DEFAULT 'null';

-- +goose Down
ALTER TABLE pools DROP COLUMN google_default_scopes;
ALTER TABLE pools DROP COLUMN audiences;
