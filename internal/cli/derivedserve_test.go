package cli_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	gitpodv1 "github.com/opensts/sts/internal/gen/gitpod/v1"
	"github.com/opensts/sts/internal/gen/gitpod/v1/gitpodv1connect"
	stsv1 "github.com/opensts/sts/internal/gen/sts/v1"
	"github.com/opensts/sts/internal/gen/sts/v1/stsv1connect"
	"github.com/opensts/sts/internal/oauth2"
)

// derivedTokens is a real server with an introspecting client, for the
// tests of tokens that must die with what they were derived from.
type derivedTokens struct {
	*adminServer
	introID, introSecret string
}

func startDerived(t *testing.T) *derivedTokens {
	t.Helper()
	return withIntrospector(t, startAdminServer(t))
}

// withIntrospector adds the introspecting client to a running server.
func withIntrospector(t *testing.T, s *adminServer) *derivedTokens {
	t.Helper()
	d := &derivedTokens{adminServer: s}
	sa := d.serviceAccount(t, "introspector")
	d.introID, d.introSecret = d.client(t, sa, "introspect")
	return d
}

func (d *derivedTokens) serviceAccount(t *testing.T, name string) string {
	t.Helper()
	return newServiceAccount(t, d.dir, name)
}

func (d *derivedTokens) client(t *testing.T, principal string, scopes ...string) (id, secret string) {
	t.Helper()
	return newClient(t, d.dir, principal, d.r.base, scopes...)
}

// newServiceAccount creates, with the CLI on dir, a service account
// named name in organization default and returns its ID.
func newServiceAccount(t *testing.T, dir, name string) string {
	t.Helper()
	code, out, e := runCLI(t, "principal", "create", "--data-dir", dir, "--org", "default", "--kind", "service-account", "--name", name)
	if code != 0 || strings.TrimSpace(out) == "" {
		t.Fatalf("principal create = %d %q %q", code, out, e)
	}
	return strings.TrimSpace(out)
}

// newClient creates, with the CLI on dir, a client of principal for
// audience holding scopes, and returns its ID and secret.
func newClient(t *testing.T, dir, principal, audience string, scopes ...string) (id, secret string) {
	t.Helper()
	args := []string{"client", "create", "--data-dir", dir, "--org", "default", "--principal", principal, "--audience", audience}
	for _, s := range scopes {
		args = append(args, "--scope", s)
	}
	code, out, e := runCLI(t, args...)
	if f := strings.Fields(out); len(f) == 2 { // the ID, then the secret (docs/cli.md "Output")
		id, secret = f[0], f[1]
	}
	if code != 0 || id == "" || !strings.HasPrefix(secret, "sts_cs_") {
		t.Fatalf("client create = %d %q %q", code, out, e)
	}
	return id, secret
}

