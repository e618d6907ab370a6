-- Revoking a subject ends its refresh-token families: find them by subject.
-- +goose Up
CREATE INDEX refresh_tokens_subject ON refresh_tokens (subject, created_at);

-- +goose Down
DROP INDEX refresh_tokens_subject;
