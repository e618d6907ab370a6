package app

import (
	"encoding/json"
	"github.com/opensts/sts/internal/storage/sqlstore"
	"github.com/opensts/sts/internal/ststest/pgtest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/opensts/sts/internal/grants"
	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/tokens"
)

const inactiveBody = "{\"active\":false}\n"

// TestSecurityItems covers docs/security.md T-09 and T-61–T-65 over real HTTP
// and SQLite. Each case names the attack it stops.
func TestSecurityItems(t *testing.T) { testSecurityItems(t, newOAuthEnv(t)) }

// TestSecurityItemsPostgres runs TestSecurityItems on PostgreSQL.
func TestSecurityItemsPostgres(t *testing.T) {
	t.Parallel()
	testSecurityItems(t, newOAuthEnvOn(t, sqlstore.Config{Driver: sqlstore.DriverPostgres, DSN: pgtest.DSN(t)}))
}

func testSecurityItems(t *testing.T, e *oauthEnv) {
	tokA := e.ccToken(t, e.a, e.secA)
	tokB := e.ccToken(t, e.b, e.secB)
	revoked := e.ccToken(t, e.a, e.secA)
	e.post(t, "/oauth2/revoke", url.Values{"token": {revoked}}, e.a.ID, e.secA)
	cc := url.Values{"grant_type": {oauth2.GrantTypeClientCredentials}}
	tok := func(v string) url.Values { return url.Values{"token": {v}} }
	for _, tc := range []struct {
		name, path string
		form       url.Values
		id, sec    string
		wantStatus int
		wantBody   string // exact when set
		wantIn     string // substring when set
		wantWWW    bool
	}{
		{"T-09 token without client", "/oauth2/token", cc, "", "", 401, "", "invalid_client", true},
		{"T-09 token wrong secret", "/oauth2/token", cc, e.a.ID, e.secB, 401, "", "invalid_client", true},
		{"T-09 token unknown client", "/oauth2/token", cc, "nope", e.secA, 401, "", "invalid_client", true},
		{"T-09 revoke without client", "/oauth2/revoke", tok(tokA), "", "", 401, "", "invalid_client", true},
		{"T-61 introspect without caller", "/oauth2/introspect", tok(tokA), "", "", 401, "", "invalid_client", true},
		{"T-61 introspect bad caller", "/oauth2/introspect", tok(tokA), e.a.ID, "sts_cs_garbage", 401, "", "invalid_client", true},
		{"T-62 introspect garbage", "/oauth2/introspect", tok("garbage"), e.a.ID, e.secA, 200, inactiveBody, "", false},
		{"T-62 introspect revoked", "/oauth2/introspect", tok(revoked), e.a.ID, e.secA, 200, inactiveBody, "", false},
		{"T-62 introspect other RS's token", "/oauth2/introspect", tok(tokB), e.a.ID, e.secA, 200, inactiveBody, "", false},
		{"T-62 introspect unknown refresh", "/oauth2/introspect", tok("sts_rt_" + strings.Repeat("A", 36)), e.a.ID, e.secA, 200, inactiveBody, "", false},
		{"T-63 revoke garbage", "/oauth2/revoke", tok("garbage"), e.a.ID, e.secA, 200, "{}\n", "", false},
		{"T-63 revoke wrong hint", "/oauth2/revoke", url.Values{"token": {tokA}, "token_type_hint": {"refresh_token"}}, e.b.ID, e.secB, 200, "{}\n", "", false},
		{"T-63 revoke PAT is unsupported type", "/oauth2/revoke", tok("sts_pat_" + strings.Repeat("A", 36)), e.a.ID, e.secA, 400, "", "unsupported_token_type", false},
		{"T-65 truncated client secret", "/oauth2/token", cc, e.a.ID, e.secA[:len(e.secA)-1], 401, "", "invalid_client", true},
		{"T-65 introspect truncated token", "/oauth2/introspect", tok(tokA[:len(tokA)-2]), e.a.ID, e.secA, 200, inactiveBody, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, h, body := e.post(t, tc.path, tc.form, tc.id, tc.sec)
			if status != tc.wantStatus || (tc.wantBody != "" && body != tc.wantBody) || !strings.Contains(body, tc.wantIn) {
				t.Fatalf("POST %s = %d %q, want %d %q%q", tc.path, status, body, tc.wantStatus, tc.wantBody, tc.wantIn)
			}
			if tc.wantWWW && !strings.HasPrefix(h.Get("WWW-Authenticate"), "Basic") {
				t.Errorf("WWW-Authenticate = %q, want Basic", h.Get("WWW-Authenticate"))
			}
		})
	}
	// T-63: B's attempt did not revoke A's token.
	if got := e.introspect(t, tokA); got["active"] != true {
		t.Fatalf("A's token after B's revoke attempt: %v", got)
	}
}

// TestStorageFailure: docs/security.md T-64 and F-18. A revocation that cannot
// be stored is 503 + Retry-After, never 200; introspection that cannot
// check revocation is 503, never active:false by accident.
func TestStorageFailure(t *testing.T) {
	t.Parallel()
	e := newOAuthEnv(t)
	tokA := e.ccToken(t, e.a, e.secA)
	e.store.fail = true
	status, h, body := e.post(t, "/oauth2/revoke", url.Values{"token": {tokA}}, e.a.ID, e.secA)
	if status != 503 || h.Get("Retry-After") == "" {
		t.Fatalf("revoke with failing storage = %d %q (Retry-After %q), want 503", status, body, h.Get("Retry-After"))
	}
	status, h, body = e.post(t, "/oauth2/introspect", url.Values{"token": {tokA}}, e.a.ID, e.secA)
	if status != 503 || h.Get("Retry-After") == "" {
		t.Fatalf("introspect with failing storage = %d %q, want 503", status, body)
	}
	e.store.fail = false
	if got := e.introspect(t, tokA); got["active"] != true {
		t.Fatalf("token after failed revoke: %v (the client must assume it is still valid)", got)
	}
}

