package storage

import (
	"context"
	"time"
)

// DetachedTimeout bounds a storage call made with [Detach] from a context
// that carries no [DetachBound] (no request's: a test, a command): the
// default of storage.call_timeout.
const DetachedTimeout = 5 * time.Second

// DetachMinimum is the least time a detached write is given (or
// storage.call_timeout when that is shorter), even when the moment
// http.write_timeout leaves for the response has passed: a write on a
// healthy database takes milliseconds, a loaded one's commit and a
// connection from the pool well under a second, and a write detached from
// a request is one that must happen (a revocation row kept until its
// family expires, docs/security.md T-160; an admin create undone). The
// response matters less: on a database that stopped answering it may then
// be cut off by the write deadline (docs/reliability.md "Bounded storage
// calls"). One second adds little to the wait of a request whose database
// is gone.
const DetachMinimum = time.Second

// DetachBound is what a request allows a write detached from it
// (docs/reliability.md "Bounded storage calls"): the server's middleware
// sets it on every request with a call deadline.
type DetachBound struct {
	// Timeout is storage.call_timeout: a detached write has as long as
	// any of the request's own calls.
	Timeout time.Duration
	// Latest, unless zero, is when the write must have ended so that
	// the response still goes out before the connection's write deadline
	// (http.write_timeout) cuts it off.
	Latest time.Time
}

// DetachBoundKey is the context key under which a request carries its
// [DetachBound]; its value is a DetachBound.
type DetachBoundKey struct{}

// WithDetachBound returns ctx carrying b, which [Detach] honours.
func WithDetachBound(ctx context.Context, b DetachBound) context.Context {
	return context.WithValue(ctx, DetachBoundKey{}, b)
}

// Detach returns ctx without its cancellation and its deadline (its values
// kept), bounded by a deadline of its own: the request's
// storage.call_timeout from now, but not past the moment the response
// must start to beat http.write_timeout (the [DetachBound] ctx carries;
// [DetachedTimeout] from now without one), unless that leaves less than
// [DetachMinimum]: the write matters more than the answer. It is for a
// write a request makes even when its own wait has ended: a cleanup after
// a failed call (often failed because storage stopped answering), or one
// that must not be cut short by a client that went away. A bare
// context.WithoutCancel had no deadline, so on a database that stopped
// answering such a write, and the request, waited until TCP gave up on
// the connection; a fixed bound longer than what the write deadline left
// made the 503 arrive as a closed connection; a deadline already past
// skipped the write on a healthy database (docs/reliability.md "Bounded
// storage calls", docs/security.md F-87). Call cancel when the write is
// done.
func Detach(ctx context.Context) (context.Context, context.CancelFunc) {
	b, ok := ctx.Value(DetachBoundKey{}).(DetachBound)
	if !ok || b.Timeout <= 0 {
		b.Timeout = DetachedTimeout
	}
	now := time.Now()
	deadline := now.Add(b.Timeout)
	if !b.Latest.IsZero() && b.Latest.Before(deadline) {
		deadline = b.Latest
	}
	// Never less than DetachMinimum (call_timeout if shorter): the
	// request's own call may have used all the time Latest left, and the
	// write must still be tried.
	if floor := now.Add(min(b.Timeout, DetachMinimum)); deadline.Before(floor) {
		deadline = floor
	}
	return context.WithDeadline(context.WithoutCancel(ctx), deadline)
}
