package app_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/opensts/sts/internal/audit"
	"github.com/opensts/sts/internal/pat"
)

// gitpodCredentials makes the user's gitpod.v1 credentials straight in
// e's store, as an administrator would: one-time exchange tokens and PATs.
type gitpodCredentials struct {
	e    *codeEnv
	pats *pat.Service
}

func (e *codeEnv) gitpodCredentials(t *testing.T) gitpodCredentials {
	t.Helper()
	pats, err := pat.NewService(e.store, e.pepper)
	if err != nil {
		t.Fatal(err)
	}
	return gitpodCredentials{e: e, pats: pats}
}

var gitpodCaller = audit.Caller{Actor: "principal:test"}

// exchangeToken is a one-time exchange token for the user.
func (g gitpodCredentials) exchangeToken(t *testing.T) string {
	t.Helper()
	_, ext, err := g.pats.CreateExchangeToken(t.Context(), gitpodCaller, g.e.user.ID, 0, pat.ExchangeSource{})
	if err != nil {
		t.Fatal(err)
	}
	return ext
}

// pat is a PAT of the user with scopes, for two days.
func (g gitpodCredentials) pat(t *testing.T, scopes ...string) string {
	t.Helper()
	_, p, err := g.pats.Create(t.Context(), gitpodCaller, pat.CreateInput{OwnerID: g.e.user.ID, Scopes: scopes, ExpiresAt: time.Now().Add(48 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// bearer is an HTTP client presenting credential.
func bearer(credential string) *http.Client { return &http.Client{Transport: bearerRT{credential}} }
