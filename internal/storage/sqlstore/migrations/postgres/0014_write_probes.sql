-- One row per server process, rewritten by its write-path readiness probe
-- (docs/reliability.md#write-path-readiness); garbage collection removes
-- the rows of processes silent for a day.
-- +goose Up
CREATE TABLE write_probes (
    id        TEXT PRIMARY KEY,
    probed_at TIMESTAMPTZ NOT NULL
);

-- +goose Down
DROP TABLE write_probes;
