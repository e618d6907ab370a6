package pat_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/opensts/sts/internal/pat"
	"github.com/opensts/sts/internal/storage"
)

// regenBetween is storage that runs between once, right after the first
// GetPATByDigest: a regenerate committed between a leak report's lookup
// and its deletion.
type regenBetween struct {
	storage.Store
	between func()
}

func (s *regenBetween) GetPATByDigest(ctx context.Context, d []byte) (storage.PAT, error) {
	p, err := s.Store.GetPATByDigest(ctx, d)
	if f := s.between; f != nil {
		s.between = nil
		f()
	}
	return p, err
}

// TestRevokeLeakedSparesARegeneratedToken: a leak report names a secret
// its owner is replacing just then (the owner saw the leak first and
// regenerated the token). The report found the PAT by the leaked secret's
// digest and then deleted it by ID, so a regenerate committed in between
// was deleted with it: the secret the owner had just copied into CI
// stopped working, and the token was gone, though the leaked secret was
// already dead. Only the PAT that still has the reported secret is
// deleted (docs/security.md T-173).
func TestRevokeLeakedSparesARegeneratedToken(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			ctx := t.Context()
			st := &regenBetween{Store: b.open(t)}
			f := newFixture(t, st)
			exp := f.clock.Now().Add(30 * 24 * time.Hour)
			p, leaked, err := f.svc.Create(ctx, caller, pat.CreateInput{OwnerID: f.user.ID, Description: "ci", Scopes: []string{pat.ScopeFull}, ExpiresAt: exp})
			if err != nil {
				t.Fatal(err)
			}
			var fresh string
			st.between = func() {
				if _, fresh, err = f.svc.Regenerate(ctx, caller, f.user.ID, p.ID, exp); err != nil {
					t.Fatalf("Regenerate: %v", err)
				}
			}
			if _, err := f.svc.RevokeLeaked(ctx, pat.Digest(testPepper, leaked)); !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("RevokeLeaked of a secret replaced meanwhile = %v, want storage.ErrNotFound (nothing to revoke)", err)
			}
			if _, err := f.svc.Authenticate(ctx, fresh); err != nil {
				t.Errorf("the secret that replaced the leaked one: %v, want it working", err)
			}
			if _, err := f.svc.Authenticate(ctx, leaked); err == nil {
				t.Error("the leaked secret works")
			}
			// The report itself still revokes the token it names.
			if _, err := f.svc.RevokeLeaked(ctx, pat.Digest(testPepper, fresh)); err != nil {
				t.Fatalf("RevokeLeaked: %v", err)
			}
			if _, err := f.store.GetPAT(ctx, p.ID); !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("the PAT reported leaked: %v, want deleted", err)
			}
		})
	}
}
