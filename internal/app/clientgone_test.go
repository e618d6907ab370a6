package app

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/opensts/sts/internal/clients"
	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/tokens"
)

// TestClientEndsItsAccessTokens: the access tokens issued to a client
// (client_credentials, and those minted from its refresh-token families)
// stop working while the client is disabled and for good once it is
// deleted (docs/security.md A-33), at once on the node that made the
// change and within the record cache's TTL on the others. Tokens of
// another client are unaffected; re-enabling the client makes its
// unexpired tokens work again, as re-enabling a principal does.
func TestClientEndsItsAccessTokens(t *testing.T) {
	t.Parallel()
	e := newOAuthEnv(t)
	// This node's client service writes through the record cache, as
	// serve's API does; e.store beneath it is another replica or the CLI.
	here, err := clients.NewService(e.records, e.pepper)
	if err != nil {
		t.Fatal(err)
	}
	elsewhere, err := clients.NewService(e.store, e.pepper)
	if err != nil {
		t.Fatal(err)
	}
	// Introspection is a resource server's, a third client holding both
	// audiences: a disabled client a could not ask.
	_, active := e.resourceServer(t, elsewhere, "https://a.example", "https://b.example")
	refreshed := func() string {
		t.Helper()
		status, _, body := e.post(t, "/oauth2/token", url.Values{"grant_type": {oauth2.GrantTypeRefreshToken}, "refresh_token": {e.issueRefresh(t)}}, e.a.ID, e.secA)
		var m struct {
			AccessToken string `json:"access_token"`
		}
		json.Unmarshal([]byte(body), &m)
		if status != 200 || m.AccessToken == "" {
			t.Fatalf("refresh = %d %s", status, body)
		}
		return m.AccessToken
	}
	setDisabled := func(svc *clients.Service, disabled bool) {
		t.Helper()
		if _, err := svc.Update(t.Context(), clients.Caller{Actor: "test"}, e.a.ID, clients.UpdateInput{Disabled: &disabled}); err != nil {
			t.Fatal(err)
		}
	}

	ccA, refA, ccB := e.ccToken(t, e.a, e.secA), refreshed(), e.ccToken(t, e.b, e.secB)
	for i, tok := range []string{ccA, refA, ccB} {
		if !active(tok) {
			t.Fatalf("fresh access token %d is inactive", i)
		}
	}

	setDisabled(here, true)
	if active(ccA) || active(refA) {
		t.Error("a disabled client's access token is still active on the node that disabled it")
	}
	if !active(ccB) {
		t.Error("disabling client a ended client b's token")
	}
	// The bearer API and re-exchange verify through the same verifier.
	if _, err := e.parts.Verifier.VerifyAccessTokenAnyAudience(t.Context(), ccA); tokens.Reason(err) != "token_source_gone" {
		t.Errorf("verifier on a disabled client's token: %v, want token_source_gone", err)
	}

	setDisabled(here, false)
	if !active(ccA) || !active(refA) {
		t.Error("re-enabling the client left its unexpired tokens inactive")
	}

	// Disabled elsewhere: this node believes its cached copy for at most
	// the record cache's TTL.
	setDisabled(elsewhere, true)
	e.clock.Advance(tokens.DefaultSourceTTL)
	if active(ccA) {
		t.Error("a client disabled elsewhere: its token still active past the cache's TTL")
	}
	// Re-enabled elsewhere: accepted at once, since a refusal is never
	// taken from the cached copy.
	setDisabled(elsewhere, false)
	if !active(ccA) {
		t.Error("a client re-enabled elsewhere: its token still inactive")
	}

	if err := here.Delete(t.Context(), clients.Caller{Actor: "test"}, e.a.ID); err != nil {
		t.Fatal(err)
	}
	if active(ccA) || active(refA) {
		t.Error("a deleted client's access token is still active")
	}
	if _, err := e.store.GetClient(t.Context(), e.a.ID); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("client a after delete: %v", err)
	}
	if !active(ccB) {
		t.Error("deleting client a ended client b's token")
	}
}

