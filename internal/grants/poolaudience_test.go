package grants

import (
	"strings"
	"testing"
	"time"

	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/storage"
)

// TestPoolAudiences: a pool lists the resource servers its tokens may be
// minted for; audience or resource selects one of them, anything else is
// invalid_target. Google's default scope means what the pool says.
func TestPoolAudiences(t *testing.T) {
	e := newEnv(t, nil)
	ctx := t.Context()
	if err := e.store.CreatePool(ctx, storage.Pool{ID: "kafka", OrgID: "acme", Condition: "true", AllowUnauthenticated: true,
		Scopes: []string{"read", "write", "admin"}, Audiences: []string{"https://kafka.example", "urn:kafka:cluster-1"},
		GoogleDefaultScopes: []string{"read"}}); err != nil {
		t.Fatal(err)
	}
	if err := e.store.CreateProvider(ctx, storage.Provider{PoolID: "kafka", ID: "p", Issuer: e.issuer.URL, Audiences: []string{"kafka"}}); err != nil {
		t.Fatal(err)
	}
	tok := func() string {
		c := e.issuer.claims(time.Now(), "u1")
		c["aud"] = "kafka"
		return e.issuer.mint(t, "RS256", c)
	}
	for _, tc := range []struct {
		name    string
		kv      []string
		wantAud string
		wantErr string
	}{
		{"audience from the pool", []string{"audience", "https://kafka.example"}, "https://kafka.example", ""},
		{"resource from the pool", []string{"resource", "urn:kafka:cluster-1"}, "urn:kafka:cluster-1", ""},
		{"no target: the issuer", nil, stsIssuer, ""},
		{"another pool's audience", []string{"audience", "https://elsewhere.example"}, "", oauth2.ErrorInvalidTarget},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, out := e.post(t, PathToken, exchangeForm(tok(), append([]string{"pool", "kafka"}, tc.kv...)...))
			if tc.wantErr != "" {
				if resp.StatusCode != 400 || out["error"] != tc.wantErr {
					t.Errorf("got %d %v, want %s", resp.StatusCode, out, tc.wantErr)
				}
				return
			}
			if resp.StatusCode != 200 {
				t.Fatalf("got %d %v", resp.StatusCode, out)
			}
			c, err := e.verify.VerifyAccessToken(ctx, out["access_token"].(string), tc.wantAud)
			if err != nil || strings.Join(c.Audience, " ") != tc.wantAud {
				t.Errorf("aud %v, %v; want %s", c, err, tc.wantAud)
			}
		})
	}
	// The ci pool lists no audiences: another resource server is refused there.
	resp, out := e.post(t, PathToken, exchangeForm(e.issuer.mint(t, "RS256", e.issuer.claims(time.Now(), "u1")), "pool", "ci", "audience", "https://kafka.example"))
	if resp.StatusCode != 400 || out["error"] != oauth2.ErrorInvalidTarget {
		t.Errorf("ci pool, kafka audience: %d %v", resp.StatusCode, out)
	}
	// Google's default scope means the pool's google_default_scopes.
	resp, out = e.post(t, PathGoogleToken, exchangeForm(tok(), "audience", "pools/kafka/providers/p", "scope", GoogleDefaultScope))
	if resp.StatusCode != 200 || out["scope"] != "read" {
		t.Errorf("default scope on kafka: %d %v, want scope read", resp.StatusCode, out)
	}
}
