package pat_test

import (
	"context"
	"testing"
	"time"

	"github.com/opensts/sts/internal/audit"
	"github.com/opensts/sts/internal/pat"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/sts"
)

// ownerStall holds the first owner lookup until released, so an
// Authenticate that has read the PAT row is still in flight.
type ownerStall struct {
	storage.Store
	armed            bool
	entered, release chan struct{}
}

func (o *ownerStall) GetPrincipal(ctx context.Context, id string) (storage.Principal, error) {
	if o.armed {
		o.armed = false
		close(o.entered)
		<-o.release
	}
	return o.Store.GetPrincipal(ctx, id)
}

// TestDeleteWinsOverAnAuthenticationInFlight: an Authenticate that read
// the PAT row before a Delete committed must not cache it after the
// Delete evicted it, or the deleted secret would work again on the
// replica that deleted it for the cache's TTL (docs/api.md: a deleted
// token fails at once on this replica).
func TestDeleteWinsOverAnAuthenticationInFlight(t *testing.T) {
	base := newSQLiteStore(t)
	f := newFixture(t, base)
	c := audit.Caller{Actor: "principal:" + f.user.ID}
	p, secret, err := f.svc.Create(t.Context(), c, pat.CreateInput{OwnerID: f.user.ID, Scopes: []string{pat.ScopeFull},
		ExpiresAt: f.clock.Now().Add(30 * 24 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	st := &ownerStall{Store: base, armed: true, entered: make(chan struct{}), release: make(chan struct{})}
	svc, err := pat.NewService(st, testPepper)
	if err != nil {
		t.Fatal(err)
	}
	svc.Now = f.clock.Now
	inFlight := make(chan error, 1)
	go func() { _, err := svc.Authenticate(context.Background(), secret); inFlight <- err }()
	<-st.entered
	if err := svc.Delete(t.Context(), c, f.user.ID, p.ID); err != nil {
		t.Fatal(err)
	}
	close(st.release)
	<-inFlight // it began before the delete: either answer is honest
	if _, err := svc.Authenticate(t.Context(), secret); sts.ErrorCode(err) != sts.Unauthenticated {
		t.Errorf("Authenticate after Delete returned, on the replica that deleted: err = %v, want the secret refused", err)
	}
}
