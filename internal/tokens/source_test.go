package tokens_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/opensts/sts/internal/signer"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/storage/cache"
	"github.com/opensts/sts/internal/ststest/sqlitetest"
	"github.com/opensts/sts/internal/tokens"
	"github.com/opensts/sts/internal/trust"
)

// countingStore counts the reads the source checker makes.
type countingStore struct {
	storage.Store
	reads int
}

func (c *countingStore) GetPrincipal(ctx context.Context, id string) (storage.Principal, error) {
	c.reads++
	return c.Store.GetPrincipal(ctx, id)
}

func (c *countingStore) GetPAT(ctx context.Context, id string) (storage.PAT, error) {
	c.reads++
	return c.Store.GetPAT(ctx, id)
}

func (c *countingStore) GetClient(ctx context.Context, id string) (storage.Client, error) {
	c.reads++
	return c.Store.GetClient(ctx, id)
}

// countingSources makes f's verifier check sources over s, on f's clock,
// counting the reads.
func countingSources(f *fixture, s storage.Store) (*countingStore, *tokens.StoreSources) {
	cs := &countingStore{Store: s}
	src := tokens.NewStoreSources(cs, nil)
	src.Now = f.clock.Now
	f.verifier.Sources = src
	return cs, src
}

// sourceStore is a SQLite store holding organization "acme" and one
// principal of kind there.
func sourceStore(t *testing.T, kind storage.PrincipalKind) (storage.Store, storage.Principal) {
	t.Helper()
	s := sqlitetest.NewStore(t)
	if err := s.CreateOrganization(t.Context(), storage.Organization{ID: "acme", Name: "acme", CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	p := storage.Principal{ID: storage.NewID(), OrgID: "acme", Kind: kind, Name: "ada", CreatedAt: t0}
	if err := s.CreatePrincipal(t.Context(), p); err != nil {
		t.Fatal(err)
	}
	return s, p
}

// sourcePAT stores a PAT of owner with the scopes read and write.
func sourcePAT(t *testing.T, s storage.Store, owner string) storage.PAT {
	t.Helper()
	pat := storage.PAT{ID: storage.NewID(), OrgID: "acme", OwnerID: owner, Digest: []byte("0123456789abcdef0123456789abcdef"),
		Scopes: []string{"read", "write"}, CreatedAt: t0, ExpiresAt: t0.Add(24 * time.Hour)}
	if err := s.CreatePAT(t.Context(), pat); err != nil {
		t.Fatal(err)
	}
	return pat
}

// sourceClient stores a client_credentials client of principal with the
// scopes read and write.
func sourceClient(t *testing.T, s storage.Store, principal string) storage.Client {
	t.Helper()
	cl := storage.Client{ID: storage.NewID(), OrgID: "acme", PrincipalID: principal, Name: "app", AuthMethod: "client_secret_basic",
		GrantTypes: []string{"client_credentials"}, Scopes: []string{"read", "write"}, Pools: []string{"github"}, Audiences: []string{testAud},
		CreatedAt: t0, UpdatedAt: t0}
	if err := s.CreateClient(t.Context(), cl); err != nil {
		t.Fatal(err)
	}
	return cl
}

// TestStoreSources: a token is refused once its principal is disabled or
// deleted, or its PAT deleted or regenerated; a live source is read from
// storage at most once per TTL, a refusal is never served from the cache.
func TestStoreSources(t *testing.T) {
	ctx := t.Context()
	s, p := sourceStore(t, storage.PrincipalUser)
	pat := sourcePAT(t, s, p.ID)

	f := newFixture(t, signer.ES256)
	cs, _ := countingSources(f, s)
	c := f.claims()
	c.Subject, c.OrgID, c.Principal = p.ID, "acme", string(storage.PrincipalUser)
	c.PATID, c.PATGeneration = pat.ID, tokens.PATGeneration(pat.Digest)
	tok, _, err := f.issuer.MintAccessToken(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	verify := func() string {
		t.Helper()
		_, err := f.verifier.VerifyAccessToken(ctx, tok, testAud)
		return tokens.Reason(err)
	}
	if r := verify(); r != "" {
		t.Fatalf("live source: %s", r)
	}
	reads := cs.reads
	if reads != 2 {
		t.Errorf("first check read storage %d times, want 2 (principal, PAT)", reads)
	}
	for range 10 {
		if r := verify(); r != "" {
			t.Fatalf("live source, cached: %s", r)
		}
	}
	if cs.reads != reads {
		t.Errorf("within the TTL the checker read storage %d more times, want 0", cs.reads-reads)
	}

	// Regenerated: a new digest. Seen once the TTL has passed.
	if err := s.UpdatePAT(ctx, pat.ID, func(old storage.PAT) (storage.PAT, error) {
		old.Digest = []byte("fedcba9876543210fedcba9876543210")
		return old, nil
	}); err != nil {
		t.Fatal(err)
	}
	f.clock.t = f.clock.t.Add(tokens.DefaultSourceTTL)
	if r := verify(); r != "token_source_gone" {
		t.Errorf("PAT regenerated: reason %q, want token_source_gone", r)
	}
	reads = cs.reads
	verify()
	if cs.reads == reads {
		t.Error("a refusal was served from the cache")
	}

	// The same token without PAT claims only depends on its principal.
	c.PATID, c.PATGeneration = "", ""
	tok, _, _ = f.issuer.MintAccessToken(ctx, c)
	if r := verify(); r != "" {
		t.Fatalf("principal-only token: %s", r)
	}
	if err := s.UpdatePrincipal(ctx, p.ID, func(old storage.Principal) (storage.Principal, error) {
		old.Disabled = true
		return old, nil
	}); err != nil {
		t.Fatal(err)
	}
	f.clock.t = f.clock.t.Add(tokens.DefaultSourceTTL)
	if r := verify(); r != "token_source_gone" {
		t.Errorf("principal disabled: reason %q, want token_source_gone", r)
	}

	// A federated token with no principal of ours has no source to check.
	c.Principal = ""
	tok, _, _ = f.issuer.MintAccessToken(ctx, c)
	if r := verify(); r != "" {
		t.Errorf("token without a principal: %s", r)
	}

	// A token naming a PAT without its generation is refused.
	c.PATID = pat.ID
	tok, _, _ = f.issuer.MintAccessToken(ctx, c)
	if r := verify(); r != "token_source_gone" {
		t.Errorf("pat_id without pat_gen: reason %q, want token_source_gone", r)
	}

	// Storage down: fail closed as unavailable.
	s.Close()
	c.PATID, c.Principal = "", string(storage.PrincipalUser)
	tok, _, _ = f.issuer.MintAccessToken(ctx, c)
	f.clock.t = f.clock.t.Add(tokens.DefaultSourceTTL)
	if r := verify(); r != "source_unavailable" {
		t.Errorf("storage closed: reason %q, want source_unavailable", r)
	}
}

// TestStoreSourcesRecordCache: over the node's record cache a principal
// disabled through that cache is refused at once, with no storage read
// per token while it is enabled.
func TestStoreSourcesRecordCache(t *testing.T) {
	ctx := t.Context()
	s, p := sourceStore(t, storage.PrincipalServiceAccount)
	records := cache.New(s)
	f := newFixture(t, signer.ES256)
	f.verifier.Sources = tokens.NewStoreSources(records, nil)
	c := f.claims()
	c.Subject, c.OrgID, c.Principal = p.ID, "acme", string(p.Kind)
	tok, _, _ := f.issuer.MintAccessToken(ctx, c)
	if _, err := f.verifier.VerifyAccessToken(ctx, tok, testAud); err != nil {
		t.Fatalf("enabled principal: %v", err)
	}
	if err := records.UpdatePrincipal(ctx, p.ID, func(old storage.Principal) (storage.Principal, error) {
		old.Disabled = true
		return old, nil
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.verifier.VerifyAccessToken(ctx, tok, testAud); tokens.Reason(err) != "token_source_gone" {
		t.Errorf("principal disabled on this node: %v, want token_source_gone at once", err)
	}
}

// TestStoreSourcesClient: a token naming a registered client (a UUID
// client_id) is refused once the client is disabled or deleted, and
// accepted again at once when it is re-enabled; a live client is read at
// most once per TTL; client_id values that name no client row (a pool's
// provider, "sts-api") cost no read.
func TestStoreSourcesClient(t *testing.T) {
	ctx := t.Context()
	s, sa := sourceStore(t, storage.PrincipalServiceAccount)
	cl := sourceClient(t, s, sa.ID)
	setDisabled := func(d bool) {
		t.Helper()
		if err := s.UpdateClient(ctx, cl.ID, func(old storage.Client) (storage.Client, error) {
			old.Disabled = d
			return old, nil
		}); err != nil {
			t.Fatal(err)
		}
	}

	f := newFixture(t, signer.ES256)
	cs, src := countingSources(f, s)
	c := f.claims()
	c.Principal = "" // the client alone is the source under test
	mint := func(clientID string) string {
		t.Helper()
		c.ClientID = clientID
		tok, _, err := f.issuer.MintAccessToken(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	verify := func(tok string) string {
		t.Helper()
		_, err := f.verifier.VerifyAccessToken(ctx, tok, testAud)
		return tokens.Reason(err)
	}

	for _, id := range []string{"pools/github/providers/actions", "sts-api", ""} {
		if r := verify(mint(id)); r != "" || cs.reads != 0 {
			t.Errorf("client_id %q: reason %q after %d reads, want accepted without a read", id, r, cs.reads)
		}
	}
	tok := mint(cl.ID)
	if r := verify(tok); r != "" || cs.reads != 1 {
		t.Fatalf("live client: reason %q after %d reads, want accepted after 1", r, cs.reads)
	}
	for range 5 {
		verify(tok)
	}
	if cs.reads != 1 {
		t.Errorf("within the TTL the checker read storage %d more times, want 0", cs.reads-1)
	}

	setDisabled(true)
	f.clock.t = f.clock.t.Add(tokens.DefaultSourceTTL)
	if r := verify(tok); r != "token_source_gone" {
		t.Errorf("client disabled: reason %q, want token_source_gone", r)
	}
	setDisabled(false)
	if r := verify(tok); r != "" {
		t.Errorf("client re-enabled: reason %q, want accepted at once", r)
	}
	if err := s.DeleteClient(ctx, cl.ID); err != nil {
		t.Fatal(err)
	}
	f.clock.t = f.clock.t.Add(tokens.DefaultSourceTTL)
	if r := verify(tok); r != "token_source_gone" {
		t.Errorf("client deleted: reason %q, want token_source_gone", r)
	}
	// Another registered-looking ID that names no client is refused too.
	if r := verify(mint(storage.NewID())); r != "token_source_gone" {
		t.Errorf("unknown client: reason %q, want token_source_gone", r)
	}

	// Over the node's record cache: disabled through it, refused at once.
	cl.ID = storage.NewID()
	if err := s.CreateClient(ctx, cl); err != nil {
		t.Fatal(err)
	}
	records := cache.New(s)
	records.Now = f.clock.Now
	f.verifier.Sources = tokens.NewStoreSources(records, nil)
	tok = mint(cl.ID)
	if r := verify(tok); r != "" {
		t.Fatalf("live client through the record cache: %s", r)
	}
	if err := records.UpdateClient(ctx, cl.ID, func(old storage.Client) (storage.Client, error) {
		old.Disabled = true
		return old, nil
	}); err != nil {
		t.Fatal(err)
	}
	if r := verify(tok); r != "token_source_gone" {
		t.Errorf("client disabled on this node: reason %q, want token_source_gone at once", r)
	}

	// Storage down: fail closed.
	s.Close()
	f.verifier.Sources = src
	f.clock.t = f.clock.t.Add(tokens.DefaultSourceTTL)
	if r := verify(tok); r != "source_unavailable" {
		t.Errorf("storage closed: reason %q, want source_unavailable", r)
	}
}

// fakePools is a trust registry answering from a table: pool → its
// answer (an absent pool is unknown).
type fakePools map[string]struct {
	pool *trust.Pool
	err  error
}

func (f fakePools) Check(_ context.Context, poolID, _ string) (*trust.Pool, error) {
	a, ok := f[poolID]
	if !ok {
		return nil, &trust.Error{Reason: trust.ReasonPoolUnknown}
	}
	return a.pool, a.err
}

// TestStoreSourcesPool: a token exchanged through a pool is refused while
// the registry refuses its pool or provider (unknown, disabled, an invalid
// policy) or holds the pool for another organization, and fails closed as
// unavailable when the registry cannot be read; a token without a pool,
// or a checker without a registry, skips the check.
func TestStoreSourcesPool(t *testing.T) {
	ctx := t.Context()
	f := newFixture(t, signer.ES256)
	c := f.claims()
	c.Principal, c.ClientID = "", "pools/github/providers/actions" // the pool alone is the source under test
	registry := fakePools{
		"github":    {pool: &trust.Pool{Pool: storage.Pool{ID: "github", OrgID: c.OrgID, Scopes: []string{"read", "write"}}}},
		"off":       {err: &trust.Error{Reason: trust.ReasonPoolDisabled}},
		"no-prov":   {err: &trust.Error{Reason: trust.ReasonProviderDisabled}},
		"bad-cel":   {err: &trust.Error{Reason: trust.ReasonPolicyInvalid}},
		"other-org": {pool: &trust.Pool{Pool: storage.Pool{ID: "other-org", OrgID: "org-2"}}},
		"down":      {err: &trust.Error{Reason: trust.ReasonUnavailable, Err: errors.New("disk on fire")}},
		"raw":       {err: errors.New("not a trust error")},
	}
	src := tokens.NewStoreSources(sqlitetest.NewStore(t), registry)
	src.Audiences = []string{testAud} // the exchange's default audience, allowed through every pool
	f.verifier.Sources = src
	verify := func(pool string) string {
		t.Helper()
		c.Pool = pool
		tok, _, err := f.issuer.MintAccessToken(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		_, err = f.verifier.VerifyAccessToken(ctx, tok, testAud)
		return tokens.Reason(err)
	}
	for pool, want := range map[string]string{
		"github": "", "": "",
		"gone": "token_source_gone", "off": "token_source_gone", "no-prov": "token_source_gone",
		"bad-cel": "token_source_gone", "other-org": "token_source_gone",
		"down": "source_unavailable", "raw": "source_unavailable",
	} {
		if got := verify(pool); got != want {
			t.Errorf("pool %q: reason %q, want %q", pool, got, want)
		}
	}
	f.verifier.Sources = tokens.NewStoreSources(sqlitetest.NewStore(t), nil)
	if got := verify("gone"); got != "" {
		t.Errorf("no registry: reason %q, want the pool unchecked", got)
	}
}

// TestStoreSourcesPATScopes: a token holds only what its PAT still holds.
// Narrowing the PAT ends the tokens with a scope it no longer allows, once
// the TTL has passed; a token within the PAT's remaining scopes lives on,
// and widening the PAT ends nothing.
func TestStoreSourcesPATScopes(t *testing.T) {
	ctx := t.Context()
	s, p := sourceStore(t, storage.PrincipalUser)
	pat := sourcePAT(t, s, p.ID)
	f := newFixture(t, signer.ES256)
	countingSources(f, s)
	verify := func(scope string) string {
		t.Helper()
		c := f.claims()
		c.Subject, c.OrgID, c.Principal, c.Scope = p.ID, "acme", string(storage.PrincipalUser), scope
		c.PATID, c.PATGeneration = pat.ID, tokens.PATGeneration(pat.Digest)
		tok, _, err := f.issuer.MintAccessToken(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		_, err = f.verifier.VerifyAccessToken(ctx, tok, testAud)
		return tokens.Reason(err)
	}
	for _, scope := range []string{"read write", "read", ""} {
		if r := verify(scope); r != "" {
			t.Fatalf("scope %q within the PAT's: %s", scope, r)
		}
	}
	// setScopes rewrites the PAT's scopes and lets the checker's TTL pass.
	setScopes := func(scopes ...string) {
		t.Helper()
		if err := s.UpdatePAT(ctx, pat.ID, func(old storage.PAT) (storage.PAT, error) {
			old.Scopes = scopes
			return old, nil
		}); err != nil {
			t.Fatal(err)
		}
		f.clock.t = f.clock.t.Add(tokens.DefaultSourceTTL)
	}
	setScopes("read")
	// "read" first: its live entry in the cache must not answer for a
	// token holding more.
	if r := verify("read"); r != "" {
		t.Errorf("scope read, still the PAT's: reason %q, want accepted", r)
	}
	if r := verify("read write"); r != "token_source_gone" {
		t.Errorf("scope write taken from the PAT: reason %q, want token_source_gone", r)
	}
	// Widened to "*" (everything but sts:admin, pat.Allows): nothing ends.
	setScopes("*")
	if r := verify("read write"); r != "" {
		t.Errorf("PAT widened to *: reason %q, want accepted", r)
	}
	if r := verify("read sts:admin"); r != "token_source_gone" {
		t.Errorf("sts:admin, which * does not hold: reason %q, want token_source_gone", r)
	}
}

// betaRoot adds organization beta to s and root, an instance
// administrator of beta.
func betaRoot(t *testing.T, s storage.Store) storage.Principal {
	t.Helper()
	ctx := t.Context()
	if err := s.CreateOrganization(ctx, storage.Organization{ID: "beta", Name: "beta", CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	root := storage.Principal{ID: storage.NewID(), OrgID: "beta", Kind: storage.PrincipalUser, Name: "root", InstanceAdmin: true, CreatedAt: t0}
	if err := s.CreatePrincipal(ctx, root); err != nil {
		t.Fatal(err)
	}
	return root
}

// TestSourceSubjectCacheIsItsOwn: a source subject's check (present,
// enabled, of the token's organization or an instance administrator;
// docs/security.md A-106) is weaker than the check of a token's own
// subject (of the token's organization), so a source subject found alive
// is not remembered as a subject found alive: a token naming as its
// subject a principal of another organization is refused even right
// after a token of that organization named the principal as a source.
func TestSourceSubjectCacheIsItsOwn(t *testing.T) {
	ctx := t.Context()
	s, ada := sourceStore(t, storage.PrincipalUser)
	root := betaRoot(t, s)
	src := tokens.NewStoreSources(s, nil) // the default TTL: live sources cached
	src.Now = func() time.Time { return t0 }
	check := func(c tokens.AccessClaims) string {
		t.Helper()
		return tokens.Reason(src.CheckSource(ctx, &c))
	}
	user := string(storage.PrincipalUser)

	// root, an instance administrator of beta, is the source of a token
	// of acme.
	if r := check(tokens.AccessClaims{Subject: ada.ID, OrgID: "acme", Principal: user, SourceSubjects: []string{root.ID}}); r != "" {
		t.Fatalf("an instance administrator as the source of another organization's token: %s", r)
	}
	if r := check(tokens.AccessClaims{Subject: root.ID, OrgID: "acme", Principal: user}); r != "token_source_gone" {
		t.Errorf("the subject of another organization than the token's, after it was checked as a source: reason %q, want token_source_gone", r)
	}
}

// TestSourceSubjectOfAnotherOrganization is docs/security.md A-106 over
// the cache of live sources: an instance administrator's token for
// another organization is believed for the TTL after its role is revoked,
// refused once it has passed, and accepted again while instance_admins
// lists it.
func TestSourceSubjectOfAnotherOrganization(t *testing.T) {
	ctx := t.Context()
	s, ada := sourceStore(t, storage.PrincipalUser)
	root := betaRoot(t, s)
	now := t0
	src := tokens.NewStoreSources(s, nil)
	src.Now = func() time.Time { return now }
	c := tokens.AccessClaims{Subject: ada.ID, OrgID: "acme", Principal: string(storage.PrincipalUser), SourceSubjects: []string{root.ID}}
	check := func() string {
		t.Helper()
		return tokens.Reason(src.CheckSource(ctx, &c))
	}
	if r := check(); r != "" {
		t.Fatalf("an instance administrator's token for another organization: %s", r)
	}
	if err := s.UpdatePrincipal(ctx, root.ID, func(p storage.Principal) (storage.Principal, error) {
		p.InstanceAdmin = false
		return p, nil
	}); err != nil {
		t.Fatal(err)
	}
	if r := check(); r != "" {
		t.Errorf("the role revoked, within the TTL: reason %q, want the live answer kept", r)
	}
	now = now.Add(tokens.DefaultSourceTTL)
	if r := check(); r != "token_source_gone" {
		t.Errorf("the role revoked, the TTL passed: reason %q, want token_source_gone", r)
	}
	src.InstanceAdmins = []string{root.ID}
	if r := check(); r != "" {
		t.Errorf("listed in instance_admins: %s", r)
	}
}
