package pat_test

import (
	"testing"

	"github.com/opensts/sts/internal/storage"
)

// TestPATOwnerReenabledElsewhere: a refusal is never taken from the
// cache. An owner disabled on another replica is refused once this
// node's cached copy says so or its TTL has passed; re-enabled there, the
// PAT works again at once here, not after the TTL (docs/architecture.md:
// "re-enabled: at once").
func TestPATOwnerReenabledElsewhere(t *testing.T) {
	f := newFixture(t, newSQLiteStore(t))
	_, secret := f.create(t, "*")
	setDisabled := func(d bool) {
		t.Helper()
		// Straight to storage: another replica, or the CLI.
		if err := f.store.UpdatePrincipal(t.Context(), f.user.ID, func(p storage.Principal) (storage.Principal, error) {
			p.Disabled = d
			return p, nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	setDisabled(true)
	if _, err := f.svc.Authenticate(t.Context(), secret); err == nil {
		t.Fatal("a disabled owner's PAT authenticated")
	}
	setDisabled(false)
	if _, err := f.svc.Authenticate(t.Context(), secret); err != nil {
		t.Errorf("the owner re-enabled elsewhere, within the cache's TTL: %v, want accepted at once", err)
	}
}
