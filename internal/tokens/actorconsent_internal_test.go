package tokens

import (
	"fmt"
	"slices"
	"testing"

	"github.com/opensts/sts/internal/storage"
)

// TestActorConsentIDsOnlyRegisteredClients: the withdrawn-consent rows a
// delegation looks up pair its people only with registered clients (UUID
// client IDs): a machine-only chain, every actor through a pool and the
// token's own client a pool's provider, adds no key to the lookup however
// long its src_client_id, and a person in src_sub is paired with each
// registered client once (docs/security.md A-69).
func TestActorConsentIDsOnlyRegisteredClients(t *testing.T) {
	var act *Actor
	for i := range 5 {
		act = &Actor{Subject: fmt.Sprintf("svc-%d", i), ClientID: fmt.Sprintf("pools/p%d/providers/x", i), Act: act}
	}
	c := &AccessClaims{ClientID: "pools/p/providers/x", Act: act}
	for range 16 {
		c.SourceClientIDs = append(c.SourceClientIDs, storage.NewID())
	}
	if ids := actorConsentIDs(c); len(ids) != 0 {
		t.Errorf("a chain of actors through pools: %d keys, want none", len(ids))
	}

	a, b := storage.NewID(), storage.NewID()
	c = &AccessClaims{ClientID: "sts-api", SourceClientIDs: []string{a, "pat", b, a}, SourceSubjects: []string{"person"},
		Act: &Actor{Subject: "svc", ClientID: "pools/p/providers/x"}}
	want := []string{RevocationIDClientSubject(a, "person"), RevocationIDClientSubject(b, "person")}
	if ids := actorConsentIDs(c); !slices.Equal(ids, want) {
		t.Errorf("a person in src_sub, clients %v: keys %v, want %v", c.SourceClientIDs, ids, want)
	}
}
