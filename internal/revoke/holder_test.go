package revoke

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/opensts/sts/internal/clientauth"
	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/secret"
	"github.com/opensts/sts/internal/signer"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/ststest/sqlitetest"
	"github.com/opensts/sts/internal/tokens"
)

// TestHolderRevocation: an access token not issued to a client (gitpod.v1
// ExchangeToken's, a PAT exchange's) is revoked at /oauth2/revoke by its
// holder, the token itself being the proof; a token issued to a client
// still needs that client, and another client revokes nothing.
func TestHolderRevocation(t *testing.T) {
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

	client := func() (string, string) {
		sec := secret.PrefixClientSecret.Generate()
		c := storage.Client{ID: storage.NewID(), OrgID: "acme", PrincipalID: "sa", AuthMethod: oauth2.AuthMethodClientSecretBasic,
			SecretDigest: secret.Digest(pepper, sec)}
		if err := st.CreateClient(ctx, c); err != nil {
			t.Fatal(err)
		}
		return c.ID, sec
	}
	issuer := &tokens.Issuer{Signer: keys, IssuerURL: iss}
	mint := func(clientID string) (string, string) {
		now := time.Now()
		tok, c, err := issuer.MintAccessToken(ctx, tokens.AccessClaims{Subject: "u1", OrgID: "acme", Principal: "user", ClientID: clientID,
			Audience: tokens.Audience{iss}, IssuedAt: tokens.NewNumericDate(now), Expiry: tokens.NewNumericDate(now.Add(time.Hour))})
		if err != nil {
			t.Fatal(err)
		}
		return tok, c.ID
	}
	revoke := func(tok, id, sec string) int {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+Path, strings.NewReader(url.Values{"token": {tok}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if id != "" {
			req.SetBasicAuth(id, sec)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	revoked := func(jti string) bool {
		_, err := st.GetRevocation(ctx, tokens.RevocationIDJTI(jti))
		if err != nil && !errors.Is(err, storage.ErrNotFound) {
			t.Fatal(err)
		}
		return err == nil
	}

	x, xSec := client()
	y, ySec := client()
	for _, tc := range []struct {
		name        string
		tokenClient string // client_id claim of the token
		byID, bySec string // who revokes; "" = the holder, without client credentials
		wantStatus  int
		wantRevoked bool
	}{
		{"gitpod.v1 ExchangeToken token, by its holder", "sts-api", "", "", http.StatusOK, true},
		{"PAT exchange token, by its holder", "", "", "", http.StatusOK, true},
		{"client-less token, by some client", "", y, ySec, http.StatusOK, true},
		{"client X's token, without credentials", x, "", "", http.StatusUnauthorized, false},
		{"client X's token, by client Y", x, y, ySec, http.StatusOK, false},
		{"client X's token, by client X", x, x, xSec, http.StatusOK, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok, jti := mint(tc.tokenClient)
			if got := revoke(tok, tc.byID, tc.bySec); got != tc.wantStatus {
				t.Errorf("revoke = %d, want %d", got, tc.wantStatus)
			}
			if got := revoked(jti); got != tc.wantRevoked {
				t.Errorf("revoked = %v, want %v", got, tc.wantRevoked)
			}
		})
	}
	// Without credentials, nothing but a valid client-less access token
	// is accepted.
	if got := revoke("not-a-token", "", ""); got != http.StatusUnauthorized {
		t.Errorf("garbage without credentials = %d, want 401", got)
	}
}
