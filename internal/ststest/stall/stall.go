// Package stall is the two halves of a client-gone test: a storage call
// held until its caller goes away, and a caller that goes away once the
// call is held (docs/security.md F-107, F-110, F-111). It depends on
// nothing else of sts, so any package's tests can use it.
package stall

import "context"

// Gate joins a held storage call to the caller that cancels it.
type Gate struct {
	entered chan struct{}
}

// New returns a Gate for one held call.
func New() *Gate {
	return &Gate{entered: make(chan struct{}, 1)}
}

// Hold tells the gate the call was entered, waits until ctx, the
// request's context, ends, and returns its error, as a store whose read
// was cut off by its caller does.
func (g *Gate) Hold(ctx context.Context) error {
	g.entered <- struct{}{}
	<-ctx.Done()
	return ctx.Err()
}

// Context returns a context of parent's that is canceled once Hold is
// entered: the client goes away while its request waits on storage.
func (g *Gate) Context(parent context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(parent)
	go func() {
		select {
		case <-g.entered:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}
