package introspect

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/opensts/sts/internal/clientauth"
	"github.com/opensts/sts/internal/signer"
	"github.com/opensts/sts/internal/storage/sqlstore"
	"github.com/opensts/sts/internal/ststest/sqlitetest"
	"github.com/opensts/sts/internal/tokens"
)

// testServer is the handler over a real SQLite store on loopback, trusting
// one static key, for the tests that call it with a bearer token or client
// credentials.
type testServer struct {
	iss    string
	store  *sqlstore.Store
	issuer *tokens.Issuer
	pepper []byte
	url    string
}

// newTestServer builds the handler; wire, when not nil, changes it before
// it is mounted (the store is ready by then).
func newTestServer(t *testing.T, wire func(s *testServer, h *Handler)) *testServer {
	t.Helper()
	keys, err := signer.NewStatic(signer.ES256)
	if err != nil {
		t.Fatal(err)
	}
	s := &testServer{iss: "https://sts.example", store: sqlitetest.NewStore(t), pepper: []byte(strings.Repeat("p", 32))}
	s.issuer = &tokens.Issuer{Signer: keys, IssuerURL: s.iss}
	h := &Handler{Clients: &clientauth.Authenticator{Store: s.store, Pepper: s.pepper},
		Tokens: &tokens.Verifier{Keys: keys, Issuer: s.iss}, Refresh: s.store, Pepper: s.pepper}
	if wire != nil {
		wire(s, h)
	}
	mux := http.NewServeMux()
	h.Mount(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	s.url = srv.URL
	return s
}

// mint signs c as an access token for the server's issuer, valid for an
// hour from now.
func (s *testServer) mint(t *testing.T, c tokens.AccessClaims) string {
	t.Helper()
	now := time.Now()
	c.Audience = tokens.Audience{s.iss}
	c.IssuedAt, c.Expiry = tokens.NewNumericDate(now), tokens.NewNumericDate(now.Add(time.Hour))
	tok, _, err := s.issuer.MintAccessToken(t.Context(), c)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// post sends body to path, authenticated by auth when it is not nil, and
// returns the response (body read and closed) with the body as JSON.
func (s *testServer) post(t *testing.T, path, contentType, body string, auth func(*http.Request)) (*http.Response, map[string]any) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, s.url+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	if auth != nil {
		auth(req)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	json.NewDecoder(resp.Body).Decode(&m) // an empty or non-JSON body leaves m nil
	return resp, m
}

// authorization sets the Authorization header to value.
func authorization(value string) func(*http.Request) {
	return func(r *http.Request) { r.Header.Set("Authorization", value) }
}
