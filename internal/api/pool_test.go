package api

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	jose "github.com/go-jose/go-jose/v4"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	stsv1 "github.com/opensts/sts/internal/gen/sts/v1"
	"github.com/opensts/sts/internal/gen/sts/v1/stsv1connect"
	"github.com/opensts/sts/internal/pat"
	"github.com/opensts/sts/internal/pools"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/trust"
)

// poolIssuer is the issuer of the pool tests' subject tokens; its keys are
// uploaded (jwks), so nothing is fetched.
const poolIssuer = "https://issuer.example"

// poolEnv is env with a PoolService over the same store and a trust
// registry (the token endpoint's view of pools) wired to its change hook,
// as serve wires them. The registry never refreshes by itself here, so
// whatever it sees came through the hook.
type poolEnv struct {
	*env
	pools *pools.Service
	reg   *trust.Registry
	key   crypto.Signer
	jwks  string
}

func newPoolEnvOn(t *testing.T, store storage.Store) *poolEnv {
	t.Helper()
	var ps *pools.Service
	e := newEnvOn(t, store, func(h *Handler) {
		var err error
		if ps, err = pools.NewService(store, pools.Limits{MaxTokenLifetime: 12 * time.Hour, DefaultAudience: testIssuer}); err != nil {
			t.Fatal(err)
		}
		h.Pools = ps
	})
	compiler, err := pools.NewCompiler()
	if err != nil {
		t.Fatal(err)
	}
	reg := &trust.Registry{Store: store, Compiler: compiler, MinRefresh: time.Hour}
	if err := reg.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	// Use up the registry's one on-demand refresh for unknown pools, so
	// only the change hook can show it a new pool.
	if _, err := reg.Check(t.Context(), "nope", ""); trust.ReasonOf(err) != trust.ReasonPoolUnknown {
		t.Fatalf("Check(nope) = %v", err)
	}
	ps.SetOnChange(reg.Refresh)
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &k.PublicKey, KeyID: "k1", Algorithm: "ES256", Use: "sig"}}})
	if err != nil {
		t.Fatal(err)
	}
	return &poolEnv{env: e, pools: ps, reg: reg, key: k, jwks: string(b)}
}

// onPoolBackends runs fn with a poolEnv over SQLite and over PostgreSQL.
func onPoolBackends(t *testing.T, fn func(t *testing.T, e *poolEnv)) {
	for name, open := range map[string]func(testing.TB) storage.Store{"sqlite": newSQLiteStore, "postgres": newPostgresStore} {
		t.Run(name, func(t *testing.T) { fn(t, newPoolEnvOn(t, open(t))) })
	}
}

func (e *poolEnv) poolClient(base string, opts ...connect.ClientOption) stsv1connect.PoolServiceClient {
	return stsv1connect.NewPoolServiceClient(e.srv.Client(), base, opts...)
}

// poolProtocols are the client variants every RPC test runs with, at /
// and under /api.
func (e *poolEnv) poolProtocols() map[string]stsv1connect.PoolServiceClient {
	return map[string]stsv1connect.PoolServiceClient{
		"connect":          e.poolClient(e.srv.URL),
		"connect-json-api": e.poolClient(e.srv.URL+"/api", connect.WithProtoJSON()),
		"grpc":             e.poolClient(e.srv.URL, connect.WithGRPC()),
		"grpc-web-api":     e.poolClient(e.srv.URL+"/api", connect.WithGRPCWeb()),
	}
}

