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

// familyStoreDown fails every CreateRefreshToken, or every revocation read
// (the re-check once the family is stored, docs/security.md T-160), as a
// database down for a moment would.
type familyStoreDown struct {
	RefreshStore
	creates, revocations bool
}

func (f familyStoreDown) CreateRefreshToken(ctx context.Context, rt storage.RefreshToken) error {
	if f.creates {
		return errors.New("database is down")
	}
	return f.RefreshStore.CreateRefreshToken(ctx, rt)
}

func (f familyStoreDown) GetRevocations(ctx context.Context, ids ...string) ([]storage.Revocation, error) {
	if f.revocations {
		return nil, errors.New("database is down")
	}
	return f.RefreshStore.GetRevocations(ctx, ids...)
}

// TestExchangeFamilyStorageDownIsUnavailable: a token exchange with
// offline_access whose refresh family storage could not begin (the
// family's row not stored, or the revocation rows not read again once it
// was) is 503 temporarily_unavailable with Retry-After, as every storage
// failure of the token endpoint (docs/security.md "Conventions"), and
// sends no token. It was 500 server_error, which a client does not retry.
func TestExchangeFamilyStorageDownIsUnavailable(t *testing.T) {
	o := newOfflineEnv(t)
	e := o.env
	up := e.grant.Refresh.Store
	for _, down := range []familyStoreDown{{RefreshStore: up, creates: true}, {RefreshStore: up, revocations: true}} {
		e.grant.Refresh.Store = down
		c := e.issuer.claims(time.Now(), "u1")
		c["aud"] = "offline"
		resp, body := o.post(exchangeForm(e.issuer.mint(t, "RS256", c), "pool", "offline", "scope", "read offline_access"), true)
		if resp.StatusCode != http.StatusServiceUnavailable || body["error"] != "temporarily_unavailable" ||
			resp.Header.Get("Retry-After") != "5" || body["access_token"] != nil || body["refresh_token"] != nil {
			t.Errorf("exchange with the family's storage down (creates %v, revocation reads %v): %d, Retry-After %q, %v; "+
				"want 503 temporarily_unavailable, Retry-After 5, no token",
				down.creates, down.revocations, resp.StatusCode, resp.Header.Get("Retry-After"), body)
		}
	}
}