// TestRefreshTokenIntrospectionFollowsItsSources: introspection calls a
// refresh token active only while the token endpoint would honour it: not
// once its client is disabled or its principal disabled (RFC 7662 §2.2,
// "active"; docs/security.md A-33), and again once they are re-enabled.
func TestRefreshTokenIntrospectionFollowsItsSources(t *testing.T) {
	t.Parallel()
	e := newOAuthEnv(t)
	here, err := clients.NewService(e.records, e.pepper)
	if err != nil {
		t.Fatal(err)
	}
	// A resource server holding the family's audience and the introspect
	// permission introspects (no other client sees a's refresh token).
	introspect, active := e.resourceServer(t, here, "https://a.example")
	rt := e.issueRefresh(t)
	if !active(rt) {
		t.Fatal("a fresh refresh token is inactive")
	}
	for _, disabled := range []bool{true, false} {
		if _, err := here.Update(t.Context(), clients.Caller{Actor: "test"}, e.a.ID, clients.UpdateInput{Disabled: &disabled}); err != nil {
			t.Fatal(err)
		}
		if got := active(rt); got == disabled {
			t.Errorf("client disabled = %v: refresh token active = %v", disabled, got)
		}
	}
	if err := e.records.UpdatePrincipal(t.Context(), e.a.PrincipalID, func(p storage.Principal) (storage.Principal, error) {
		p.Disabled = true
		return p, nil
	}); err != nil {
		t.Fatal(err)
	}
	if active(rt) {
		t.Error("a refresh token of a disabled principal is still active")
	}
	// Storage that cannot say is 503, never an answer (F-18).
	e.store.failPrincipals = true
	e.clock.Advance(tokens.DefaultSourceTTL)
	if status, h, body := introspect(rt); status != 503 || h.Get("Retry-After") == "" {
		t.Errorf("introspection with principals unreadable = %d %s (Retry-After %q), want 503 with Retry-After", status, body, h.Get("Retry-After"))
	}
	e.store.failPrincipals = false
	// The token endpoint agrees: the refresh is refused. The principal is
	// client a's own service account, so its client authenticates no
	// more (401 invalid_client, docs/security.md A-94).
	if status, _, body := e.post(t, "/oauth2/token", url.Values{"grant_type": {oauth2.GrantTypeRefreshToken}, "refresh_token": {rt}}, e.a.ID, e.secA); status != 401 || !strings.Contains(body, `"invalid_client"`) {
		t.Errorf("refresh of a disabled principal's token = %d %s, want 401 invalid_client", status, body)
	}
}

// resourceServer registers a client for a resource server holding
// audiences and the introspect permission, through svc, and returns its
// introspection call and a predicate that fails the test unless
// introspection answers 200. The permission lets it see client a's
// refresh tokens, which a client without it never sees (docs/security.md
// T-142).
func (e *oauthEnv) resourceServer(t *testing.T, svc *clients.Service, audiences ...string) (
	introspect func(tok string) (int, http.Header, string), active func(tok string) bool,
) {
	t.Helper()
	sa := storage.Principal{ID: storage.NewID(), OrgID: "org", Kind: storage.PrincipalServiceAccount, Name: "rs"}
	if err := e.store.CreatePrincipal(t.Context(), sa); err != nil {
		t.Fatal(err)
	}
	rs, sec, err := svc.Create(t.Context(), clients.Caller{Actor: "test"}, clients.CreateInput{OrgID: "org", PrincipalID: sa.ID,
		AuthMethod: oauth2.AuthMethodClientSecretBasic, GrantTypes: []string{oauth2.GrantTypeClientCredentials}, Audiences: audiences,
		Scopes: []string{storage.ScopeIntrospect}})
	if err != nil {
		t.Fatal(err)
	}
	introspect = func(tok string) (int, http.Header, string) {
		t.Helper()
		return e.post(t, "/oauth2/introspect", url.Values{"token": {tok}}, rs.ID, sec)
	}
	active = func(tok string) bool {
		t.Helper()
		status, _, body := introspect(tok)
		if status != 200 {
			t.Fatalf("introspect = %d %s", status, body)
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(body), &m); err != nil {
			t.Fatal(err)
		}
		return m["active"] == true
	}
	return introspect, active
}

