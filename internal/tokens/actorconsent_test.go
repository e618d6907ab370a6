package tokens_test

import (
	"testing"
	"time"

	"github.com/opensts/sts/internal/signer"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/ststest/sqlitetest"
	"github.com/opensts/sts/internal/tokens"
)

// TestActorsConsentEndsDelegations: a person's consent to client-a
// withdrawn (a client_sub: row) ends a token that acts with the person as
// actor (act, the actor token issued to client-a, or re-exchanged from
// one of client-a's), issued up to the withdrawal, and a refresh family
// begun from such a delegation before it; it leaves a token or family of
// the same subject without that actor, a delegation issued after the
// withdrawal, and an external actor of the same sub alone
// (docs/security.md A-69).
func TestActorsConsentEndsDelegations(t *testing.T) {
	s := sqlitetest.NewStore(t)
	ctx := t.Context()
	f := newFixture(t, signer.ES256)
	f.verifier.Revocations = tokens.StoreRevocations{Store: s}
	if err := s.PutRevocation(ctx, tokens.ClientSubjectRevocation("client-a", "person", "consent withdrawn", t0, time.Hour)); err != nil {
		t.Fatal(err)
	}
	person := &tokens.Actor{Issuer: "https://sts.example", Subject: "person", ClientID: "client-a"}
	relayed := &tokens.Actor{Issuer: "https://sts.example", Subject: "person", ClientID: "client-c"} // client-c re-exchanged client-a's token
	external := &tokens.Actor{Issuer: "https://ci.example", Subject: "person"}
	claims := func(act *tokens.Actor, sourceClients ...string) tokens.AccessClaims {
		c := f.claims()
		c.Principal, c.ClientID, c.Act, c.SourceClientIDs = string(storage.PrincipalServiceAccount), "client-b", act, sourceClients
		return c
	}
	for name, tc := range map[string]struct {
		claims  tokens.AccessClaims
		revoked bool
	}{
		"the person as actor":                                   {claims(person, "client-a"), true},
		"the person as actor, an earlier one nested":            {claims(&tokens.Actor{Subject: "svc", ClientID: "client-x", Act: person}, "client-a"), true},
		"the person as actor through another client's re-issue": {claims(relayed, "client-c", "client-a"), true},
		"no actor": {claims(nil), false},
		"an external actor with the person's ID as its subject": {claims(external), false},
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
	later := claims(person, "client-a")
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
