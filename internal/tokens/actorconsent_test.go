package tokens_test

import (
	"testing"
	"time"

	"github.com/opensts/sts/internal/signer"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/ststest/sqlitetest"
	"github.com/opensts/sts/internal/tokens"
)

// TestActorsConsentEndsDelegations: a person's consent to client A
// withdrawn (a client_sub: row) ends a token that acts with the person as
// actor (act, the actor token issued to client A, or re-exchanged from
// one of client A's), or that an actor token acting as the person was
// exchanged into (a second hop: the person only in src_sub), issued up to
// the withdrawal, and a refresh family begun from such a delegation
// before it; it leaves a token or family of the same subject without that
// person, a delegation issued after the withdrawal, and an external actor
// or one through a pool (no consent) of the same sub alone
// (docs/security.md A-69).
func TestActorsConsentEndsDelegations(t *testing.T) {
	s := sqlitetest.NewStore(t)
	ctx := t.Context()
	f := newFixture(t, signer.ES256)
	f.verifier.Revocations = tokens.StoreRevocations{Store: s}
	// Registered clients' IDs are UUIDs; a pool's provider is not one.
	clientA, clientB, clientC, clientX := storage.NewID(), storage.NewID(), storage.NewID(), storage.NewID()
	if err := s.PutRevocation(ctx, tokens.ClientSubjectRevocation(clientA, "person", "consent withdrawn", t0, time.Hour)); err != nil {
		t.Fatal(err)
	}
	person := &tokens.Actor{Issuer: "https://sts.example", Subject: "person", ClientID: clientA}
	relayed := &tokens.Actor{Issuer: "https://sts.example", Subject: "person", ClientID: clientC} // client C re-exchanged client A's token
	external := &tokens.Actor{Issuer: "https://ci.example", Subject: "person"}
	pooled := &tokens.Actor{Issuer: "https://sts.example", Subject: "person", ClientID: "pools/p/providers/x"}
	// The actor token of a second hop: the service's first delegation,
	// in which the person acted (its act is not kept; src_sub names them).
	service := &tokens.Actor{Issuer: "https://sts.example", Subject: "svc", ClientID: clientB}
	claims := func(act *tokens.Actor, sourceClients ...string) tokens.AccessClaims {
		c := f.claims()
		c.Principal, c.ClientID, c.Act, c.SourceClientIDs = string(storage.PrincipalServiceAccount), clientB, act, sourceClients
		return c
	}
	secondHop := func(sourceSubjects ...string) tokens.AccessClaims {
		c := claims(service, clientA)
		c.Subject, c.SourceSubjects = "svc", sourceSubjects
		return c
	}
	for name, tc := range map[string]struct {
		claims  tokens.AccessClaims
		revoked bool
	}{
		"the person as actor":                                   {claims(person, clientA), true},
		"the person as actor, an earlier one nested":            {claims(&tokens.Actor{Subject: "svc", ClientID: clientX, Act: person}, clientA), true},
		"the person as actor through another client's re-issue": {claims(relayed, clientC, clientA), true},
		"the person as the actor token's actor (src_sub)":       {secondHop("person"), true},
		"a second hop without the person":                       {secondHop("someone-else"), false},
		"no actor":                                              {claims(nil), false},
		"an external actor with the person's ID as its subject": {claims(external), false},
		"an actor through a pool, the person's ID as subject":   {claims(pooled, clientA), false},
	} {
		tok, _, err := f.issuer.MintAccessToken(ctx, tc.claims)
		if err != nil {
			t.Fatal(err)
		}
		_, err = f.verifier.VerifyAccessToken(ctx, tok, testAud)
		if got := tokens.Reason(err) == "token_revoked"; got != tc.revoked || (!tc.revoked && err != nil) {
			t.Errorf("%s: access token err = %v, want revoked %v", name, err, tc.revoked)
		}
		tm := tokens.NewFamilyTemplate(tc.claims, t0.Add(time.Minute), t0.Add(-time.Minute))
		if revoked, err := tokens.FamilySourceRevoked(ctx, s, &tm, "fam", t0.Add(time.Minute)); err != nil || revoked != tc.revoked {
			t.Errorf("%s: family begun from it revoked = %v, %v; want %v", name, revoked, err, tc.revoked)
		}
	}
	// Issued after the withdrawal (the person consented again): alive.
	f.clock.t = t0.Add(2 * time.Second)
	later := claims(person, clientA)
	tok, _, err := f.issuer.MintAccessToken(ctx, later)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.verifier.VerifyAccessToken(ctx, tok, testAud); err != nil {
		t.Errorf("a delegation issued after the withdrawal: %v", err)
	}
	tm := tokens.NewFamilyTemplate(later, t0.Add(time.Minute), t0.Add(2*time.Second))
	if revoked, err := tokens.FamilySourceRevoked(ctx, s, &tm, "fam", t0.Add(time.Minute)); err != nil || revoked {
		t.Errorf("a family begun from tokens issued after the withdrawal: revoked = %v, %v", revoked, err)
	}
}
