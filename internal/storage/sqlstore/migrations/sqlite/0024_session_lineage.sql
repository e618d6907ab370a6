-- A browser session's lineage, and the lineage an authorization code was
-- issued in (docs/security.md A-99, A-100). The lineage is the ID of the
-- first session of a chain: the same person signing in again in the same
-- browser replaces the session (T-82) and keeps it, anything else ends
-- it. A refresh family begun without offline_access lives while a
-- session of its person with its lineage does. A session stored before
-- is its own lineage; a code stored before names none, and the family it
-- begins outlives every session, as before.
-- +goose Up
ALTER TABLE web_sessions ADD COLUMN lineage TEXT NOT NULL DEFAULT '';
UPDATE web_sessions SET lineage = id;
-- The refresh grant's one read of a bound family (tokens.CheckFamilySession).
CREATE INDEX web_sessions_lineage ON web_sessions (lineage);
ALTER TABLE auth_codes ADD COLUMN session_lineage TEXT NOT NULL DEFAULT '';

-- +goose Down
-- Drops both: a code issued in a session and redeemed after the
-- downgrade begins a family that outlives its session, as before 0024.
ALTER TABLE auth_codes DROP COLUMN session_lineage;
DROP INDEX web_sessions_lineage;
ALTER TABLE web_sessions DROP COLUMN lineage;
