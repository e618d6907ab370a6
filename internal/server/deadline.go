package server

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/opensts/sts/internal/storage"
)

// callDeadline is the request's call deadline (requestContext,
// docs/security.md F-40): a context.Context that behaves as
// context.WithDeadline's, except that its timer starts only when something
// asks for its Done channel. A storage call, an outgoing request or a wait
// asks for it and is bounded as before; a request that never waits on its
// context (a token grant served from the caches, with the audit event
// queued) costs no timer. Starting and stopping a timer for every request,
// and registering it with the request's context, was about 2 % of a
// client_credentials request's CPU (docs/performance.md).
type callDeadline struct {
	parent   context.Context
	deadline time.Time
	// detach is what a write detached from the request may take
	// (storage.Detach), answered by Value without a context of its own.
	detach storage.DetachBound

	once    sync.Once
	started atomic.Bool
	ctx     context.Context // context.WithDeadline(parent, deadline), once started
	cancel  context.CancelFunc
}

// withCallDeadline returns parent bounded by deadline (or by parent's own,
// if earlier). The caller must call stop when the request ends.
func withCallDeadline(parent context.Context, deadline time.Time) *callDeadline {
	if d, ok := parent.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	return &callDeadline{parent: parent, deadline: deadline}
}

// start makes the real deadline context, once.
func (c *callDeadline) start() context.Context {
	c.once.Do(func() {
		c.ctx, c.cancel = context.WithDeadline(c.parent, c.deadline)
		c.started.Store(true)
	})
	return c.ctx
}

// stop releases the timer, if it was started, and ends the context: a
// context never started becomes stoppedCtx, whose Done is closed, so a
// late user (a goroutine the request left behind) sees it canceled.
func (c *callDeadline) stop() {
	c.once.Do(func() {
		c.ctx, c.cancel = stoppedCtx, func() {}
		c.started.Store(true)
	})
	c.cancel()
}

// stoppedCtx stands in for a call deadline stopped before it started.
var stoppedCtx = func() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}()

func (c *callDeadline) Deadline() (time.Time, bool) { return c.deadline, true }

func (c *callDeadline) Done() <-chan struct{} { return c.start().Done() }

// Err is nil while the deadline is ahead and the parent is not done;
// otherwise it starts the context, so that Done is closed once Err says so.
func (c *callDeadline) Err() error {
	if !c.started.Load() && time.Now().Before(c.deadline) && c.parent.Err() == nil {
		return nil
	}
	return c.start().Err()
}

// Value answers from the started context once there is one (so that
// context.Cause finds it), else from the parent.
func (c *callDeadline) Value(key any) any {
	if _, ok := key.(storage.DetachBoundKey); ok && c.detach.Timeout > 0 {
		return c.detach
	}
	if c.started.Load() && c.ctx != stoppedCtx {
		return c.ctx.Value(key)
	}
	return c.parent.Value(key)
}

// AfterFunc lets a child context register with the deadline without a
// goroutine of its own (the context package looks for this method).
func (c *callDeadline) AfterFunc(f func()) (stop func() bool) {
	return context.AfterFunc(c.start(), f)
}

func (c *callDeadline) String() string { return "server.callDeadline" }