// token posts form to the token endpoint and returns status and body.
func (d *derivedTokens) token(t *testing.T, form url.Values, basic ...string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest("POST", d.r.base+"/oauth2/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if len(basic) == 2 {
		req.SetBasicAuth(basic[0], basic[1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m
}

// consumers reports how the three consumers of our access tokens judge
// tok: the bearer API (identity read), introspection and re-exchange.
func (d *derivedTokens) consumers(t *testing.T, tok string) (api error, active bool, reexchange int) {
	t.Helper()
	c := gitpodv1connect.NewIdentityServiceClient(h2cClient(tok), d.api)
	_, api = c.GetAuthenticatedIdentity(t.Context(), &gitpodv1.GetAuthenticatedIdentityRequest{})

	req, _ := http.NewRequest("POST", d.r.base+"/oauth2/introspect", strings.NewReader(url.Values{"token": {tok}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(d.introID, d.introSecret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&m)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("introspection = %d %v", resp.StatusCode, m)
	}
	reexchange, _ = d.token(t, url.Values{
		"grant_type": {oauth2.GrantTypeTokenExchange}, "subject_token": {tok},
		"subject_token_type": {oauth2.TokenTypeAccessToken},
	})
	return api, m["active"] == true, reexchange
}

// wantGone polls (the source status is cached per node for at most 5 s)
// until every consumer refuses tok, and fails if one still accepts it
// after 8 s.
func (d *derivedTokens) wantGone(t *testing.T, tok string) {
	t.Helper()
	deadline := time.Now().Add(8 * time.Second)
	for {
		api, active, re := d.consumers(t, tok)
		if connect.CodeOf(api) == connect.CodeUnauthenticated && !active && re == http.StatusBadRequest {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("8 s after its source went: bearer API err = %v, introspection active = %v, re-exchange = %d; want unauthenticated, inactive, 400",
				api, active, re)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (d *derivedTokens) wantAlive(t *testing.T, tok string) {
	t.Helper()
	if api, active, re := d.consumers(t, tok); api != nil || !active || re != http.StatusOK {
		t.Fatalf("live source: bearer API err = %v, introspection active = %v, re-exchange = %d; want ok, active, 200", api, active, re)
	}
}

var patIDRE = regexp.MustCompile(`created personal access token (\S+) `)

// TestServeDerivedTokensDieWithTheirSource: access tokens exchanged from
// a PAT stop working (bearer API, introspection, re-exchange) once the PAT
// is deleted or regenerated, and client_credentials tokens once their
// principal is disabled, within the 5 s cache bound; a re-exchanged token
// dies with the original source too, and so does a gitpod.v1
// ExchangeToken token with its principal. PAT-derived tokens live one hour at
// most by default.
func TestServeDerivedTokensDieWithTheirSource(t *testing.T) {
	t.Parallel() // waits out the 5 s caches; overlaps the other waiting tests
	d := startDerived(t)
	exchangePAT := func(t *testing.T, secret string) string {
		t.Helper()
		code, m := d.token(t, url.Values{
			"grant_type": {oauth2.GrantTypeTokenExchange}, "subject_token": {secret},
			"subject_token_type": {oauth2.TokenTypePAT},
		})
		if code != 200 {
			t.Fatalf("PAT exchange = %d %v", code, m)
		}
		if exp, _ := m["expires_in"].(float64); exp <= 0 || exp > 3600 {
			t.Errorf("PAT-derived token lives %v s, want at most one hour", m["expires_in"])
		}
		return m["access_token"].(string)
	}
	newPAT := func(t *testing.T, scopes ...string) (id, secret string) {
		t.Helper()
		if len(scopes) == 0 {
			scopes = []string{"*"}
		}
		args := []string{"pat", "create", "--data-dir", d.dir, "--user", "admin", "--expires-in", "1d"}
		for _, sc := range scopes {
			args = append(args, "--scope", sc)
		}
		code, out, errOut := runCLI(t, args...)
		secret, m := patRE.FindString(out), patIDRE.FindStringSubmatch(errOut)
		if code != 0 || secret == "" || m == nil {
			t.Fatalf("pat create = %d, %q %q", code, out, errOut)
		}
		return m[1], secret
	}

	t.Run("PAT deleted", func(t *testing.T) {
		t.Parallel() // each case makes its own PATs and principals; the waits overlap
		id, secret := newPAT(t)
		tok := exchangePAT(t, secret)
		d.wantAlive(t, tok)
		if code, m := d.token(t, url.Values{
			"grant_type": {oauth2.GrantTypeTokenExchange}, "subject_token": {secret},
			"subject_token_type": {oauth2.TokenTypePAT}, "expires_in": {"7200"},
		}); code != 400 {
			t.Errorf("PAT exchange for two hours = %d %v, want 400", code, m)
		}
		// A token re-exchanged from it carries the same source.
		_, m := d.token(t, url.Values{"grant_type": {oauth2.GrantTypeTokenExchange}, "subject_token": {tok},
			"subject_token_type": {oauth2.TokenTypeAccessToken}})
		again, _ := m["access_token"].(string)
		if code, out, e := runCLI(t, "pat", "revoke", "--data-dir", d.dir, id); code != 0 {
			t.Fatalf("pat revoke = %d %q %q", code, out, e)
		}
		d.wantGone(t, tok)
		d.wantGone(t, again)
	})

	t.Run("PAT regenerated", func(t *testing.T) {
		t.Parallel() // each case makes its own PATs and principals; the waits overlap
		id, secret := newPAT(t)
		tok := exchangePAT(t, secret)
		d.wantAlive(t, tok)
		users := gitpodv1connect.NewUserServiceClient(h2cClient(d.admin), d.api)
		if _, err := users.RegeneratePersonalAccessToken(t.Context(), &gitpodv1.RegeneratePersonalAccessTokenRequest{
			PersonalAccessTokenId: id, ExpiresAt: timestamppb.New(time.Now().Add(24 * time.Hour))}); err != nil {
			t.Fatalf("RegeneratePersonalAccessToken: %v", err)
		}
		d.wantGone(t, tok)
	})

	t.Run("PAT narrowed", func(t *testing.T) {
		t.Parallel() // each case makes its own PATs and principals; the waits overlap
		// A token keeps only the scopes its PAT still holds: narrowing the
		// PAT ends the tokens that hold more (docs/security.md A-35).
		id, secret := newPAT(t, "identity:read", "tokens:read")
		wide := exchangePAT(t, secret) // both scopes
		code, m := d.token(t, url.Values{
			"grant_type": {oauth2.GrantTypeTokenExchange}, "subject_token": {secret},
			"subject_token_type": {oauth2.TokenTypePAT}, "scope": {"identity:read"},
		})
		if code != 200 {
			t.Fatalf("PAT exchange for identity:read = %d %v", code, m)
		}
		narrow := m["access_token"].(string)
		d.wantAlive(t, wide)
		users := gitpodv1connect.NewUserServiceClient(h2cClient(d.admin), d.api)
		if _, err := users.UpdatePersonalAccessToken(t.Context(), &gitpodv1.UpdatePersonalAccessTokenRequest{
			PersonalAccessTokenId: id, Scopes: &gitpodv1.ScopeList{Scopes: []string{"identity:read"}}}); err != nil {
			t.Fatalf("UpdatePersonalAccessToken: %v", err)
		}
		d.wantGone(t, wide)
		d.wantAlive(t, narrow)
	})

	t.Run("creator's or actor's PAT narrowed", func(t *testing.T) {
		t.Parallel() // each case makes its own PATs and principals; the waits overlap
		// What an exchange token bought ends once the PAT that created it
		// loses sts:admin, and the exchange token is no longer redeemed;
		// a delegated token ends once the actor's PAT no longer holds the
		// actor token's scope, as the actor token does (docs/security.md
		//
		id, secret := newPAT(t, "tokens:write", "sts:admin")
		sa := d.serviceAccount(t, "bought")
		ps := stsv1connect.NewPrincipalServiceClient(h2cClient(secret), d.api)
		identity := gitpodv1connect.NewIdentityServiceClient(h2cClient(""), d.api)
		create := func() string {
			t.Helper()
			x, err := ps.CreateExchangeToken(t.Context(), &stsv1.CreateExchangeTokenRequest{PrincipalId: sa})
			if err != nil {
				t.Fatalf("CreateExchangeToken: %v", err)
			}
			return x.GetExchangeToken()
		}
		res, err := identity.ExchangeToken(t.Context(), &gitpodv1.ExchangeTokenRequest{ExchangeToken: create()})
		if err != nil {
			t.Fatalf("ExchangeToken: %v", err)
		}
		bought, unspent := res.GetAccessToken(), create()

		_, subjectSecret := newPAT(t)
		subject := exchangePAT(t, subjectSecret)
		actorPAT, actorSecret := newPAT(t, "identity:read", "tokens:read")
		code, m := d.token(t, url.Values{"grant_type": {oauth2.GrantTypeTokenExchange},
			"subject_token": {subject}, "subject_token_type": {oauth2.TokenTypeAccessToken},
			"actor_token": {exchangePAT(t, actorSecret)}, "actor_token_type": {oauth2.TokenTypeAccessToken}, "scope": {"identity:read"}})
		if code != 200 {
			t.Fatalf("delegation = %d %v", code, m)
		}
		delegated := m["access_token"].(string)
		d.wantAlive(t, bought)
		d.wantAlive(t, delegated)

		users := gitpodv1connect.NewUserServiceClient(h2cClient(d.admin), d.api)
		for pid, scopes := range map[string][]string{id: {"tokens:write"}, actorPAT: {"identity:read"}} {
			if _, err := users.UpdatePersonalAccessToken(t.Context(), &gitpodv1.UpdatePersonalAccessTokenRequest{
				PersonalAccessTokenId: pid, Scopes: &gitpodv1.ScopeList{Scopes: scopes}}); err != nil {
				t.Fatalf("UpdatePersonalAccessToken: %v", err)
			}
		}
		d.wantGone(t, bought)
		d.wantGone(t, delegated)
		d.wantAlive(t, subject)
		_, err = identity.ExchangeToken(t.Context(), &gitpodv1.ExchangeTokenRequest{ExchangeToken: unspent})
		if connect.CodeOf(err) != connect.CodeUnauthenticated {
			t.Errorf("ExchangeToken after its creator's PAT lost sts:admin: %v, want unauthenticated", err)
		}
	})

	t.Run("source token revoked", func(t *testing.T) {
		t.Parallel() // each case makes its own PATs and principals; the waits overlap
		// Revoking one of our tokens ends every token exchanged from it,
		// at once, and leaves its source and its siblings alone
		// (docs/security.md A-36).
		_, secret := newPAT(t)
		tok, sibling := exchangePAT(t, secret), exchangePAT(t, secret)
		reexchange := func(tok string) string {
			t.Helper()
			code, m := d.token(t, url.Values{"grant_type": {oauth2.GrantTypeTokenExchange}, "subject_token": {tok},
				"subject_token_type": {oauth2.TokenTypeAccessToken}, "scope": {"identity:read"}})
			if code != 200 {
				t.Fatalf("re-exchange = %d %v", code, m)
			}
			return m["access_token"].(string)
		}
		child := reexchange(tok)
		grandchild := reexchange(child)
		d.wantAlive(t, grandchild)
		// Not issued to a client: its holder revokes it (RFC 7009).
		req, _ := http.NewRequest("POST", d.r.base+"/oauth2/revoke", strings.NewReader(url.Values{"token": {child}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("revoke = %d", resp.StatusCode)
		}
		if api, active, re := d.consumers(t, grandchild); api == nil || active || re != http.StatusBadRequest {
			t.Errorf("right after its source was revoked: bearer API err = %v, introspection active = %v, re-exchange = %d; want refused everywhere", api, active, re)
		}
		d.wantAlive(t, tok)
		d.wantAlive(t, sibling)
	})

	t.Run("actor's sources gone", func(t *testing.T) {
		t.Parallel() // each case makes its own PATs and principals; the waits overlap
		// A token a subject's holder obtained with an actor ends when the
		// actor's principal is disabled or its PAT deleted, as the actor
		// token does; the subject's token lives on (docs/security.md A-46).
		_, subjectSecret := newPAT(t)
		subject := exchangePAT(t, subjectSecret)
		delegate := func(t *testing.T, actor string) string {
			t.Helper()
			code, m := d.token(t, url.Values{"grant_type": {oauth2.GrantTypeTokenExchange},
				"subject_token": {subject}, "subject_token_type": {oauth2.TokenTypeAccessToken},
				"actor_token": {actor}, "actor_token_type": {oauth2.TokenTypeAccessToken}, "scope": {"identity:read"}})
			if code != 200 {
				t.Fatalf("delegation = %d %v", code, m)
			}
			return m["access_token"].(string)
		}
		actorPAT, actorSecret := newPAT(t)
		viaPAT := delegate(t, exchangePAT(t, actorSecret))
		sa := d.serviceAccount(t, "actor")
		id, secret := d.client(t, sa, "identity:read")
		code, m := d.token(t, url.Values{"grant_type": {"client_credentials"}, "scope": {"identity:read"}}, id, secret)
		if code != 200 {
			t.Fatalf("client_credentials = %d %v", code, m)
		}
		viaAccount := delegate(t, m["access_token"].(string))
		d.wantAlive(t, viaPAT)
		d.wantAlive(t, viaAccount)
		if code, out, e := runCLI(t, "pat", "revoke", "--data-dir", d.dir, actorPAT); code != 0 {
			t.Fatalf("pat revoke = %d %q %q", code, out, e)
		}
		d.wantGone(t, viaPAT)
		ps := stsv1connect.NewPrincipalServiceClient(h2cClient(d.admin), d.api)
		if _, err := ps.SetPrincipalDisabled(t.Context(), &stsv1.SetPrincipalDisabledRequest{PrincipalId: sa, Disabled: true}); err != nil {
			t.Fatalf("SetPrincipalDisabled: %v", err)
		}
		d.wantGone(t, viaAccount)
		d.wantAlive(t, subject)
	})

	t.Run("principal disabled", func(t *testing.T) {
		t.Parallel() // each case makes its own PATs and principals; the waits overlap
		sa := d.serviceAccount(t, "bot")
		id, secret := d.client(t, sa, "identity:read")
		code, m := d.token(t, url.Values{"grant_type": {"client_credentials"}, "scope": {"identity:read"}}, id, secret)
		if code != 200 {
			t.Fatalf("client_credentials = %d %v", code, m)
		}
		tok := m["access_token"].(string)
		d.wantAlive(t, tok)
		// gitpod.v1 ExchangeToken: a one-time code for the same principal.
		code, out, e := runCLI(t, "exchange-token", "create", "--data-dir", d.dir, "--principal", sa)
		ext := regexp.MustCompile(`sts_ext_[0-9A-Za-z]{36}`).FindString(out)
		if code != 0 || ext == "" {
			t.Fatalf("exchange-token create = %d, %q %q", code, out, e)
		}
		xr, err := gitpodv1connect.NewIdentityServiceClient(h2cClient(""), d.api).ExchangeToken(t.Context(),
			&gitpodv1.ExchangeTokenRequest{ExchangeToken: ext})
		if err != nil {
			t.Fatalf("ExchangeToken: %v", err)
		}
		d.wantAlive(t, xr.GetAccessToken())
		ps := stsv1connect.NewPrincipalServiceClient(h2cClient(d.admin), d.api)
		if _, err := ps.SetPrincipalDisabled(t.Context(), &stsv1.SetPrincipalDisabledRequest{PrincipalId: sa, Disabled: true}); err != nil {
			t.Fatalf("SetPrincipalDisabled: %v", err)
		}
		d.wantGone(t, tok)
		d.wantGone(t, xr.GetAccessToken())
	})
}
