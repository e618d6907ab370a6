package tokens_test

import (
	"testing"
	"time"

	"github.com/opensts/sts/internal/signer"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/ststest/sqlitetest"
	"github.com/opensts/sts/internal/tokens"
)

// TestStoreRevocations checks the storage-backed revocation list:
// "jti:<jti>" revokes one token, "sub:<sub>" every token of the subject
// issued up to IssuedBefore (docs/security.md T-62, D-04).
func TestStoreRevocations(t *testing.T) {
	s := sqlitetest.NewStore(t)
	f := newFixture(t, signer.ES256)
	f.verifier.Revocations = tokens.StoreRevocations{Store: s}
	c := f.claims()
	tok1, c1, _ := f.issuer.MintAccessToken(t.Context(), c)
	tok2, _, _ := f.issuer.MintAccessToken(t.Context(), c)
	for _, tok := range []string{tok1, tok2} {
		if _, err := f.verifier.VerifyAccessToken(t.Context(), tok, testAud); err != nil {
			t.Fatalf("before revocation: %v", err)
		}
	}
	put := func(r storage.Revocation) {
		r.CreatedAt, r.ExpiresAt = storage.Now(t0), storage.Now(t0.Add(time.Hour))
		if err := s.PutRevocation(t.Context(), r); err != nil {
			t.Fatal(err)
		}
	}
	put(storage.Revocation{ID: tokens.RevocationIDJTI(c1.ID), Reason: "test"})
	if _, err := f.verifier.VerifyAccessToken(t.Context(), tok1, testAud); tokens.Reason(err) != "token_revoked" {
		t.Errorf("revoked jti: err = %v, want token_revoked", err)
	}
	if _, err := f.verifier.VerifyAccessToken(t.Context(), tok2, testAud); err != nil {
		t.Errorf("another jti of the same subject: %v", err)
	}
	// Revoke everything the subject got up to (and within) this second.
	put(storage.Revocation{ID: tokens.RevocationIDSubject(c.Subject), IssuedBefore: storage.Now(t0), Reason: "test"})
	if _, err := f.verifier.VerifyAccessToken(t.Context(), tok2, testAud); tokens.Reason(err) != "token_revoked" {
		t.Errorf("subject revoked: err = %v, want token_revoked", err)
	}
	f.clock.t = t0.Add(2 * time.Second)
	tok3, _, _ := f.issuer.MintAccessToken(t.Context(), c)
	if _, err := f.verifier.VerifyAccessToken(t.Context(), tok3, testAud); err != nil {
		t.Errorf("token issued after the subject revocation: %v", err)
	}
}

