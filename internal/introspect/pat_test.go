package introspect_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/opensts/sts/internal/audit"
	"github.com/opensts/sts/internal/clientauth"
	"github.com/opensts/sts/internal/introspect"
	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/pat"
	"github.com/opensts/sts/internal/secret"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/ststest/sqlitetest"
	"github.com/opensts/sts/internal/tokens"
)

// TestPATIntrospection: a personal access token introspects like our
// access tokens do: sub is the principal's ID and principal its kind
// (USER, SERVICE_ACCOUNT, …; docs/api.md), what a resource server
// authorizes by, never the ID a second time.
func TestPATIntrospection(t *testing.T) {
	ctx := t.Context()
	s := sqlitetest.NewStore(t)
	pepper := []byte("0123456789abcdef0123456789abcdef")
	if err := s.CreateOrganization(ctx, storage.Organization{ID: "o1", Name: "One"}); err != nil {
		t.Fatal(err)
	}
	pats, err := pat.NewService(s, pepper)
	if err != nil {
		t.Fatal(err)
	}
	// A resource server's client holding the introspect scope sees every
	// token of its organization.
	rsSecret := secret.PrefixClientSecret.Generate()
	if err := s.CreatePrincipal(ctx, storage.Principal{ID: "rs", OrgID: "o1", Kind: storage.PrincipalServiceAccount, Name: "rs"}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateClient(ctx, storage.Client{ID: "rs", OrgID: "o1", PrincipalID: "rs", AuthMethod: oauth2.AuthMethodClientSecretBasic,
		SecretDigest: secret.Digest(pepper, rsSecret), GrantTypes: []string{oauth2.GrantTypeClientCredentials},
		Scopes: []string{introspect.ScopeIntrospect}}); err != nil {
		t.Fatal(err)
	}
	h := &introspect.Handler{
		Clients: &clientauth.Authenticator{Store: s, Pepper: pepper},
		Tokens:  &tokens.Verifier{Issuer: issuer},
		PATs:    pats, Refresh: s, Pepper: pepper,
	}
	mux := http.NewServeMux()
	h.Mount(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	for _, kind := range []storage.PrincipalKind{storage.PrincipalUser, storage.PrincipalServiceAccount} {
		t.Run(string(kind), func(t *testing.T) {
			owner := storage.Principal{ID: storage.NewID(), OrgID: "o1", Kind: kind, Name: "owner"}
			if err := s.CreatePrincipal(ctx, owner); err != nil {
				t.Fatal(err)
			}
			_, raw, err := pats.Create(ctx, audit.Caller{Actor: "test"}, pat.CreateInput{OwnerID: owner.ID, Scopes: []string{pat.ScopeIdentityRead},
				ExpiresAt: time.Now().Add(48 * time.Hour)})
			if err != nil {
				t.Fatal(err)
			}
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+introspect.Path, strings.NewReader(tokenForm(raw)))
			req.Header.Set("Content-Type", form)
			req.SetBasicAuth("rs", rsSecret)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var got struct {
				Active    bool
				Sub       string
				Principal string
				OrgID     string `json:"org_id"`
			}
			if err := json.NewDecoder(resp.Body).Decode(&got); err != nil || resp.StatusCode != http.StatusOK {
				t.Fatalf("introspect = %d, %v", resp.StatusCode, err)
			}
			if !got.Active || got.Sub != owner.ID || got.Principal != string(kind) || got.OrgID != "o1" {
				t.Errorf("introspect PAT = %+v, want active, sub %s, principal %s, org_id o1", got, owner.ID, kind)
			}
		})
	}
}
