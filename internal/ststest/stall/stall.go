// Package stall is the two halves of a client-gone test: a storage call
// held until its caller goes away, and a caller that goes away once the
// call is held (docs/security.md F-107, F-110, F-111). It depends on
// nothing else of sts, so any package's tests can use it.
package stall

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
)

// Gate joins a held storage call to the caller that cancels it.
type Gate struct {
	entered chan struct{}
	down    bool
}

// New returns a Gate for one held call.
func New() *Gate {
	return &Gate{entered: make(chan struct{}, 1)}
}

// ErrDown is what Hold returns at once on a Gate from For(true).
var ErrDown = errors.New("database is down")

// For returns New(), or when down a Gate whose Hold fails at once with
// ErrDown, as a store that is down for a caller still there does.
func For(down bool) *Gate {
	g := New()
	g.down = down
	return g
}

// Hold tells the gate the call was entered, waits until ctx, the
// request's context, ends, and returns its error, as a store whose read
// was cut off by its caller does.
func (g *Gate) Hold(ctx context.Context) error {
	if g.down {
		return ErrDown
	}
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

// Call sends req, whose context is one of a Gate's, and reports as t's
// errors an ending a client-gone test does not want: with storage down
// (down) the answer must be 503; with the call held, no answer but the
// client's own cancel. what names the case in the messages.
func Call(t testing.TB, req *http.Request, down bool, what string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	switch {
	case down && (err != nil || resp.StatusCode != http.StatusServiceUnavailable):
		t.Errorf("%s, storage down: %v, %v; want 503", what, resp, err)
	case !down && err == nil:
		t.Errorf("%s stalled: the call was answered %d; want the client's own cancel", what, resp.StatusCode)
	}
	if err == nil {
		resp.Body.Close()
	}
}

// Logged reports, as t's error, logs holding line (the ERROR line an
// operator reads as an outage) though storage was not down, or lacking it
// though it was. Call it once the server has closed, so the handler's
// logging is done.
func Logged(t testing.TB, logs, line string, down bool, what string) {
	t.Helper()
	if logged := strings.Contains(logs, line); logged != down {
		t.Errorf("%s, storage down %v: logged as an error %v, want %v:\n%s", what, down, logged, down, logs)
	}
}
