package app

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/opensts/sts/internal/discovery"
	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/server"
	"github.com/opensts/sts/internal/signer"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/tokens"
)

// sealedKeys is a key set that cannot publish, as on a sealed node.
type sealedKeys struct{ signer.KeySet }

func (sealedKeys) JWKS() ([]byte, error) { return nil, signer.ErrSealed }

// TestRetryAfterOnEvery503 drives each HTTP surface into 503 (storage
// down, keys sealed, server not ready) and expects the one Retry-After
// policy, oauth2.RetryAfter, on every one. The Connect APIs' unavailable
// errors are checked in internal/api (TestUnavailableRetryAfter).
func TestRetryAfterOnEvery503(t *testing.T) {
	t.Parallel()
	e := newOAuthEnv(t)
	tok := e.ccToken(t, e.a, e.secA)
	rt, err := e.parts.Refresh.Issue(t.Context(), oauth2.GrantTypeTokenExchange, &e.a, tokens.AccessClaims{Subject: e.a.PrincipalID, OrgID: "org", Principal: "SERVICE_ACCOUNT"}, []string{"read"}, []string{"https://a.example"})
	if err != nil {
		t.Fatal(err)
	}
	want := oauth2.RetryAfterValue(0)

	storageDown := errors.New("storage down")
	srv := server.New(server.Options{Store: e.store, Checks: []server.Check{
		{Name: "storage", Run: func(context.Context) error { return storageDown }},
	}})
	get := func(h http.Handler, path string) (int, http.Header) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		return rec.Code, rec.Header()
	}
	jwks := http.NewServeMux()
	(&discovery.Handler{Issuer: "https://sts.example", Keys: sealedKeys{}}).Mount(jwks)

	cases := []struct {
		name string
		call func() (int, http.Header)
	}{
		{"token endpoint, storage down", func() (int, http.Header) {
			s, h, _ := e.post(t, "/oauth2/token", url.Values{"grant_type": {oauth2.GrantTypeRefreshToken}, "refresh_token": {rt}}, e.a.ID, e.secA)
			return s, h
		}},
		{"revoke, storage down", func() (int, http.Header) {
			s, h, _ := e.post(t, "/oauth2/revoke", url.Values{"token": {tok}}, e.a.ID, e.secA)
			return s, h
		}},
		{"introspect, storage down", func() (int, http.Header) {
			s, h, _ := e.post(t, "/oauth2/introspect", url.Values{"token": {tok}}, e.a.ID, e.secA)
			return s, h
		}},
		{"readyz, storage down", func() (int, http.Header) { return get(srv.Handler(), "/readyz") }},
		{"token paths before ready", func() (int, http.Header) { return get(&server.Deferred{}, "/oauth2/token") }},
		{"jwks, keys sealed", func() (int, http.Header) { return get(jwks, discovery.PathJWKS) }},
	}
	e.store.fail = true
	defer func() { e.store.fail = false }()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, h := tc.call()
			if status != http.StatusServiceUnavailable || h.Get("Retry-After") != want {
				t.Errorf("%d, Retry-After %q; want 503 with %q", status, h.Get("Retry-After"), want)
			}
		})
	}
}

// UpdateRefreshToken fails like the revocation writes, so a refresh grant
// meets a store that is down.
func (f *failing) UpdateRefreshToken(ctx context.Context, id string, fn func(storage.RefreshToken) (storage.RefreshToken, error)) error {
	if f.fail {
		return errors.New("disk on fire")
	}
	return f.Store.UpdateRefreshToken(ctx, id, fn)
}

// RotateRefreshToken fails likewise (the refresh grant rotates through it).
func (f *failing) RotateRefreshToken(ctx context.Context, id string, succ storage.RefreshToken, fn func(storage.RefreshToken) error) error {
	if f.fail {
		return errors.New("disk on fire")
	}
	return f.Store.RotateRefreshToken(ctx, id, succ, fn)
}
