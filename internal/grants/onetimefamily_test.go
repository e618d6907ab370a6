package grants

import (
	"context"
	"errors"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opensts/sts/internal/storage"
)

// failFamilyOnce fails its first CreateRefreshToken, as a storage blip would.
type failFamilyOnce struct {
	RefreshStore
	failed atomic.Bool
}

func (f *failFamilyOnce) CreateRefreshToken(ctx context.Context, rt storage.RefreshToken) error {
	if f.failed.CompareAndSwap(false, true) {
		return errors.New("database is locked")
	}
	return f.RefreshStore.CreateRefreshToken(ctx, rt)
}

// TestOneTimeTokenSurvivesFamilyStoreFailure: a one-time subject token
// asking for offline_access whose refresh family fails to store is not
// spent: nothing was returned, and the client's retry succeeds
// (docs/security.md T-134).
func TestOneTimeTokenSurvivesFamilyStoreFailure(t *testing.T) {
	o := newOfflineEnv(t)
	e, ctx := o.env, t.Context()
	if err := e.store.UpdateProvider(ctx, "offline", "p", func(p storage.Provider) (storage.Provider, error) {
		p.OneTimeUse = true
		return p, nil
	}); err != nil {
		t.Fatal(err)
	}
	e.grant.Replay = e.store
	e.grant.Refresh.Store = &failFamilyOnce{RefreshStore: e.grant.Refresh.Store}
	c := e.issuer.claims(time.Now(), "u1")
	c["aud"], c["jti"] = "offline", "once-blip"
	form := exchangeForm(e.issuer.mint(t, "RS256", c), "pool", "offline", "scope", "read offline_access")
	resp, body := o.post(form, true)
	if resp.StatusCode == http.StatusOK {
		t.Fatalf("first use succeeded despite the failing store: %v", body)
	}
	resp, body = o.post(form, true)
	if resp.StatusCode != http.StatusOK {
		t.Errorf("retry after a failed family store = %d %v, want 200: the token was spent though nothing was issued", resp.StatusCode, body)
	}
}
