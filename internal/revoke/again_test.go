package revoke

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/opensts/sts/internal/clientauth"
	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/signer"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/ststest/sqlitetest"
	"github.com/opensts/sts/internal/tokens"
)

// TestRevokedAgainWritesNothing: an access token already revoked is
// answered 200 again and nothing more is written, so that one token
// presented over and over, by its holder without credentials or by a
// public client named by client_id alone (neither rate-limited), costs
// storage one revocation row and the audit trail one event, not one of
// each per request (docs/security.md T-192).
func TestRevokedAgainWritesNothing(t *testing.T) {
	const iss = "https://sts.example"
	ctx := t.Context()
	st := sqlitetest.NewStore(t)
	keys, err := signer.NewStatic(signer.ES256)
	if err != nil {
		t.Fatal(err)
	}
	pepper := []byte(strings.Repeat("p", 32))
	h := &Handler{Clients: &clientauth.Authenticator{Store: st, Pepper: pepper}, Tokens: &tokens.Verifier{Keys: keys, Issuer: iss}, Store: st, Pepper: pepper}
	mux := http.NewServeMux()
	h.Mount(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	if err := st.CreateClient(ctx, storage.Client{ID: "spa", OrgID: "acme", PrincipalID: "sa", AuthMethod: oauth2.AuthMethodNone}); err != nil {
		t.Fatal(err)
	}
	issuer := &tokens.Issuer{Signer: keys, IssuerURL: iss}
	mint := func(clientID string) string {
		now := time.Now()
		tok, _, err := issuer.MintAccessToken(ctx, tokens.AccessClaims{Subject: "u1", OrgID: "acme", Principal: "user", ClientID: clientID,
			Audience: tokens.Audience{iss}, IssuedAt: tokens.NewNumericDate(now), Expiry: tokens.NewNumericDate(now.Add(time.Hour))})
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	events := func() int {
		evs, err := st.ListAudit(ctx, storage.AuditFilter{Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, ev := range evs {
			if ev.Action == ActionTokenRevoke {
				n++
			}
		}
		return n
	}
	for _, tc := range []struct{ name, tokenClient, clientID string }{
		{"client-less token by its holder", "sts-api", ""},
		{"public client's token by client_id alone", "spa", "spa"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok, before := mint(tc.tokenClient), events()
			form := url.Values{"token": {tok}}
			if tc.clientID != "" {
				form.Set("client_id", tc.clientID)
			}
			for i := range 5 {
				resp, err := http.Post(srv.URL+Path, "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("revocation %d: %d, want 200", i+1, resp.StatusCode)
				}
			}
			if got := events() - before; got != 1 {
				t.Errorf("%d token.revoke events for one token revoked 5 times, want 1", got)
			}
		})
	}
}
