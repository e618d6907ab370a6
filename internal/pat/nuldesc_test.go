package pat_test

import (
	"testing"
	"time"

	"github.com/opensts/sts/internal/pat"
	"github.com/opensts/sts/internal/sts"
)

// TestDescriptionNotText (docs/security.md T-108): a description with a
// NUL character, or bytes that are not UTF-8, is invalid_argument on both
// backends, whether it comes through the Connect API or the /tokens page
// (which calls the service directly). PostgreSQL refuses such text, so
// the create failed there as a storage error while SQLite stored it.
func TestDescriptionNotText(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			f := newFixture(t, b.open(t))
			for _, desc := range []string{"x\x00y", "x\xffy"} {
				_, _, err := f.svc.Create(t.Context(), caller, pat.CreateInput{OwnerID: f.user.ID, Description: desc,
					Scopes: []string{pat.ScopeFull}, ExpiresAt: f.clock.Now().Add(48 * time.Hour)})
				if sts.ErrorCode(err) != sts.Invalid {
					t.Errorf("Create(description %q) = %v, want invalid_argument", desc, err)
				}
			}
		})
	}
}
