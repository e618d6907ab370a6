-- The browser session an authorization code was issued in: the refresh
-- family its redemption begins without offline_access ends with that
-- session (docs/security.md A-99). Existing codes name none: their
-- families refresh as before, whatever becomes of the session.
-- +goose Up
ALTER TABLE auth_codes ADD COLUMN session_id TEXT NOT NULL DEFAULT '';

-- +goose Down
-- Drops the session: a code issued with one and redeemed after the
-- downgrade begins a family that outlives its session, as before 0024.
ALTER TABLE auth_codes DROP COLUMN session_id;
