package storage

import (
	"context"
	"time"
)

// DetachedTimeout bounds a storage call made with [Detach]: the default
// of storage.call_timeout, the bound a request's own calls have.
const DetachedTimeout = 5 * time.Second

// Detach returns ctx without its cancellation and its deadline (its values
// kept), bounded by a deadline of its own, [DetachedTimeout] from now. It
// is for a write a request makes even when its own wait has ended: a
// cleanup after a failed call (often failed because storage stopped
// answering), or one that must not be cut short by a client that went
// away. A bare context.WithoutCancel had no deadline, so on a database
// that stopped answering such a write, and the request, waited until TCP
// gave up on the connection (docs/reliability.md "Bounded storage
// calls", docs/security.md F-90). Call cancel when the write is done.
func Detach(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), DetachedTimeout)
}
