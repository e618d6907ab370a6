package web

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/opensts/sts/internal/hosttoken"
	"github.com/opensts/sts/internal/pat"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/ststest/sqlitetest"
)

// downVault is a host-token vault that cannot list.
type downVault struct{}

func (downVault) List(context.Context, hosttoken.Caller, hosttoken.ListInput) ([]hosttoken.Token, string, error) {
	return nil, "", errors.New("vault down")
}
func (downVault) Delete(context.Context, hosttoken.Caller, string) error { return nil }

// TestCreatedTokenShownWhenTheListFails (docs/security.md T-114): a PAT
// made on the page is shown, secret and all, even when the page's lists
// cannot be read afterwards. It used to be a 503 "try again" (shown since
// the page displays error answers): the token existed, its secret was
// never shown, and the person was told to make it again.
func TestCreatedTokenShownWhenTheListFails(t *testing.T) {
	ctx := t.Context()
	st := sqlitetest.NewStore(t)
	p := acmeAda(t, st)
	pats, err := pat.NewService(st, []byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	h, err := New(Options{Issuer: "https://sts.example", Store: st, PATs: pats, HostTokens: downVault{},
		IdleTimeout: time.Hour, AbsoluteTimeout: 8 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	form := url.Values{"name": {"made"}, "permission": {"full"}, "expires": {"30"}}
	r := httptest.NewRequest(http.MethodPost, "/tokens", strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	w := httptest.NewRecorder()
	h.createPAT(w, r, session{rec: storage.WebSession{CreatedAt: time.Now()}, principal: p}) // signed in just now
	list, _, err := pats.List(ctx, p.ID, "", 100)
	if err != nil || len(list) != 1 {
		t.Fatalf("PATs stored = %d, %v; want the one made", len(list), err)
	}
	body := w.Body.String()
	if w.Code != http.StatusOK || !strings.Contains(body, "sts_pat_") || !strings.Contains(body, "could not be read") {
		t.Errorf("= %d; want the new secret shown and the list's failure said:\n%s", w.Code, body)
	}
}
