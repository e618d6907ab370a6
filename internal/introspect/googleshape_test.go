package introspect_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opensts/sts/internal/clientauth"
	"github.com/opensts/sts/internal/googlests"
	"github.com/opensts/sts/internal/introspect"
	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/secret"
	"github.com/opensts/sts/internal/signer"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/storage/sqlstore"
	"github.com/opensts/sts/internal/tokens"
)

// basicAuth adds a client's HTTP Basic credentials, as the http.Client
// handed to Google's generated client would.
type basicAuth struct{ id, secret string }

func (b basicAuth) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.SetBasicAuth(b.id, b.secret)
	return http.DefaultTransport.RoundTrip(r)
}

// TestGoogleIntrospectShape: POST /v1/introspect answers in the shape of
// Google's discovery document (exp and iat as int64 strings, username),
// judged by the generated client's Introspect call; /oauth2/introspect
// keeps RFC 7662's numbers.
func TestGoogleIntrospectShape(t *testing.T) {
	ctx := t.Context()
	store, err := sqlstore.Open(ctx, sqlstore.Config{Driver: sqlstore.DriverSQLite, DSN: filepath.Join(t.TempDir(), "sts.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	if err := store.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if err := store.CreateOrganization(ctx, storage.Organization{ID: "acme", Name: "Acme", Tier: "enterprise"}); err != nil {
		t.Fatal(err)
	}
	pepper := []byte(strings.Repeat("p", 32))
	sec := secret.PrefixClientSecret.Generate()
	client := storage.Client{ID: storage.NewID(), OrgID: "acme", PrincipalID: "sa", AuthMethod: oauth2.AuthMethodClientSecretBasic,
		SecretDigest: secret.Digest(pepper, sec), Audiences: []string{"https://api.example"}}
	if err := store.CreateClient(ctx, client); err != nil {
		t.Fatal(err)
	}
	keys, err := signer.NewStatic(signer.ES256)
	if err != nil {
		t.Fatal(err)
	}
	const iss = "https://sts.example"
	h := &introspect.Handler{
		Clients: &clientauth.Authenticator{Store: store, Pepper: pepper},
		Tokens:  &tokens.Verifier{Keys: keys, Issuer: iss},
	}
	mux := http.NewServeMux()
	h.Mount(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()

	now := time.Now().Truncate(time.Second)
	tok, _, err := (&tokens.Issuer{Signer: keys, IssuerURL: iss}).MintAccessToken(ctx, tokens.AccessClaims{
		Subject: "repo:acme/app", Audience: tokens.Audience{"https://api.example"}, Scope: "read", OrgID: "acme",
		IssuedAt: tokens.NewNumericDate(now), Expiry: tokens.NewNumericDate(now.Add(10 * time.Minute)),
	})
	if err != nil {
		t.Fatal(err)
	}
	svc := &googlests.Service{BasePath: srv.URL + "/", Client: &http.Client{Transport: basicAuth{client.ID, sec}}}
	got, err := svc.Introspect(ctx, &googlests.IntrospectTokenRequest{Token: tok, TokenTypeHint: "access_token"})
	if err != nil {
		t.Fatalf("generated client's Introspect: %v", err)
	}
	if !got.Active || got.Exp != now.Add(10*time.Minute).Unix() || got.Iat != now.Unix() || got.Iss != iss ||
		got.Sub != "repo:acme/app" || got.Username != "repo:acme/app" || got.Scope != "read" {
		t.Errorf("Introspect = %+v", got)
	}
	// An inactive token is just active=false.
	if got, err := svc.Introspect(ctx, &googlests.IntrospectTokenRequest{Token: "a.b.c"}); err != nil || got.Active || got.Sub != "" {
		t.Errorf("inactive: %+v %v", got, err)
	}
	// The raw answer has exactly Google's types.
	raw, _ := http.NewRequest(http.MethodPost, srv.URL+introspect.PathGoogle, strings.NewReader(`{"token":"`+tok+`"}`))
	raw.Header.Set("Content-Type", "application/json")
	raw.SetBasicAuth(client.ID, sec)
	if resp, err := http.DefaultClient.Do(raw); err != nil {
		t.Fatal(err)
	} else {
		var m map[string]any
		jsonDecode(resp, &m)
		resp.Body.Close()
		if _, ok := m["exp"].(string); !ok || m["username"] != "repo:acme/app" {
			t.Errorf("/v1/introspect = %v, want exp as a string and username", m)
		}
	}

	// RFC 7662 keeps JSON numbers on /oauth2/introspect.
	r, _ := http.NewRequest(http.MethodPost, srv.URL+introspect.Path, strings.NewReader("token="+tok))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.SetBasicAuth(client.ID, sec)
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var rfc map[string]any
	if err := jsonDecode(resp, &rfc); err != nil || rfc["exp"] != float64(now.Add(10*time.Minute).Unix()) {
		t.Errorf("/oauth2/introspect exp = %#v (%v), want a JSON number", rfc["exp"], err)
	}
}

func jsonDecode(resp *http.Response, v any) error { return json.NewDecoder(resp.Body).Decode(v) }
