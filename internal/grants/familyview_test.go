package grants

import (
	"errors"
	"testing"
	"time"

	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/storage/cache"
	"github.com/opensts/sts/internal/tokens"
)

// serve's Refresh.Store is a cache.Store; issueFamily reads past its view
// through this interface (storedRevocations): a renamed method fails here.
var _ RevocationReader = (*cache.Store)(nil)

// TestIssueFamilyReadsPastView: serve's Refresh.Store is a cache.Store
// whose revocation view is on (SQLite). A sub: row written by another
// process (the CLI in break-glass mode) after the view's last catch-up
// must still be found by issueFamily's re-read, and the refusal describes
// the grant being issued, not a refresh_token (docs/security.md T-160).
func TestIssueFamilyReadsPastView(t *testing.T) {
	m := newMatrixEnv(t)
	ctx := t.Context()
	view := cache.New(m.store)
	view.EnableRevocations()
	if err := view.SyncRevocations(ctx); err != nil {
		t.Fatal(err)
	}
	m.ref.Store = view
	c, _ := m.client(t, storage.Client{OrgID: "acme", GrantTypes: []string{oauth2.GrantTypeRefreshToken}, Scopes: []string{"read"}})
	sub := storage.NewID()
	at := storage.Now(time.Now().Add(time.Minute))
	// Another process: straight to storage, not through the view.
	if err := m.store.PutRevocation(ctx, storage.Revocation{ID: tokens.RevocationIDSubject(sub), IssuedBefore: at, Reason: "cli",
		CreatedAt: at, ExpiresAt: at.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if rs, err := view.GetRevocations(ctx, tokens.RevocationIDSubject(sub)); err != nil || len(rs) != 0 {
		t.Fatalf("the view already answers the row (%v, %v): the test reads nothing past it", rs, err)
	}
	family := storage.NewID()
	raw, err := m.ref.issueFamily(ctx, family, "", &c, tokens.AccessClaims{Subject: sub, OrgID: "acme", Principal: string(storage.PrincipalUser)},
		[]string{"read"}, nil, time.Time{})
	e, ok := errors.AsType[*oauth2.Error](err)
	if !ok || e.Code != oauth2.ErrorInvalidGrant || raw != "" {
		t.Fatalf("issueFamily with another process's sub: row not yet in the view = %q, %v; want invalid_grant", raw, err)
	}
	if want := "authorization revoked while the token was being issued"; e.Description != want {
		t.Errorf("refusal described %q, want %q", e.Description, want)
	}
	rt, err := m.store.GetRefreshToken(ctx, family)
	if err != nil {
		t.Fatal(err)
	}
	if !rt.Revoked {
		t.Error("the refused family is live")
	}
}
