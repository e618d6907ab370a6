package introspect_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/opensts/sts/internal/introspect"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/ststest/stall"
)

// stallingRevocations holds the revocation read until the request's
// context ends, after telling its gate.
type stallingRevocations struct {
	storage.RevocationStore
	gate *stall.Gate
}

func (s stallingRevocations) GetRevocations(ctx context.Context, ids ...string) ([]storage.Revocation, error) {
	return nil, s.gate.Hold(ctx)
}

// TestClientGoneIsNotAnOutage: a caller that goes away while its
// introspection waits on storage is not logged as "introspection
// unavailable" at ERROR, the line an operator reads as a database outage
// (docs/security.md F-107); storage that fails for a caller still there
// is (TestHandlerStorageDown).
func TestClientGoneIsNotAnOutage(t *testing.T) {
	gate := stall.New()
	f := newFixture(t, func(s storage.Store) storage.RevocationStore { return stallingRevocations{s, gate} })
	now := time.Now()
	valid, _ := f.mint(t, f.keys, now, now.Add(10*time.Minute))
	ctx, cancel := gate.Context(t.Context())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "POST", f.srv.URL+introspect.Path, strings.NewReader(tokenForm(valid)))
	req.Header.Set("Content-Type", form)
	req.SetBasicAuth("a", f.secretA)
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("the call was answered %d; want the client's own cancel", resp.StatusCode)
	}
	f.srv.Close() // waits for the handler to return
	if s := f.logs.String(); strings.Contains(s, "level=ERROR") {
		t.Errorf("a caller that went away was logged as an error:\n%s", s)
	}
}