// sign returns an ES256 subject token of poolIssuer for sub, owned by
// owner (repository_owner), signed with key (the env's key when nil).
func (e *poolEnv) sign(t *testing.T, key crypto.Signer, sub, owner string) string {
	t.Helper()
	if key == nil {
		key = e.key
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, (&jose.SignerOptions{}).WithHeader("kid", "k1").WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	payload, _ := json.Marshal(map[string]any{
		"iss": poolIssuer, "sub": sub, "aud": "sts", "iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(),
		"jti": storage.NewID(), "repository_owner": owner, "repository": owner + "/app",
	})
	jws, err := s.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := jws.CompactSerialize()
	return out
}

// counts are the stored pools, providers and audit events, read straight
// from storage.
func (e *poolEnv) counts(t *testing.T) [3]int {
	t.Helper()
	ps, err := e.store.ListPools(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	prs, err := e.store.ListProviders(t.Context(), "")
	if err != nil {
		t.Fatal(err)
	}
	evs, err := e.store.ListAudit(t.Context(), storage.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	return [3]int{len(ps), len(prs), len(evs)}
}

func (e *poolEnv) validPool(id string) *stsv1.CreatePoolRequest {
	return &stsv1.CreatePoolRequest{
		PoolId: id, OrganizationId: e.org.ID, DisplayName: "CI",
		Condition:        `assertion.repository_owner == "acme"`,
		Mapping:          &stsv1.PoolMapping{Subject: "assertion.sub", Attributes: map[string]string{"repo": "assertion.repository"}},
		Scopes:           []string{"read", "write"},
		MaxTokenLifetime: durationpb.New(time.Hour), AllowUnauthenticated: true,
	}
}

func (e *poolEnv) validProvider(pool, id string) *stsv1.CreateProviderRequest {
	return &stsv1.CreateProviderRequest{PoolId: pool, ProviderId: id, Issuer: poolIssuer, Audiences: []string{"sts"},
		Jwks: e.jwks, Algorithms: []string{"ES256"}}
}

// TestPoolService runs every PoolService RPC with generated clients over
// Connect, Connect JSON (under /api), gRPC and gRPC-Web, on SQLite and
// PostgreSQL. Every change is seen at once by the trust registry the
// token endpoint reads (through the change hook serve installs), and the
// dry run explains allowed and denied tokens without minting or writing.
func TestPoolService(t *testing.T) {
	t.Parallel()
	onPoolBackends(t, func(t *testing.T, e *poolEnv) {
		for name, c := range e.poolProtocols() {
			t.Run(name, func(t *testing.T) { testPoolService(t, e, c, "ci-"+name) })
		}
	})
}

func testPoolService(t *testing.T, e *poolEnv, c stsv1connect.PoolServiceClient, id string) {
	ctx := as(e.admin)
	cr, err := c.CreatePool(ctx, e.validPool(id))
	if err != nil {
		t.Fatalf("CreatePool: %v", err)
	}
	p := cr.GetPool()
	if p.GetId() != id || p.GetOrganizationId() != e.org.ID || p.GetDisplayName() != "CI" || p.GetMapping().GetAttributes()["repo"] != "assertion.repository" ||
		p.GetMaxTokenLifetime().AsDuration() != time.Hour || !p.GetAllowUnauthenticated() || p.GetCreatedAt() == nil || p.GetDisabled() {
		t.Fatalf("CreatePool = %v", p)
	}
	if _, err := e.reg.Check(t.Context(), id, ""); err != nil {
		t.Errorf("the token endpoint's registry does not see the new pool at once: %v", err)
	}
	pr, err := c.CreateProvider(ctx, e.validProvider(id, "gh"))
	if err != nil {
		t.Fatalf("CreateProvider: %v", err)
	}
	if got := pr.GetProvider(); got.GetPoolId() != id || got.GetId() != "gh" || got.GetJwks() != e.jwks || got.GetIssuer() != poolIssuer || got.GetCreatedAt() == nil {
		t.Fatalf("CreateProvider = %v", got)
	}
	if _, err := e.reg.Check(t.Context(), id, "gh"); err != nil {
		t.Errorf("the registry does not see the new provider at once: %v", err)
	}

	g, err := c.GetPool(ctx, &stsv1.GetPoolRequest{PoolId: id})
	if err != nil || !proto.Equal(g.GetPool(), p) || len(g.GetProviders()) != 1 || !proto.Equal(g.GetProviders()[0], pr.GetProvider()) {
		t.Fatalf("GetPool = %v, %v", g, err)
	}
	gp, err := c.GetProvider(ctx, &stsv1.GetProviderRequest{PoolId: id, ProviderId: "gh"})
	if err != nil || !proto.Equal(gp.GetProvider(), pr.GetProvider()) {
		t.Fatalf("GetProvider = %v, %v", gp, err)
	}
	l, err := c.ListPools(ctx, &stsv1.ListPoolsRequest{OrganizationId: e.org.ID})
	if err != nil || !containsPool(l.GetPools(), id) {
		t.Fatalf("ListPools = %v, %v", l, err)
	}
	all, err := c.ListPools(ctx, &stsv1.ListPoolsRequest{})
	if err != nil || len(all.GetPools()) != len(l.GetPools()) {
		t.Errorf("ListPools (all) = %v, %v", all, err)
	}
	lp, err := c.ListProviders(ctx, &stsv1.ListProvidersRequest{PoolId: id})
	if err != nil || len(lp.GetProviders()) != 1 {
		t.Errorf("ListProviders = %v, %v", lp, err)
	}

	// The dry run: allowed, denied by the condition, denied at the
	// signature; nothing is written, each is a response, not an error.
	before := e.counts(t)
	tok := e.sign(t, nil, "repo:acme/app", "acme")
	// An audience that is neither the issuer nor one of the pool's is
	// refused as the exchange refuses it (docs/security.md F-101).
	res, err := c.TestPool(ctx, &stsv1.TestPoolRequest{PoolId: id, SubjectToken: tok, Audiences: []string{"https://api.example"}})
	if err != nil || res.GetAllowed() || res.GetReason() != "audience_not_allowed" {
		t.Errorf("TestPool for an audience not the pool's = %v, %v, want denied audience_not_allowed", res, err)
	}
	// A resource the exchange refuses as malformed is refused here too.
	res, err = c.TestPool(ctx, &stsv1.TestPoolRequest{PoolId: id, SubjectToken: tok, Resources: []string{"api"}})
	if err != nil || res.GetAllowed() || res.GetReason() != "target_invalid" {
		t.Errorf("TestPool for resource %q (not an absolute URI) = %v, %v, want denied target_invalid", "api", res, err)
	}
	res, err = c.TestPool(ctx, &stsv1.TestPoolRequest{PoolId: id, SubjectToken: tok})
	if err != nil || !res.GetAllowed() || res.GetReason() != "" || res.GetProviderId() != "gh" || res.GetSubject() != "repo:acme/app" ||
		res.GetAttributes()["repo"] != "acme/app" {
		t.Fatalf("TestPool = %v, %v", res, err)
	}
	steps := map[string]*stsv1.TestPoolStep{}
	for _, s := range res.GetSteps() {
		steps[s.GetName()] = s
	}
	if s := steps["signature"]; !s.GetOk() || !strings.Contains(s.GetDetail(), "ES256") {
		t.Errorf("signature step = %v", s)
	}
	if s := steps["condition"]; !s.GetOk() || s.GetExpression() != `assertion.repository_owner == "acme"` || s.GetDetail() != "true" {
		t.Errorf("condition step = %v", s)
	}
	if s := steps["mapping.attributes.repo"]; !s.GetOk() || s.GetDetail() != `"acme/app"` {
		t.Errorf("attribute step = %v", s)
	}
	res, err = c.TestPool(ctx, &stsv1.TestPoolRequest{PoolId: id, SubjectToken: e.sign(t, nil, "repo:evil/app", "evil")})
	if err != nil || res.GetAllowed() || res.GetReason() != "condition_false" || res.GetSubject() != "" {
		t.Errorf("TestPool of another owner's token = %v, %v", res, err)
	}
	if last := res.GetSteps()[len(res.GetSteps())-1]; last.GetName() != "condition" || last.GetOk() {
		t.Errorf("the trace should end at the failed condition: %v", res.GetSteps())
	}
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	res, err = c.TestPool(ctx, &stsv1.TestPoolRequest{PoolId: id, ProviderId: "gh", SubjectToken: e.sign(t, other, "repo:acme/app", "acme")})
	if err != nil || res.GetAllowed() || res.GetReason() != "signature_invalid" {
		t.Errorf("TestPool of a forged token = %v, %v", res, err)
	}
	if after := e.counts(t); after != before {
		t.Errorf("the dry run wrote something: counts %v, then %v", before, after)
	}

	// Update with field presence: clear the scopes, replace the
	// attributes, disable; the rest is kept.
	up, err := c.UpdatePool(ctx, &stsv1.UpdatePoolRequest{
		PoolId: id, Disabled: new(true), Scopes: &stsv1.StringList{},
		Mapping: &stsv1.PoolMappingUpdate{Attributes: &stsv1.StringMap{Values: map[string]string{"owner": "assertion.repository_owner"}}},
	})
	u := up.GetPool()
	if err != nil || !u.GetDisabled() || len(u.GetScopes()) != 0 || len(u.GetMapping().GetAttributes()) != 1 || u.GetMapping().GetAttributes()["owner"] == "" ||
		u.GetMapping().GetSubject() != "assertion.sub" || u.GetDisplayName() != "CI" || u.GetCondition() != p.GetCondition() ||
		u.GetMaxTokenLifetime().AsDuration() != time.Hour || !u.GetUpdatedAt().AsTime().After(p.GetCreatedAt().AsTime().Add(-time.Second)) {
		t.Fatalf("UpdatePool = %v, %v", u, err)
	}
	if _, err := e.reg.Check(t.Context(), id, ""); trust.ReasonOf(err) != trust.ReasonPoolDisabled {
		t.Errorf("registry after disabling the pool: %v, want pool_disabled at once", err)
	}
	res, err = c.TestPool(ctx, &stsv1.TestPoolRequest{PoolId: id, SubjectToken: tok})
	if err != nil || res.GetAllowed() || res.GetReason() != "pool_disabled" {
		t.Errorf("TestPool of a disabled pool = %v, %v", res, err)
	}
	up, err = c.UpdatePool(ctx, &stsv1.UpdatePoolRequest{PoolId: id, Disabled: new(false), MaxTokenLifetime: durationpb.New(0), DisplayName: new("")})
	if err != nil || up.GetPool().GetDisabled() || up.GetPool().GetMaxTokenLifetime() != nil || up.GetPool().GetDisplayName() != "" {
		t.Fatalf("UpdatePool enable = %v, %v", up, err)
	}
	if _, err := e.reg.Check(t.Context(), id, "gh"); err != nil {
		t.Errorf("registry after re-enabling: %v", err)
	}

	upr, err := c.UpdateProvider(ctx, &stsv1.UpdateProviderRequest{PoolId: id, ProviderId: "gh", Disabled: new(true),
		Audiences: &stsv1.StringList{Values: []string{"sts", "other"}}})
	if err != nil || !upr.GetProvider().GetDisabled() || len(upr.GetProvider().GetAudiences()) != 2 || upr.GetProvider().GetJwks() != e.jwks {
		t.Fatalf("UpdateProvider = %v, %v", upr, err)
	}
	if _, err := e.reg.Check(t.Context(), id, "gh"); trust.ReasonOf(err) != trust.ReasonProviderDisabled {
		t.Errorf("registry after disabling the provider: %v, want provider_disabled at once", err)
	}
	res, err = c.TestPool(ctx, &stsv1.TestPoolRequest{PoolId: id, SubjectToken: tok})
	if err != nil || res.GetAllowed() || res.GetReason() != "provider_disabled" {
		t.Errorf("TestPool with the provider disabled = %v, %v", res, err)
	}

	if _, err := c.DeleteProvider(ctx, &stsv1.DeleteProviderRequest{PoolId: id, ProviderId: "gh"}); err != nil {
		t.Fatalf("DeleteProvider: %v", err)
	}
	_, err = c.GetProvider(ctx, &stsv1.GetProviderRequest{PoolId: id, ProviderId: "gh"})
	wantCode(t, "get a deleted provider", err, connect.CodeNotFound)
	_, err = c.DeleteProvider(ctx, &stsv1.DeleteProviderRequest{PoolId: id, ProviderId: "gh"})
	wantCode(t, "delete a provider twice", err, connect.CodeNotFound)
	if _, err := e.reg.Check(t.Context(), id, "gh"); trust.ReasonOf(err) != trust.ReasonProviderUnknown {
		t.Errorf("registry after deleting the provider: %v", err)
	}
	if _, err := c.CreateProvider(ctx, e.validProvider(id, "gh2")); err != nil {
		t.Fatal(err)
	}
	del, err := c.DeletePool(ctx, &stsv1.DeletePoolRequest{PoolId: id})
	if err != nil || del.GetDeletedProviders() != 1 {
		t.Fatalf("DeletePool = %v, %v", del, err)
	}
	_, err = c.GetPool(ctx, &stsv1.GetPoolRequest{PoolId: id})
	wantCode(t, "get a deleted pool", err, connect.CodeNotFound)
	_, err = c.DeletePool(ctx, &stsv1.DeletePoolRequest{PoolId: id})
	wantCode(t, "delete a pool twice", err, connect.CodeNotFound)
	if _, err := e.reg.Check(t.Context(), id, ""); trust.ReasonOf(err) != trust.ReasonPoolUnknown {
		t.Errorf("registry after deleting the pool: %v", err)
	}

	// The audit trail names the admin.
	evs, err := e.store.ListAudit(t.Context(), storage.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, ev := range evs {
		if ev.Target == "pool:"+id || strings.HasPrefix(ev.Target, "provider:"+id+"/") {
			if !strings.HasPrefix(ev.Actor, "principal:") || ev.OrgID != e.org.ID {
				t.Errorf("audit event %+v: want the admin principal as actor and the pool's organization", ev)
			}
			actions = append(actions, ev.Action)
		}
	}
	for _, want := range []string{"pool.create", "provider.create", "pool.update", "provider.update", "provider.delete", "pool.delete"} {
		if !strings.Contains(strings.Join(actions, " "), want) {
			t.Errorf("audit actions %v lack %s", actions, want)
		}
	}
}

func containsPool(list []*stsv1.Pool, id string) bool {
	for _, p := range list {
		if p.GetId() == id {
			return true
		}
	}
	return false
}

// TestPoolServiceBadInput: each bad request gets its code and a message
// naming the field, and writes nothing (the stored counts are unchanged).
func TestPoolServiceBadInput(t *testing.T) {
	t.Parallel()
	onPoolBackends(t, func(t *testing.T, e *poolEnv) {
		c := e.poolClient(e.srv.URL)
		ctx := as(e.admin)
		other, err := CreateOrganization(t.Context(), e.store, testCaller, "beta", "", time.Now())
		if err != nil {
			t.Fatal(err)
		}
		alien, err := CreatePrincipal(t.Context(), e.store, testCaller, other.ID, storage.PrincipalServiceAccount, "theirs", "", time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.CreatePool(ctx, e.validPool("ci")); err != nil {
			t.Fatal(err)
		}
		open := e.validPool("open")
		open.Condition = ""
		if _, err := c.CreatePool(ctx, open); err != nil {
			t.Fatal(err)
		}
		if _, err := c.CreateProvider(ctx, e.validProvider("ci", "gh")); err != nil {
			t.Fatal(err)
		}
		shared := e.validProvider("ci", "actions")
		shared.Issuer, shared.Jwks = "https://token.actions.githubusercontent.com", ""
		if _, err := c.CreateProvider(ctx, shared); err != nil {
			t.Fatal(err)
		}

		poolCases := []struct {
			name   string
			mutate func(r *stsv1.CreatePoolRequest)
			code   connect.Code
			msg    string
		}{
			{"no pool id", func(r *stsv1.CreatePoolRequest) { r.PoolId = "" }, connect.CodeInvalidArgument, "pool_id required"},
			{"bad pool id", func(r *stsv1.CreatePoolRequest) { r.PoolId = "Bad/ID" }, connect.CodeInvalidArgument, "pool_id: pool ID"},
			{"duplicate", func(r *stsv1.CreatePoolRequest) { r.PoolId = "ci" }, connect.CodeAlreadyExists, `pool "ci" already exists`},
			{"no organization", func(r *stsv1.CreatePoolRequest) { r.OrganizationId = "" }, connect.CodeInvalidArgument, "organization_id"},
			{"unknown organization", func(r *stsv1.CreatePoolRequest) { r.OrganizationId = "ghost" }, connect.CodeNotFound, `organization "ghost" not found`},
			{"invalid CEL", func(r *stsv1.CreatePoolRequest) { r.Condition = "assertion.sub ==" }, connect.CodeInvalidArgument, `pool "x": condition:`},
			{"condition of the wrong type", func(r *stsv1.CreatePoolRequest) { r.Condition = "1 + 2" }, connect.CodeInvalidArgument, "want bool"},
			{"identity claim of the wrong type", func(r *stsv1.CreatePoolRequest) { r.IdentityClaim = "1" }, connect.CodeInvalidArgument, "identity_claim"},
			{"groups of the wrong type", func(r *stsv1.CreatePoolRequest) { r.Mapping.Groups = `"admins"` }, connect.CodeInvalidArgument, "mapping.groups"},
			{"bad attribute name", func(r *stsv1.CreatePoolRequest) { r.Mapping.Attributes["a-b"] = "assertion.sub" }, connect.CodeInvalidArgument, "mapping.attributes.a-b"},
			{"expression over the length budget", func(r *stsv1.CreatePoolRequest) {
				r.Condition = strings.Repeat("assertion.a == 'x' || ", 300) + "false"
			}, connect.CodeInvalidArgument, "condition"},
			{"expression over the cost budget", func(r *stsv1.CreatePoolRequest) {
				r.Condition = "assertion.groups.all(g, assertion.teams.all(t, assertion.orgs.exists(o, o == g + t)))"
			}, connect.CodeInvalidArgument, "cost"},
			{"lifetime above keys.max_token_lifetime", func(r *stsv1.CreatePoolRequest) { r.MaxTokenLifetime = durationpb.New(13 * time.Hour) }, connect.CodeInvalidArgument, "max_token_lifetime"},
			{"negative lifetime", func(r *stsv1.CreatePoolRequest) { r.MaxTokenLifetime = durationpb.New(-time.Second) }, connect.CodeInvalidArgument, "max_token_lifetime"},
			{"invalid duration", func(r *stsv1.CreatePoolRequest) {
				r.MaxTokenLifetime = &durationpb.Duration{Seconds: 1, Nanos: -1}
			}, connect.CodeInvalidArgument, "max_token_lifetime"},
			{"scope with a space", func(r *stsv1.CreatePoolRequest) { r.Scopes = []string{"read", "a b"} }, connect.CodeInvalidArgument, "scopes[1]"},
			{"long display name", func(r *stsv1.CreatePoolRequest) { r.DisplayName = strings.Repeat("n", 201) }, connect.CodeInvalidArgument, "display_name"},
			{"unknown principal", func(r *stsv1.CreatePoolRequest) { r.PrincipalId = storage.NewID() }, connect.CodeNotFound, "principal"},
			{"principal of another organization", func(r *stsv1.CreatePoolRequest) { r.PrincipalId = alien.ID }, connect.CodeNotFound, "not found"},
		}
		for _, tc := range poolCases {
			before := e.counts(t)
			r := e.validPool("x")
			tc.mutate(r)
			res, err := c.CreatePool(ctx, r)
			if connect.CodeOf(err) != tc.code || !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("CreatePool %s: err = %v, want %v naming %q", tc.name, err, tc.code, tc.msg)
			}
			if res != nil || e.counts(t) != before {
				t.Errorf("CreatePool %s: something was written or returned", tc.name)
			}
		}

		providers := []struct {
			name   string
			mutate func(r *stsv1.CreateProviderRequest)
			code   connect.Code
			msg    string
		}{
			{"no pool", func(r *stsv1.CreateProviderRequest) { r.PoolId = "" }, connect.CodeInvalidArgument, "pool_id required"},
			{"unknown pool", func(r *stsv1.CreateProviderRequest) { r.PoolId = "nope" }, connect.CodeNotFound, `pool "nope" not found`},
			{"no provider id", func(r *stsv1.CreateProviderRequest) { r.ProviderId = "" }, connect.CodeInvalidArgument, "provider_id required"},
			{"bad provider id", func(r *stsv1.CreateProviderRequest) { r.ProviderId = "GH" }, connect.CodeInvalidArgument, "provider_id: provider ID"},
			{"duplicate", func(r *stsv1.CreateProviderRequest) { r.ProviderId = "gh" }, connect.CodeAlreadyExists, "already exists"},
			{"no issuer", func(r *stsv1.CreateProviderRequest) { r.Issuer = "" }, connect.CodeInvalidArgument, "issuer"},
			{"http issuer", func(r *stsv1.CreateProviderRequest) { r.Issuer = "http://issuer.example" }, connect.CodeInvalidArgument, `issuer "http://issuer.example" must use https`},
			{"loopback http issuer without allow_loopback", func(r *stsv1.CreateProviderRequest) { r.Issuer = "http://127.0.0.1:9" }, connect.CodeInvalidArgument, "must use https"},
			{"issuer with a query", func(r *stsv1.CreateProviderRequest) { r.Issuer = "https://issuer.example/?a=b" }, connect.CodeInvalidArgument, "issuer"},
			{"http jwks_uri", func(r *stsv1.CreateProviderRequest) { r.JwksUri = "http://issuer.example/jwks" }, connect.CodeInvalidArgument, "jwks_uri"},
			{"no audience", func(r *stsv1.CreateProviderRequest) { r.Audiences = nil }, connect.CodeInvalidArgument, "audiences: at least one audience"},
			{"empty audience", func(r *stsv1.CreateProviderRequest) { r.Audiences = []string{"sts", ""} }, connect.CodeInvalidArgument, "audiences[1]"},
			{"unsupported algorithm", func(r *stsv1.CreateProviderRequest) { r.Algorithms = []string{"HS256"} }, connect.CodeInvalidArgument, `algorithms: algorithm "HS256" is not supported`},
			{"bad jwks", func(r *stsv1.CreateProviderRequest) { r.Jwks = `{"keys":1}` }, connect.CodeInvalidArgument, "jwks: uploaded jwks"},
			{"private key in the jwks", func(r *stsv1.CreateProviderRequest) { r.Jwks = privateJWKS(t) }, connect.CodeInvalidArgument, "jwks"},
			{"jwks over 256 KiB", func(r *stsv1.CreateProviderRequest) {
				r.Jwks = `{"keys":[],"x":"` + strings.Repeat("a", pools.MaxJWKSBytes) + `"}`
			}, connect.CodeInvalidArgument, "jwks: at most 256 KiB"},
			{"shared issuer in a pool without a condition", func(r *stsv1.CreateProviderRequest) {
				r.PoolId, r.Issuer, r.Jwks = "open", "https://token.actions.githubusercontent.com", ""
			}, connect.CodeFailedPrecondition, `pool "open" has no condition`},
		}
		for _, tc := range providers {
			before := e.counts(t)
			r := e.validProvider("ci", "p")
			tc.mutate(r)
			res, err := c.CreateProvider(ctx, r)
			if connect.CodeOf(err) != tc.code || !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("CreateProvider %s: err = %v, want %v naming %q", tc.name, err, tc.code, tc.msg)
			}
			if res != nil || e.counts(t) != before {
				t.Errorf("CreateProvider %s: something was written or returned", tc.name)
			}
		}

		gp, err := c.GetPool(ctx, &stsv1.GetPoolRequest{PoolId: "ci"})
		if err != nil {
			t.Fatal(err)
		}
		updates := []struct {
			name string
			call func() error
			code connect.Code
			msg  string
		}{
			{"pool: nothing set", func() error {
				_, err := c.UpdatePool(ctx, &stsv1.UpdatePoolRequest{PoolId: "ci"})
				return err
			}, connect.CodeInvalidArgument, "nothing to update"},
			{"pool: no id", func() error {
				_, err := c.UpdatePool(ctx, &stsv1.UpdatePoolRequest{Disabled: new(true)})
				return err
			}, connect.CodeInvalidArgument, "pool_id required"},
			{"pool: unknown", func() error {
				_, err := c.UpdatePool(ctx, &stsv1.UpdatePoolRequest{PoolId: "nope", Disabled: new(true)})
				return err
			}, connect.CodeNotFound, `pool "nope" not found`},
			{"pool: removing the condition a shared issuer needs", func() error {
				_, err := c.UpdatePool(ctx, &stsv1.UpdatePoolRequest{PoolId: "ci", Condition: new("")})
				return err
			}, connect.CodeInvalidArgument, "condition is required"},
			{"pool: bad CEL with a valid name", func() error {
				_, err := c.UpdatePool(ctx, &stsv1.UpdatePoolRequest{PoolId: "ci", DisplayName: new("ok"), Mapping: &stsv1.PoolMappingUpdate{Subject: new("(")}})
				return err
			}, connect.CodeInvalidArgument, "mapping.subject"},
			{"pool: lifetime too long", func() error {
				_, err := c.UpdatePool(ctx, &stsv1.UpdatePoolRequest{PoolId: "ci", MaxTokenLifetime: durationpb.New(24 * time.Hour)})
				return err
			}, connect.CodeInvalidArgument, "max_token_lifetime"},
			{"pool: unknown organization", func() error {
				_, err := c.UpdatePool(ctx, &stsv1.UpdatePoolRequest{PoolId: "ci", OrganizationId: new("ghost")})
				return err
			}, connect.CodeNotFound, "organization"},
			{"provider: nothing set", func() error {
				_, err := c.UpdateProvider(ctx, &stsv1.UpdateProviderRequest{PoolId: "ci", ProviderId: "gh"})
				return err
			}, connect.CodeInvalidArgument, "nothing to update"},
			{"provider: unknown", func() error {
				_, err := c.UpdateProvider(ctx, &stsv1.UpdateProviderRequest{PoolId: "ci", ProviderId: "nope", Disabled: new(true)})
				return err
			}, connect.CodeNotFound, "provider ci/nope not found"},
			{"provider: no audiences with a valid flag", func() error {
				_, err := c.UpdateProvider(ctx, &stsv1.UpdateProviderRequest{PoolId: "ci", ProviderId: "gh", Disabled: new(true), Audiences: &stsv1.StringList{}})
				return err
			}, connect.CodeInvalidArgument, "audiences"},
			{"provider: http issuer", func() error {
				_, err := c.UpdateProvider(ctx, &stsv1.UpdateProviderRequest{PoolId: "ci", ProviderId: "gh", Issuer: new("http://issuer.example")})
				return err
			}, connect.CodeInvalidArgument, "issuer"},
			{"provider: bad jwks", func() error {
				_, err := c.UpdateProvider(ctx, &stsv1.UpdateProviderRequest{PoolId: "ci", ProviderId: "gh", Jwks: new("nope")})
				return err
			}, connect.CodeInvalidArgument, "jwks"},
		}
		before := e.counts(t)
		for _, u := range updates {
			if err := u.call(); connect.CodeOf(err) != u.code || !strings.Contains(err.Error(), u.msg) {
				t.Errorf("update %s: err = %v, want %v naming %q", u.name, err, u.code, u.msg)
			}
		}
		if after := e.counts(t); after != before {
			t.Errorf("refused updates wrote something: %v, then %v", before, after)
		}
		g2, err := c.GetPool(ctx, &stsv1.GetPoolRequest{PoolId: "ci"})
		if err != nil || !proto.Equal(g2, gp) {
			t.Errorf("after refused updates GetPool = %v, %v; want unchanged %v", g2, err, gp)
		}

		_, err = c.ListPools(ctx, &stsv1.ListPoolsRequest{OrganizationId: "ghost"})
		wantCode(t, "list the pools of an unknown organization", err, connect.CodeNotFound)
		_, err = c.ListProviders(ctx, &stsv1.ListProvidersRequest{PoolId: "nope"})
		wantCode(t, "list the providers of an unknown pool", err, connect.CodeNotFound)
		for name, req := range map[string]*stsv1.TestPoolRequest{
			"no pool":    {SubjectToken: "x"},
			"no token":   {PoolId: "ci"},
			"bad lookup": {PoolId: "ci", ProviderId: "Bad/ID", SubjectToken: "x"},
		} {
			_, err := c.TestPool(ctx, req)
			wantCode(t, "TestPool "+name, err, connect.CodeInvalidArgument)
		}
		_, err = c.TestPool(ctx, &stsv1.TestPoolRequest{PoolId: "nope", SubjectToken: "x"})
		wantCode(t, "TestPool of an unknown pool", err, connect.CodeNotFound)
		res, err := c.TestPool(ctx, &stsv1.TestPoolRequest{PoolId: "ci", SubjectToken: "not.a.jwt"})
		if err != nil || res.GetAllowed() || res.GetReason() == "" {
			t.Errorf("TestPool of garbage = %v, %v; want a denial with a reason", res, err)
		}
		// A pool whose CEL does not compile (written behind the service's
		// back) refuses everything, in the dry run as at the token endpoint.
		now := storage.Now(time.Now())
		if err := e.store.CreatePool(t.Context(), storage.Pool{ID: "broken", OrgID: e.org.ID, Condition: "(", CreatedAt: now, UpdatedAt: now}); err != nil {
			t.Fatal(err)
		}
		res, err = c.TestPool(ctx, &stsv1.TestPoolRequest{PoolId: "broken", SubjectToken: e.sign(t, nil, "s", "acme")})
		if err != nil || res.GetAllowed() || res.GetReason() != "policy_invalid" || !strings.Contains(res.GetSteps()[len(res.GetSteps())-1].GetDetail(), "condition") {
			t.Errorf("TestPool of a pool with invalid CEL = %v, %v", res, err)
		}
	})
}

// privateJWKS is a JWKS holding a private key: a provider's keys are
// public, and an upload that carries a private key is refused.
func privateJWKS(t *testing.T) string {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: k, KeyID: "k1", Algorithm: "ES256", Use: "sig"}}})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestPoolServiceAuthz: without a credential every RPC is
// unauthenticated, with a credential lacking sts:admin (even "*") it is
// permission_denied, and nothing is written either way.
func TestPoolServiceAuthz(t *testing.T) {
	t.Parallel()
	e := newPoolEnvOn(t, newSQLiteStore(t))
	c := e.poolClient(e.srv.URL)
	if _, err := c.CreatePool(as(e.admin), e.validPool("ci")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateProvider(as(e.admin), e.validProvider("ci", "gh")); err != nil {
		t.Fatal(err)
	}
	tok := e.sign(t, nil, "repo:acme/app", "acme")
	calls := map[string]func(ctx context.Context) error{
		"CreatePool": func(ctx context.Context) error { _, err := c.CreatePool(ctx, e.validPool("x")); return err },
		"GetPool": func(ctx context.Context) error {
			_, err := c.GetPool(ctx, &stsv1.GetPoolRequest{PoolId: "ci"})
			return err
		},
		"ListPools": func(ctx context.Context) error { _, err := c.ListPools(ctx, &stsv1.ListPoolsRequest{}); return err },
		"UpdatePool": func(ctx context.Context) error {
			_, err := c.UpdatePool(ctx, &stsv1.UpdatePoolRequest{PoolId: "ci", Disabled: new(true)})
			return err
		},
		"DeletePool": func(ctx context.Context) error {
			_, err := c.DeletePool(ctx, &stsv1.DeletePoolRequest{PoolId: "ci"})
			return err
		},
		"CreateProvider": func(ctx context.Context) error {
			_, err := c.CreateProvider(ctx, e.validProvider("ci", "x"))
			return err
		},
		"GetProvider": func(ctx context.Context) error {
			_, err := c.GetProvider(ctx, &stsv1.GetProviderRequest{PoolId: "ci", ProviderId: "gh"})
			return err
		},
		"ListProviders": func(ctx context.Context) error {
			_, err := c.ListProviders(ctx, &stsv1.ListProvidersRequest{})
			return err
		},
		"UpdateProvider": func(ctx context.Context) error {
			_, err := c.UpdateProvider(ctx, &stsv1.UpdateProviderRequest{PoolId: "ci", ProviderId: "gh", Disabled: new(true)})
			return err
		},
		"DeleteProvider": func(ctx context.Context) error {
			_, err := c.DeleteProvider(ctx, &stsv1.DeleteProviderRequest{PoolId: "ci", ProviderId: "gh"})
			return err
		},
		"TestPool": func(ctx context.Context) error {
			_, err := c.TestPool(ctx, &stsv1.TestPoolRequest{PoolId: "ci", SubjectToken: tok})
			return err
		},
	}
	if want := stsv1.File_sts_v1_pool_proto.Services().ByName("PoolService").Methods().Len(); len(calls) != want {
		t.Fatalf("the test covers %d RPCs, the service has %d", len(calls), want)
	}
	readOnly := e.mintPAT(e.user.ID, pat.ScopeIdentityRead)
	before := e.counts(t)
	for name, call := range calls {
		wantCode(t, name+" without a credential", call(as("")), connect.CodeUnauthenticated)
		wantCode(t, name+" with a bad credential", call(as(pat.PrefixPAT.Generate())), connect.CodeUnauthenticated)
		wantCode(t, name+" with full access but not sts:admin", call(as(e.secret)), connect.CodePermissionDenied)
		wantCode(t, name+" with identity:read", call(as(readOnly)), connect.CodePermissionDenied)
	}
	if after := e.counts(t); after != before {
		t.Errorf("unauthorized calls wrote something: %v, then %v", before, after)
	}
	if p, err := e.store.GetPool(t.Context(), "ci"); err != nil || p.Disabled {
		t.Errorf("an unauthorized call changed the pool: %+v, %v", p, err)
	}
}

// TestPoolServiceGRPCGo creates and reads a pool and dry-runs a token with
// grpc-go itself.
func TestPoolServiceGRPCGo(t *testing.T) {
	t.Parallel()
	e := newPoolEnvOn(t, newSQLiteStore(t))
	conn := grpcConn(t, e.srv)
	ctx := metadata.AppendToOutgoingContext(t.Context(), "authorization", "Bearer "+e.admin)
	cr := &stsv1.CreatePoolResponse{}
	if err := conn.Invoke(ctx, stsv1connect.PoolServiceCreatePoolProcedure, e.validPool("ci"), cr); err != nil || cr.GetPool().GetId() != "ci" {
		t.Fatalf("CreatePool = %v, %v", cr, err)
	}
	pr := &stsv1.CreateProviderResponse{}
	if err := conn.Invoke(ctx, stsv1connect.PoolServiceCreateProviderProcedure, e.validProvider("ci", "gh"), pr); err != nil {
		t.Fatalf("CreateProvider: %v", err)
	}
	g := &stsv1.GetPoolResponse{}
	if err := conn.Invoke(ctx, stsv1connect.PoolServiceGetPoolProcedure, &stsv1.GetPoolRequest{PoolId: "ci"}, g); err != nil ||
		!proto.Equal(g.GetPool(), cr.GetPool()) || len(g.GetProviders()) != 1 {
		t.Fatalf("GetPool = %v, %v", g, err)
	}
	res := &stsv1.TestPoolResponse{}
	if err := conn.Invoke(ctx, stsv1connect.PoolServiceTestPoolProcedure, &stsv1.TestPoolRequest{PoolId: "ci", SubjectToken: e.sign(t, nil, "s", "acme")}, res); err != nil ||
		!res.GetAllowed() || len(res.GetSteps()) == 0 {
		t.Fatalf("TestPool = %v, %v", res, err)
	}
	bad := e.validPool("x")
	bad.Condition = "("
	err := conn.Invoke(ctx, stsv1connect.PoolServiceCreatePoolProcedure, bad, cr)
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(status.Convert(err).Message(), "condition") {
		t.Errorf("bad input over gRPC: %v", err)
	}
	err = conn.Invoke(t.Context(), stsv1connect.PoolServiceListPoolsProcedure, &stsv1.ListPoolsRequest{}, &stsv1.ListPoolsResponse{})
	if status.Code(err) != codes.Unauthenticated {
		t.Errorf("no credential over gRPC: %v", err)
	}
}

// TestPoolServiceCurlJSON: the plain-JSON Connect form a curl user sends,
// camelCase fields, a Duration as "3600s" and the presence wrappers.
func TestPoolServiceCurlJSON(t *testing.T) {
	t.Parallel()
	e := newPoolEnvOn(t, newSQLiteStore(t))
	code, h, m := post(t, e.env, "/api/sts.v1.PoolService/CreatePool", e.admin,
		`{"poolId":"ci","organizationId":"`+e.org.ID+`","condition":"assertion.repository_owner == \"acme\"",`+
			`"mapping":{"subject":"assertion.sub","attributes":{"repo":"assertion.repository"}},"scopes":["read"],"maxTokenLifetime":"3600s"}`)
	p, _ := m["pool"].(map[string]any)
	if code != 200 || p["id"] != "ci" || p["maxTokenLifetime"] != "3600s" || h.Get("Cache-Control") != "no-store" {
		t.Fatalf("CreatePool = %d %v", code, m)
	}
	jwks, _ := json.Marshal(e.jwks)
	code, _, m = post(t, e.env, "/api/sts.v1.PoolService/CreateProvider", e.admin,
		`{"poolId":"ci","providerId":"gh","issuer":"`+poolIssuer+`","audiences":["sts"],"jwks":`+string(jwks)+`}`)
	if pr, _ := m["provider"].(map[string]any); code != 200 || pr["jwks"] != e.jwks {
		t.Fatalf("CreateProvider = %d %v", code, m)
	}
	code, _, m = post(t, e.env, "/api/sts.v1.PoolService/UpdatePool", e.admin, `{"poolId":"ci","scopes":{"values":[]},"mapping":{"attributes":{}}}`)
	if p, _ := m["pool"].(map[string]any); code != 200 || p["scopes"] != nil || p["mapping"].(map[string]any)["attributes"] != nil ||
		p["mapping"].(map[string]any)["subject"] != "assertion.sub" {
		t.Errorf("UpdatePool = %d %v", code, m)
	}
	code, _, m = post(t, e.env, "/sts.v1.PoolService/TestPool", e.admin, `{"poolId":"ci","subjectToken":"`+e.sign(t, nil, "s", "acme")+`"}`)
	if code != 200 || m["allowed"] != true || m["providerId"] != "gh" {
		t.Errorf("TestPool = %d %v", code, m)
	}
	code, _, m = post(t, e.env, "/api/sts.v1.PoolService/CreatePool", e.admin, `{"poolId":"x","organizationId":"`+e.org.ID+`","condition":"("}`)
	if code != 400 || m["code"] != "invalid_argument" || !strings.Contains(m["message"].(string), "condition") {
		t.Errorf("bad CreatePool = %d %v", code, m)
	}
	code, _, m = post(t, e.env, "/api/sts.v1.PoolService/ListPools", e.secret, `{}`)
	if code != 403 || m["code"] != "permission_denied" {
		t.Errorf("ListPools without sts:admin = %d %v", code, m)
	}
	code, _, m = post(t, e.env, "/api/sts.v1.PoolService/ListPools", "", `{}`)
	if code != 401 || m["code"] != "unauthenticated" {
		t.Errorf("ListPools without a credential = %d %v", code, m)
	}
}