// TestRefreshTokenIntrospectionFollowsRevokedSources: a refresh token is
// inactive once a token its family was exchanged from (src_jti), or the
// earlier family that token belonged to (grant_id), is revoked, as the
// refresh grant then refuses it (docs/security.md A-36).
func TestRefreshTokenIntrospectionFollowsRevokedSources(t *testing.T) {
	t.Parallel()
	e := newOAuthEnv(t)
	here, err := clients.NewService(e.records, e.pepper)
	if err != nil {
		t.Fatal(err)
	}
	_, active := e.resourceServer(t, here, "https://a.example")
	begin := func(c tokens.AccessClaims) string {
		t.Helper()
		c.Subject, c.OrgID, c.Principal = e.a.PrincipalID, "org", "SERVICE_ACCOUNT"
		rt, err := e.parts.Refresh.Issue(t.Context(), oauth2.GrantTypeTokenExchange, &e.a, c, []string{"read"}, []string{"https://a.example"})
		if err != nil {
			t.Fatal(err)
		}
		return rt
	}
	fromToken := begin(tokens.AccessClaims{SourceJTIs: []string{"jti-0", "jti-1"}})
	fromFamily := begin(tokens.AccessClaims{GrantID: "family-0"})
	if !active(fromToken) || !active(fromFamily) {
		t.Fatal("a fresh refresh token is inactive")
	}
	for _, r := range []storage.Revocation{
		{ID: tokens.RevocationIDJTI("jti-1"), Reason: "test", CreatedAt: storage.Now(e.clock.Now()), ExpiresAt: storage.Now(e.clock.Now().Add(time.Hour))},
		tokens.GrantRevocation("family-0", "test", e.clock.Now(), 0),
	} {
		if err := e.store.PutRevocation(t.Context(), r); err != nil {
			t.Fatal(err)
		}
	}
	if active(fromToken) {
		t.Error("a refresh token of a family exchanged from a revoked token is still active")
	}
	if active(fromFamily) {
		t.Error("a refresh token of a family begun from a token of a revoked family is still active")
	}
}

// TestClientNarrowedEndsTokensHoldingMore: a scope taken from a client
// ends its access tokens holding that scope (introspection, the
// verifier), as a scope taken from a PAT does; its tokens within what it
// still allows live on, and a refresh asking for what it still allows is
// honoured (docs/security.md A-52).
func TestClientNarrowedEndsTokensHoldingMore(t *testing.T) {
	t.Parallel()
	e := newOAuthEnv(t)
	here, err := clients.NewService(e.records, e.pepper)
	if err != nil {
		t.Fatal(err)
	}
	_, active := e.resourceServer(t, here, "https://a.example")
	cc := func(scope string) string {
		t.Helper()
		status, _, body := e.post(t, "/oauth2/token", url.Values{"grant_type": {oauth2.GrantTypeClientCredentials}, "scope": {scope}}, e.a.ID, e.secA)
		var m struct {
			AccessToken string `json:"access_token"`
		}
		if json.Unmarshal([]byte(body), &m); status != 200 || m.AccessToken == "" {
			t.Fatalf("client_credentials for %q = %d %s", scope, status, body)
		}
		return m.AccessToken
	}
	both, read := cc("read write"), cc("read")
	rt, err := e.parts.Refresh.Issue(t.Context(), oauth2.GrantTypeTokenExchange, &e.a, tokens.AccessClaims{Subject: e.a.PrincipalID, OrgID: "org", Principal: "SERVICE_ACCOUNT"},
		[]string{"read", "write"}, []string{"https://a.example"})
	if err != nil {
		t.Fatal(err)
	}
	if !active(both) || !active(read) || !active(rt) {
		t.Fatal("fresh tokens inactive")
	}
	narrowed := []string{"read"}
	if _, err := here.Update(t.Context(), clients.Caller{Actor: "test"}, e.a.ID, clients.UpdateInput{Scopes: &narrowed}); err != nil {
		t.Fatal(err)
	}
	if active(both) {
		t.Error("a token holding a scope taken from its client is still active")
	}
	if _, err := e.parts.Verifier.VerifyAccessTokenAnyAudience(t.Context(), both); tokens.Reason(err) != "token_source_gone" {
		t.Errorf("verifier on it: %v, want token_source_gone", err)
	}
	if !active(read) {
		t.Error("a token within what its client still allows is inactive")
	}
	// The family can still be refreshed for what the client allows, so
	// its refresh token stays active; asking for all of it is refused.
	if !active(rt) {
		t.Error("the refresh token is inactive, though a refresh for read is honoured")
	}
	refresh := func(scope string) (int, string) {
		form := url.Values{"grant_type": {oauth2.GrantTypeRefreshToken}, "refresh_token": {rt}}
		if scope != "" {
			form.Set("scope", scope)
		}
		status, _, body := e.post(t, "/oauth2/token", form, e.a.ID, e.secA)
		var m struct {
			RefreshToken string `json:"refresh_token"`
		}
		if json.Unmarshal([]byte(body), &m); m.RefreshToken != "" {
			rt = m.RefreshToken
		}
		return status, body
	}
	if status, body := refresh(""); status != 400 {
		t.Errorf("refresh for the family's whole scope after the client lost write = %d %s, want 400", status, body)
	}
	if status, body := refresh("read"); status != 200 {
		t.Errorf("refresh for read = %d %s, want 200", status, body)
	}
}

