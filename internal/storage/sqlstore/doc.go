// Package sqlstore is the SQL implementation of storage.Store: SQLite
// (modernc.org/sqlite, no cgo; WAL with synchronous=FULL) for a single node
// and PostgreSQL (pgx) for replicas, with embedded goose migrations per
// dialect. It uses plain database/sql with one set of `$n` queries that
// both dialects accept, because the schema is small and dialect-neutral
// queries with sentinel translation in one place (errors.go) were simpler
// than two sqlc outputs behind an adapter. It imports only internal/storage
// from this module and no metrics library; Config.OnError is the hook.
package sqlstore
