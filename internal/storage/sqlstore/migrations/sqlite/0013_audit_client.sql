-- The client address and user agent of the request behind an audit event
-- (docs/design.md#audit). Retention deletes by event_time through the
-- existing audit_events_time index.
-- +goose Up
ALTER TABLE audit_events ADD COLUMN client_ip TEXT NOT NULL DEFAULT '';
ALTER TABLE audit_events ADD COLUMN user_agent TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE audit_events DROP COLUMN user_agent;
ALTER TABLE audit_events DROP COLUMN client_ip;
