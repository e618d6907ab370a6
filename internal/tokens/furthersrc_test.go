package tokens_test

import (
	"testing"
	"time"

	"github.com/opensts/sts/internal/signer"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/ststest/sqlitetest"
	"github.com/opensts/sts/internal/tokens"
	"github.com/opensts/sts/internal/trust"
)

// TestStoreSourcesFurther: a token naming further sources (src_sub,
// src_pat, src_pool: what the actor of a delegation derives from) is
// refused once any of them goes, as for its own principal, PAT and pool,
// and accepted again when a principal or pool is re-enabled
// (docs/security.md A-46).
func TestStoreSourcesFurther(t *testing.T) {
	ctx := t.Context()
	s, subject := sourceStore(t, storage.PrincipalUser)
	actor := storage.Principal{ID: storage.NewID(), OrgID: "acme", Kind: storage.PrincipalRunner, Name: "runner", CreatedAt: t0}
	if err := s.CreatePrincipal(ctx, actor); err != nil {
		t.Fatal(err)
	}
	pat := sourcePAT(t, s, actor.ID)
	pools := fakePools{
		"github": {pool: &trust.Pool{Pool: storage.Pool{ID: "github", OrgID: "acme", Scopes: []string{"read", "write"}, PrincipalID: subject.ID}}},
		"ci":     {pool: &trust.Pool{Pool: storage.Pool{ID: "ci", OrgID: "elsewhere"}}}, // an actor's pool may be another organization's
		"off":    {err: &trust.Error{Reason: trust.ReasonPoolDisabled}},
		"down":   {err: &trust.Error{Reason: trust.ReasonUnavailable}},
	}
	f := newFixture(t, signer.ES256)
	src := tokens.NewStoreSources(s, pools)
	src.TTL, src.Now, src.Audiences = 0, f.clock.Now, []string{testAud}
	f.verifier.Sources = src
	verify := func(edit func(c *tokens.AccessClaims)) string {
		t.Helper()
		return f.reason(t, f.mintWith(t, func(c *tokens.AccessClaims) {
			c.Subject, c.OrgID, c.Principal = subject.ID, "acme", string(storage.PrincipalUser)
			c.SourceSubjects = []string{actor.ID}
			c.SourcePATs = []string{tokens.SourcePAT(pat.ID, tokens.PATGeneration(pat.Digest), "")}
			c.SourcePools = []string{tokens.SourcePool("github", "actions"), tokens.SourcePool("ci", "gitlab")}
			edit(c)
		}))
	}
	same := func(*tokens.AccessClaims) {}
	if r := verify(same); r != "" {
		t.Fatalf("every source alive: %s", r)
	}
	for name, tc := range map[string]struct {
		edit func(c *tokens.AccessClaims)
		want string
	}{
		"principal unknown": {func(c *tokens.AccessClaims) { c.SourceSubjects = append(c.SourceSubjects, storage.NewID()) }, "token_source_gone"},
		"PAT unknown":       {func(c *tokens.AccessClaims) { c.SourcePATs = []string{tokens.SourcePAT(storage.NewID(), "00", "")} }, "token_source_gone"},
		"PAT regenerated": {func(c *tokens.AccessClaims) {
			c.SourcePATs = []string{tokens.SourcePAT(pat.ID, "0011223344556677", "")}
		}, "token_source_gone"},
		"PAT entry malformed":   {func(c *tokens.AccessClaims) { c.SourcePATs = []string{pat.ID} }, "token_source_gone"},
		"pool disabled":         {func(c *tokens.AccessClaims) { c.SourcePools = append(c.SourcePools, tokens.SourcePool("off", "x")) }, "token_source_gone"},
		"pool entry malformed":  {func(c *tokens.AccessClaims) { c.SourcePools = []string{"github"} }, "token_source_gone"},
		"pool storage down":     {func(c *tokens.AccessClaims) { c.SourcePools = []string{tokens.SourcePool("down", "x")} }, "source_unavailable"},
		"actor is another kind": {func(c *tokens.AccessClaims) { c.SourceSubjects = []string{subject.ID, actor.ID} }, ""},
	} {
		if r := verify(tc.edit); r != tc.want {
			t.Errorf("%s: reason %q, want %q", name, r, tc.want)
		}
	}
	setDisabled := func(disabled bool) {
		t.Helper()
		if err := s.UpdatePrincipal(ctx, actor.ID, func(p storage.Principal) (storage.Principal, error) {
			p.Disabled = disabled
			return p, nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	setDisabled(true)
	if r := verify(same); r != "token_source_gone" {
		t.Errorf("the actor's principal disabled: reason %q, want token_source_gone", r)
	}
	setDisabled(false)
	if r := verify(same); r != "" {
		t.Errorf("the actor's principal enabled again: %s", r)
	}
	if err := s.DeletePAT(ctx, pat.ID); err != nil {
		t.Fatal(err)
	}
	if r := verify(same); r != "token_source_gone" {
		t.Errorf("the actor's PAT deleted: reason %q, want token_source_gone", r)
	}
}

// TestStoreRevocationsFurther: revoking a family named in src_grant, or
// every token of a principal named in src_sub up to now, ends the token;
// a subject revocation older than the token does not.
func TestStoreRevocationsFurther(t *testing.T) {
	s := sqlitetest.NewStore(t)
	f := newFixture(t, signer.ES256)
	f.verifier.Revocations = tokens.StoreRevocations{Store: s}
	mint := func(edit func(c *tokens.AccessClaims)) string { t.Helper(); return f.mintWith(t, edit) }
	fromFamily := mint(func(c *tokens.AccessClaims) { c.SourceGrants = []string{"fam-a"} })
	fromActor := mint(func(c *tokens.AccessClaims) { c.SourceSubjects = []string{"actor-1"} })
	other := mint(func(c *tokens.AccessClaims) {
		c.SourceGrants, c.SourceSubjects = []string{"fam-b"}, []string{"actor-2"}
	})
	for _, r := range []storage.Revocation{
		tokens.GrantRevocation("fam-a", "test", t0, 0),
		{ID: tokens.RevocationIDSubject("actor-1"), IssuedBefore: storage.Now(t0), Reason: "test",
			CreatedAt: storage.Now(t0), ExpiresAt: storage.Now(t0.Add(time.Hour))},
		{ID: tokens.RevocationIDSubject("actor-2"), IssuedBefore: storage.Now(t0.Add(-time.Minute)), Reason: "test",
			CreatedAt: storage.Now(t0), ExpiresAt: storage.Now(t0.Add(time.Hour))},
	} {
		if err := s.PutRevocation(t.Context(), r); err != nil {
			t.Fatal(err)
		}
	}
	for name, tok := range map[string]string{"its actor's family revoked": fromFamily, "its actor's tokens revoked": fromActor} {
		if _, err := f.verifier.VerifyAccessToken(t.Context(), tok, testAud); tokens.Reason(err) != "token_revoked" {
			t.Errorf("%s: err = %v, want token_revoked", name, err)
		}
	}
	if _, err := f.verifier.VerifyAccessToken(t.Context(), other, testAud); err != nil {
		t.Errorf("another family, and an actor revoked before the token was issued: %v", err)
	}
	c := f.claims()
	c.SourceGrants = []string{"fam-a"}
	if revoked, err := tokens.FamilySourceRevoked(t.Context(), s, &tokens.FamilyTemplate{AccessClaims: c}, "fam-new", t0); err != nil || !revoked {
		t.Errorf("a family begun from a token of a revoked actor family: revoked = %v, %v; want true", revoked, err)
	}
	// Every token of its actor revoked (sts revoke subject): a family
	// whose current refresh token dates from before then ends, or each
	// refresh would mint a token issued after the row.
	c = f.claims()
	c.SourceSubjects = []string{"actor-1"}
	for _, tc := range []struct {
		created time.Time
		want    bool
	}{{t0.Add(-time.Minute), true}, {t0, true}, {t0.Add(time.Second), false}} {
		if revoked, err := tokens.FamilySourceRevoked(t.Context(), s, &tokens.FamilyTemplate{AccessClaims: c}, "fam-new", tc.created); err != nil || revoked != tc.want {
			t.Errorf("a family of a delegation whose actor's tokens were revoked, refresh token from %v: revoked = %v, %v; want %v",
				tc.created.Sub(t0), revoked, err, tc.want)
		}
	}
}

// TestStoreRevocationsByPool: the rows a pool's or a provider's deletion
// leaves end every token exchanged through it (pool, provider, or a
// src_pool entry) issued up to the deletion, so a pool created again
// under the same ID, in any organization, does not bring them back; a
// token issued after the row, and a token of another pool, live on
// (docs/security.md A-54).
func TestStoreRevocationsByPool(t *testing.T) {
	s := sqlitetest.NewStore(t)
	f := newFixture(t, signer.ES256)
	f.verifier.Revocations = tokens.StoreRevocations{Store: s}
	mint := func(edit func(c *tokens.AccessClaims)) string {
		t.Helper()
		return f.mintWith(t, func(c *tokens.AccessClaims) { c.Pool, c.Provider = "", ""; edit(c) })
	}
	through := func(pool, provider string) func(*tokens.AccessClaims) {
		return func(c *tokens.AccessClaims) { c.Pool, c.Provider = pool, provider }
	}
	viaActor := func(pool, provider string) func(*tokens.AccessClaims) {
		return func(c *tokens.AccessClaims) { c.SourcePools = []string{tokens.SourcePool(pool, provider)} }
	}
	ci, ciActor, gh, ghActor, other := mint(through("ci", "gitlab")), mint(viaActor("ci", "gitlab")),
		mint(through("gh", "actions")), mint(viaActor("gh", "actions")), mint(through("ci2", "gitlab"))
	for _, r := range []storage.Revocation{
		storage.PoolRevocation("ci", "pool deleted", t0, time.Hour),
		storage.ProviderRevocation("gh", "actions", "provider deleted", t0, time.Hour),
	} {
		if err := s.PutRevocation(t.Context(), r); err != nil {
			t.Fatal(err)
		}
	}
	for name, tok := range map[string]string{"pool deleted": ci, "its actor's pool deleted": ciActor,
		"provider deleted": gh, "its actor's provider deleted": ghActor} {
		if _, err := f.verifier.VerifyAccessToken(t.Context(), tok, testAud); tokens.Reason(err) != "token_revoked" {
			t.Errorf("%s: err = %v, want token_revoked", name, err)
		}
	}
	if _, err := f.verifier.VerifyAccessToken(t.Context(), other, testAud); err != nil {
		t.Errorf("a token of another pool: %v", err)
	}
	f.clock.t = t0.Add(2 * time.Second)
	for name, tok := range map[string]string{"pool created again": mint(through("ci", "gitlab")), "provider created again": mint(through("gh", "actions"))} {
		if _, err := f.verifier.VerifyAccessToken(t.Context(), tok, testAud); err != nil {
			t.Errorf("a token issued after the deletion (%s): %v", name, err)
		}
	}
	c := f.claims()
	c.Pool, c.Provider = "ci", "gitlab"
	for _, tc := range []struct {
		created time.Time
		want    bool
	}{{t0.Add(-time.Minute), true}, {t0, true}, {t0.Add(2 * time.Second), false}} {
		if revoked, err := tokens.FamilySourceRevoked(t.Context(), s, &tokens.FamilyTemplate{AccessClaims: c}, "fam", tc.created); err != nil || revoked != tc.want {
			t.Errorf("a family of the deleted pool whose refresh token dates from %v: revoked = %v, %v; want %v", tc.created.Sub(t0), revoked, err, tc.want)
		}
	}
}

// TestStoreSourcesFurtherPATScope is docs/security.md A-67: a src_pat
// entry that names the scopes its derivation drew from the PAT
// ("<pat_id>:<pat_gen>:<scope>") ends the token once the PAT no longer
// holds every one of them, as a token's own PAT does; a PAT still
// holding them, or widened, ends nothing, and an entry naming no scope
// asks only that the PAT stand.
func TestStoreSourcesFurtherPATScope(t *testing.T) {
	ctx := t.Context()
	s, subject := sourceStore(t, storage.PrincipalUser)
	pat := sourcePAT(t, s, subject.ID) // read write
	f := newFixture(t, signer.ES256)
	src := tokens.NewStoreSources(s, nil)
	src.TTL, src.Now = 0, f.clock.Now
	f.verifier.Sources = src
	gen := tokens.PATGeneration(pat.Digest)
	verify := func(entry string) string {
		t.Helper()
		return f.reason(t, f.mintWith(t, func(c *tokens.AccessClaims) {
			c.Subject, c.OrgID, c.Principal, c.Scope = subject.ID, "acme", string(storage.PrincipalUser), "*"
			c.SourcePATs = []string{entry}
		}))
	}
	both, write, none := tokens.SourcePAT(pat.ID, gen, "read write"), tokens.SourcePAT(pat.ID, gen, "write"), tokens.SourcePAT(pat.ID, gen, "")
	if both != pat.ID+":"+gen+":read write" || none != pat.ID+":"+gen {
		t.Fatalf("SourcePAT = %q, %q", both, none)
	}
	for _, e := range []string{both, write, none} {
		if r := verify(e); r != "" {
			t.Fatalf("%q while the PAT holds read write: %s", e, r)
		}
	}
	setScopes := func(scopes ...string) {
		t.Helper()
		if err := s.UpdatePAT(ctx, pat.ID, func(p storage.PAT) (storage.PAT, error) {
			p.Scopes = scopes
			return p, nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	setScopes("read")
	for e, want := range map[string]string{both: "token_source_gone", write: "token_source_gone", none: ""} {
		if r := verify(e); r != want {
			t.Errorf("%q after the PAT lost write: reason %q, want %q", e, r, want)
		}
	}
	if r := verify(tokens.SourcePAT(pat.ID, gen, "read")); r != "" {
		t.Errorf("an entry within what the PAT still holds: %s", r)
	}
	setScopes("read", "write", "admin")
	if r := verify(both); r != "" {
		t.Errorf("after the PAT was widened: %s", r)
	}
}
