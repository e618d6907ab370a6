package revoke_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/opensts/sts/internal/revoke"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/ststest/stall"
)

// stallingRevocations holds PutRevocation until the request's context
// ends, after telling its gate (which fails it at once when storage is
// down).
type stallingRevocations struct {
	storage.Store
	gate *stall.Gate
}

func (s stallingRevocations) PutRevocation(ctx context.Context, r storage.Revocation) error {
	return s.gate.Hold(ctx)
}

// TestClientGoneIsNotAnOutage: a client that goes away while its
// revocation is written is not logged as "revocation not recorded" at
// ERROR, the line an operator reads as a database outage; a write that
// fails for a client still there is, and answers 503 (docs/security.md
// F-111, T-64).
func TestClientGoneIsNotAnOutage(t *testing.T) {
	for _, down := range []bool{false, true} {
		gate := stall.For(down)
		f := newFixture(t, func(s storage.Store) revoke.Store { return stallingRevocations{s, gate} })
		own, _ := f.mint(t, f.keys, "a")
		ctx, cancel := gate.Context(t.Context())
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, f.srv.URL+revoke.Path, strings.NewReader(tokenForm(own)))
		req.Header.Set("Content-Type", form)
		req.SetBasicAuth("a", f.secretA)
		stall.Call(t, req, down, "revoke")
		cancel()
		f.srv.Close() // waits for the handler to return
		stall.Logged(t, f.logs.String(), "level=ERROR", down, "revoke")
	}
}