// TestClientAudienceNarrowedEndsItsTokens: an audience taken from a client
// ends its access tokens for that audience and its refresh families for
// it at introspection and the verifier, at once on this node, as the
// token endpoint no longer issues them; its tokens for an audience it
// still lists live on (docs/security.md A-60).
func TestClientAudienceNarrowedEndsItsTokens(t *testing.T) {
	t.Parallel()
	e := newOAuthEnv(t)
	here, err := clients.NewService(e.records, e.pepper)
	if err != nil {
		t.Fatal(err)
	}
	_, active := e.resourceServer(t, here, "https://a.example", "https://z.example")
	setAudiences := func(l ...string) {
		t.Helper()
		if _, err := here.Update(t.Context(), clients.Caller{Actor: "test"}, e.a.ID, clients.UpdateInput{Audiences: &l}); err != nil {
			t.Fatal(err)
		}
	}
	cc := func(aud string) string {
		t.Helper()
		status, _, body := e.post(t, "/oauth2/token", url.Values{"grant_type": {oauth2.GrantTypeClientCredentials}, "scope": {"read"}, "audience": {aud}}, e.a.ID, e.secA)
		var m struct {
			AccessToken string `json:"access_token"`
		}
		if json.Unmarshal([]byte(body), &m); status != 200 || m.AccessToken == "" {
			t.Fatalf("client_credentials for %s = %d %s", aud, status, body)
		}
		return m.AccessToken
	}
	setAudiences("https://a.example", "https://z.example")
	forA, forZ := cc("https://a.example"), cc("https://z.example")
	rt, err := e.parts.Refresh.Issue(t.Context(), oauth2.GrantTypeTokenExchange, &e.a, tokens.AccessClaims{Subject: e.a.PrincipalID, OrgID: "org", Principal: "SERVICE_ACCOUNT"},
		[]string{"read"}, []string{"https://a.example"})
	if err != nil {
		t.Fatal(err)
	}
	if !active(forA) || !active(forZ) || !active(rt) {
		t.Fatalf("fresh tokens inactive: %v %v %v", active(forA), active(forZ), active(rt))
	}
	setAudiences("https://z.example")
	if active(forA) {
		t.Error("a token for an audience taken from its client is still active")
	}
	if _, err := e.parts.Verifier.VerifyAccessTokenAnyAudience(t.Context(), forA); tokens.Reason(err) != "token_source_gone" {
		t.Errorf("verifier on it: %v, want token_source_gone", err)
	}
	if !active(forZ) {
		t.Error("a token for an audience its client still lists is inactive")
	}
	if active(rt) {
		t.Error("a refresh token for an audience taken from its client is still active")
	}
	status, _, body := e.post(t, "/oauth2/token", url.Values{"grant_type": {oauth2.GrantTypeRefreshToken}, "refresh_token": {rt}}, e.a.ID, e.secA)
	if status != 400 {
		t.Errorf("refresh of that family = %d %s, want 400", status, body)
	}
}