// TestStoreRevocationsByGrant: "grant:<family>" revokes every token that
// names the family in grant_id, and no other (docs/security.md A-32).
func TestStoreRevocationsByGrant(t *testing.T) {
	s := sqlitetest.NewStore(t)
	f := newFixture(t, signer.ES256)
	f.verifier.Revocations = tokens.StoreRevocations{Store: s}
	mint := func(grant string) string {
		c := f.claims()
		c.GrantID = grant
		tok, _, err := f.issuer.MintAccessToken(t.Context(), c)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	inFamily, inFamily2, otherFamily, noFamily := mint("fam-1"), mint("fam-1"), mint("fam-2"), mint("")
	if err := s.PutRevocation(t.Context(), tokens.GrantRevocation("fam-1", "test", t0, 0)); err != nil {
		t.Fatal(err)
	}
	for _, tok := range []string{inFamily, inFamily2} {
		if _, err := f.verifier.VerifyAccessToken(t.Context(), tok, testAud); tokens.Reason(err) != "token_revoked" {
			t.Errorf("token of the revoked family: err = %v, want token_revoked", err)
		}
	}
	for _, tok := range []string{otherFamily, noFamily} {
		if _, err := f.verifier.VerifyAccessToken(t.Context(), tok, testAud); err != nil {
			t.Errorf("token of another family or none: %v", err)
		}
	}
	if r, err := s.GetRevocation(t.Context(), tokens.RevocationIDGrant("fam-1")); err != nil || !r.ExpiresAt.Equal(storage.Now(t0.Add(tokens.DefaultMaxLifetime+tokens.DefaultLeeway))) {
		t.Errorf("grant revocation row = %+v, %v: want it kept as long as the longest token lives by default", r, err)
	}
	if r := tokens.GrantRevocation("fam-1", "test", t0, 49*time.Hour); !r.ExpiresAt.Equal(storage.Now(t0.Add(49 * time.Hour))) {
		t.Errorf("grant revocation with a keep of 49 h expires at %v", r.ExpiresAt)
	}
}

// TestStoreRevocationsBySourceToken: revoking one of our tokens ends every
// token exchanged from it, at any depth (src_jti: re-exchange and
// delegation), and nothing else (docs/security.md A-36).
func TestStoreRevocationsBySourceToken(t *testing.T) {
	s := sqlitetest.NewStore(t)
	f := newFixture(t, signer.ES256)
	f.verifier.Revocations = tokens.StoreRevocations{Store: s}
	mint := func(src ...string) (string, string) {
		c := f.claims()
		c.SourceJTIs = src
		tok, c, err := f.issuer.MintAccessToken(t.Context(), c)
		if err != nil {
			t.Fatal(err)
		}
		return tok, c.ID
	}
	root, rootJTI := mint()
	child, childJTI := mint(rootJTI)
	grandchild, _ := mint(rootJTI, childJTI)
	sibling, _ := mint("another-jti")
	if err := s.PutRevocation(t.Context(), storage.Revocation{ID: tokens.RevocationIDJTI(childJTI), Reason: "test",
		CreatedAt: storage.Now(t0), ExpiresAt: storage.Now(t0.Add(time.Hour))}); err != nil {
		t.Fatal(err)
	}
	for _, tok := range []string{child, grandchild} {
		if _, err := f.verifier.VerifyAccessToken(t.Context(), tok, testAud); tokens.Reason(err) != "token_revoked" {
			t.Errorf("token exchanged from a revoked token: err = %v, want token_revoked", err)
		}
	}
	for _, tok := range []string{root, sibling} {
		if _, err := f.verifier.VerifyAccessToken(t.Context(), tok, testAud); err != nil {
			t.Errorf("the revoked token's source, or a token of another source: %v", err)
		}
	}
}

// TestStoreRevocationsByClientSubject: "client_sub:…" (a withdrawn
// consent) revokes a person's tokens of that client issued up to the
// withdrawal, and nothing else: other clients', later ones (a new
// consent), and tokens of a principal that is not a person.
func TestStoreRevocationsByClientSubject(t *testing.T) {
	s := sqlitetest.NewStore(t)
	f := newFixture(t, signer.ES256)
	f.verifier.Revocations = tokens.StoreRevocations{Store: s}
	mint := func(client, principal string, sourceClients ...string) string {
		c := f.claims()
		c.ClientID, c.Principal, c.SourceClientIDs = client, principal, sourceClients
		tok, _, err := f.issuer.MintAccessToken(t.Context(), c)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	sub := f.claims().Subject
	appToken, otherApp, service := mint("app", "USER"), mint("other", "USER"), mint("app", "SERVICE_ACCOUNT")
	// Another client re-exchanged the application's token: the consent
	// withdrawn from the application ends it too (src_client_id).
	laundered, reissued := mint("other", "USER", "app"), mint("app", "USER", "other")
	if err := s.PutRevocation(t.Context(), tokens.ClientSubjectRevocation("app", sub, "test", t0, 0)); err != nil {
		t.Fatal(err)
	}
	for name, tok := range map[string]string{"the application's": appToken, "another client's, re-exchanged from the application's": laundered,
		"the application's, re-exchanged from another client's": reissued} {
		if _, err := f.verifier.VerifyAccessToken(t.Context(), tok, testAud); tokens.Reason(err) != "token_revoked" {
			t.Errorf("%s token for the person: err = %v, want token_revoked", name, err)
		}
	}
	for name, tok := range map[string]string{"another application's": otherApp, "a service account's": service} {
		if _, err := f.verifier.VerifyAccessToken(t.Context(), tok, testAud); err != nil {
			t.Errorf("%s token: %v", name, err)
		}
	}
	f.clock.t = t0.Add(2 * time.Second)
	if _, err := f.verifier.VerifyAccessToken(t.Context(), mint("app", "USER"), testAud); err != nil {
		t.Errorf("a token issued after the withdrawal (a new consent): %v", err)
	}
	if tokens.RevocationIDClientSubject("a:b", "c") == tokens.RevocationIDClientSubject("a", "b:c") {
		t.Error("client and subject pairs collide in the revocation ID")
	}
}