// TestRefreshRotation: reuse of a rotated token revokes the family; a
// retry within the grace window gets the same successor; tokens are bound
// to their client; scope only narrows; truncation is refused (T-65).
func TestRefreshRotation(t *testing.T) { testRefreshRotation(t, newOAuthEnv(t)) }

// TestRefreshRotationPostgres runs TestRefreshRotation on PostgreSQL.
func TestRefreshRotationPostgres(t *testing.T) {
	t.Parallel()
	testRefreshRotation(t, newOAuthEnvOn(t, sqlstore.Config{Driver: sqlstore.DriverPostgres, DSN: pgtest.DSN(t)}))
}

func testRefreshRotation(t *testing.T, e *oauthEnv) {
	issue := func() string {
		rt, err := e.parts.Refresh.Issue(t.Context(), oauth2.GrantTypeTokenExchange, &e.a, tokens.AccessClaims{Subject: e.a.PrincipalID, OrgID: "org", Principal: "SERVICE_ACCOUNT"}, []string{"read", "write"}, []string{"https://a.example"})
		if err != nil {
			t.Fatal(err)
		}
		return rt
	}
	refresh := func(rt, id, sec string, kv ...string) (int, map[string]any) {
		f := url.Values{"grant_type": {oauth2.GrantTypeRefreshToken}, "refresh_token": {rt}}
		for i := 0; i+1 < len(kv); i += 2 {
			f.Set(kv[i], kv[i+1])
		}
		status, _, body := e.post(t, "/oauth2/token", f, id, sec)
		var m map[string]any
		json.Unmarshal([]byte(body), &m)
		return status, m
	}
	t.Run("grace returns the same successor", func(t *testing.T) {
		rt0 := issue()
		_, r1 := refresh(rt0, e.a.ID, e.secA)
		e.clock.Advance(2 * time.Second)
		status, r2 := refresh(rt0, e.a.ID, e.secA)
		if status != 200 || r2["refresh_token"] != r1["refresh_token"] || r1["refresh_token"] == nil {
			t.Fatalf("retry in grace = %d %v, want successor %v", status, r2, r1["refresh_token"])
		}
	})
	t.Run("reuse after grace revokes the family", func(t *testing.T) {
		rt0 := issue()
		_, r1 := refresh(rt0, e.a.ID, e.secA)
		e.clock.Advance(grants.DefaultRefreshGrace + time.Second)
		if status, r := refresh(rt0, e.a.ID, e.secA); status != 400 || r["error"] != "invalid_grant" || r["reason"] != "refresh_token_reused" {
			t.Fatalf("reuse = %d %v", status, r)
		}
		if status, r := refresh(r1["refresh_token"].(string), e.a.ID, e.secA); status != 400 || r["error"] != "invalid_grant" {
			t.Fatalf("successor after reuse = %d %v, want invalid_grant", status, r)
		}
	})
	t.Run("bound to its client", func(t *testing.T) {
		rt0 := issue()
		if status, r := refresh(rt0, e.b.ID, e.secB); status != 400 || r["error"] != "invalid_grant" {
			t.Fatalf("other client = %d %v", status, r)
		}
		if status, _ := refresh(rt0, e.a.ID, e.secA); status != 200 {
			t.Fatalf("own client after another's attempt = %d, want 200 (not revoked)", status)
		}
	})
	t.Run("scope only narrows", func(t *testing.T) {
		rt0 := issue()
		if status, r := refresh(rt0, e.a.ID, e.secA, "scope", "read admin"); status != 400 || r["error"] != "invalid_scope" {
			t.Fatalf("widen = %d %v", status, r)
		}
		if status, r := refresh(rt0, e.a.ID, e.secA, "scope", "read"); status != 200 || r["scope"] != "read" {
			t.Fatalf("narrow = %d %v", status, r)
		}
	})
	t.Run("T-65 truncated", func(t *testing.T) {
		rt0 := issue()
		if status, r := refresh(rt0[:len(rt0)-1], e.a.ID, e.secA); status != 400 || r["error"] != "invalid_grant" {
			t.Fatalf("truncated = %d %v", status, r)
		}
	})
	t.Run("revoke by client revokes the family", func(t *testing.T) {
		rt0 := issue()
		if status, _, _ := e.post(t, "/oauth2/revoke", url.Values{"token": {rt0}}, e.a.ID, e.secA); status != 200 {
			t.Fatal(status)
		}
		if got := e.introspect(t, rt0); len(got) != 1 || got["active"] != false {
			t.Fatalf("revoked refresh introspects %v", got)
		}
	})
	t.Run("leak report revokes and says nothing", func(t *testing.T) {
		rt0 := issue()
		for _, creds := range []string{`{"credentials":["` + rt0 + `"]}`, `{"credentials":["sts_rt_` + strings.Repeat("B", 36) + `"]}`} {
			resp, err := e.srv.Client().Post(e.srv.URL+"/credentials/revoke", "application/json", strings.NewReader(creds))
			if err != nil || resp.StatusCode != 202 {
				t.Fatalf("leak report = %v %v", resp.StatusCode, err)
			}
			resp.Body.Close()
		}
		if status, _ := refresh(rt0, e.a.ID, e.secA); status != 400 {
			t.Fatalf("leaked refresh token still works: %d", status)
		}
	})
}
