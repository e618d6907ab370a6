// Package audit writes audit events without putting a database commit on
// the request path: Writer.Record queues an event and never blocks (a full
// buffer drops and counts), while Run flushes batches in the background.
// Writer.Append is the synchronous path for secret-disclosing operations,
// which must fail rather than proceed unaudited (SECURITY c.1(8), F17).
//
// It depends on internal/storage only (for storage.AuditStore).
package audit
