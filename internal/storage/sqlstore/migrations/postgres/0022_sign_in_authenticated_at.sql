-- When a browser session's sign-in authenticated the person, as far as
-- sts knows (the upstream provider's auth_time, a sign-in link's use),
-- apart from when the session began; and an authorization code's
-- session start beside its auth_time (docs/security.md T-178). Existing
-- sessions' times are unknown (NULL: no demand of a relying party is met
-- by them, nor do their codes carry auth_time); existing codes' auth_time
-- is their session's start.
-- +goose Up
ALTER TABLE web_sessions ADD COLUMN auth_at TIMESTAMPTZ;
ALTER TABLE auth_codes ADD COLUMN signed_in_at TIMESTAMPTZ;

-- +goose Down
ALTER TABLE auth_codes DROP COLUMN signed_in_at;
ALTER TABLE web_sessions DROP COLUMN auth_at;
