// Package audit writes and reads audit events. Writer.Record queues an
// event without putting a database commit on the request path (a full
// buffer drops and counts) while Run flushes batches in the background;
// Writer.Append is the synchronous path for secret-disclosing operations,
// which must fail rather than proceed unaudited (docs/security.md D-08, F-17).
// List pages through stored events for sts.v1.AuditService and
// `sts audit list` alike.
//
// It depends on internal/storage only (for storage.AuditStore).
package audit
