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

// TestActorConsentIDsBound: the client_sub keys one revocation check
// reads for the people acting in a token are at most 17 × 17 = 289
// (docs/security.md A-69): at most 16 principals in src_sub and the
// token's own subject as an actor of its own chain, paired with its own
// client and at most 16 in src_client_id, which hold every actor's
// client (an actor of ours came through a token of ours, whose client is
// the token's or in its src_client_id). Exchanges refuse longer source
// lists (derivation_too_deep), so this worst case is the bound.
func TestActorConsentIDsBound(t *testing.T) {
	const maxList = 16 // src_sub and src_client_id, as the exchanges cap them
	c := &AccessClaims{Subject: "person", ClientID: storage.NewID(), Principal: string(storage.PrincipalUser)}
	for i := range maxList {
		c.SourceSubjects = append(c.SourceSubjects, fmt.Sprintf("p%02d", i))
		c.SourceClientIDs = append(c.SourceClientIDs, storage.NewID())
	}
	// A delegation chain (5, the default depth) of actors of ours: the
	// subject itself, and principals already in src_sub, through clients
	// the token already names.
	c.Act = &Actor{Subject: "person", ClientID: c.SourceClientIDs[0]}
	for i := range 4 {
		c.Act = &Actor{Subject: c.SourceSubjects[i], ClientID: c.SourceClientIDs[i+1], Act: c.Act}
	}
	ids := actorConsentIDs(c)
	if want := (maxList + 1) * (maxList + 1); len(ids) != want {
		t.Errorf("worst case: %d client_sub keys, want the documented bound %d", len(ids), want)
	}
	if distinct := slices.Compact(slices.Sorted(slices.Values(ids))); len(distinct) != len(ids) {
		t.Errorf("%d keys, %d distinct", len(ids), len(distinct))
	}
}
