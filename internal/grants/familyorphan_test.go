package grants

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/secret"
	"github.com/opensts/sts/internal/storage"
)

// failAfterInsert is a real store whose revocation reads fail once a
// refresh family has been stored, and whose family INSERT fails after
// committing when commitThenFail is set (a commit whose answer was lost:
// a timeout, a dropped connection); it remembers the families stored.
type failAfterInsert struct {
	storage.Store
	commitThenFail bool

	mu       sync.Mutex
	families []string
}

func (f *failAfterInsert) CreateRefreshToken(ctx context.Context, t storage.RefreshToken) error {
	if err := f.Store.CreateRefreshToken(ctx, t); err != nil {
		return err
	}
	f.mu.Lock()
	f.families = append(f.families, t.FamilyID)
	f.mu.Unlock()
	if f.commitThenFail {
		return errors.New("connection reset while committing")
	}
	return nil
}

func (f *failAfterInsert) GetRevocations(ctx context.Context, ids ...string) ([]storage.Revocation, error) {
	f.mu.Lock()
	stored := len(f.families) > 0
	f.mu.Unlock()
	if stored {
		return nil, errors.New("revocations unavailable")
	}
	return f.Store.GetRevocations(ctx, ids...)
}

// TestFamilyNotLeftWhenItsBeginningFails: an offline_access exchange
// stores the refresh family, then reads the revocation rows again
// (docs/security.md T-160). When that read failed, or the INSERT's answer
// was lost after it committed, the exchange answered 503 and the family's
// row stayed, live: a family nobody was sent, kept until it expired and
// listed as a live grant of the person and client. It is now ended
// before the 503, and the retry begins a family of its own.
func TestFamilyNotLeftWhenItsBeginningFails(t *testing.T) {
	for _, tc := range []struct {
		name           string
		commitThenFail bool
	}{
		{"RevocationReadFails", false},
		{"InsertAnswerLost", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := newOfflineEnv(t)
			e := o.env
			f := &failAfterInsert{Store: e.store, commitThenFail: tc.commitThenFail}
			o.env.grant.Refresh.Store = f
			sc := e.issuer.claims(time.Now(), "u1")
			sc["aud"] = "offline"
			resp, body := o.post(exchangeForm(e.issuer.mint(t, "RS256", sc), "pool", "offline", "scope", "read offline_access"), true)
			if resp.StatusCode != http.StatusServiceUnavailable || body["refresh_token"] != nil || body["access_token"] != nil {
				t.Fatalf("exchange = %d %v, want 503 and no token", resp.StatusCode, body)
			}
			if len(f.families) != 1 {
				t.Fatalf("families stored = %d, want 1", len(f.families))
			}
			rt, err := e.store.GetRefreshToken(t.Context(), f.families[0])
			if err != nil {
				t.Fatal(err)
			}
			if !rt.Revoked {
				t.Error("the family of a failed exchange is stored unrevoked")
			}
			// Storage is back: the retry is answered with a family of its own.
			o.env.grant.Refresh.Store = e.store
			resp, body = o.post(exchangeForm(e.issuer.mint(t, "RS256", sc), "pool", "offline", "scope", "read offline_access"), true)
			if resp.StatusCode != http.StatusOK || body["refresh_token"] == nil {
				t.Fatalf("retry = %d %v", resp.StatusCode, body)
			}
			resp, body = o.post(map[string][]string{"grant_type": {oauth2.GrantTypeRefreshToken}, "refresh_token": {body["refresh_token"].(string)}}, true)
			if resp.StatusCode != http.StatusOK {
				t.Errorf("refresh of the retry's family = %d %v", resp.StatusCode, body)
			}
		})
	}
}

// lateInsert is a real store whose family INSERT answers an error at once
// and commits later, after whatever the beginning did about it (pgx
// cancels a query asynchronously: the INSERT may commit after the
// request has given up on it).
type lateInsert struct {
	storage.Store
	mu      sync.Mutex
	pending []storage.RefreshToken
}

func (l *lateInsert) CreateRefreshToken(_ context.Context, t storage.RefreshToken) error {
	l.mu.Lock()
	l.pending = append(l.pending, t)
	l.mu.Unlock()
	return context.DeadlineExceeded
}

// TestFamilyCommittedAfterItsEndIsRefused: a family whose INSERT commits
// after the failed beginning ended it (its UPDATE of the family's rows
// finding none) must not be refreshable: the end is the family's grant:
// row, written first and kept until the family expires, which the late
// row is judged against (docs/security.md T-160).
func TestFamilyCommittedAfterItsEndIsRefused(t *testing.T) {
	o := newOfflineEnv(t)
	e := o.env
	l := &lateInsert{Store: e.store}
	o.env.grant.Refresh.Store = l
	sc := e.issuer.claims(time.Now(), "u1")
	sc["aud"] = "offline"
	resp, body := o.post(exchangeForm(e.issuer.mint(t, "RS256", sc), "pool", "offline", "scope", "read offline_access"), true)
	if resp.StatusCode != http.StatusServiceUnavailable || body["refresh_token"] != nil {
		t.Fatalf("exchange = %d %v, want 503 and no token", resp.StatusCode, body)
	}
	o.env.grant.Refresh.Store = e.store
	if len(l.pending) != 1 {
		t.Fatalf("families begun = %d, want 1", len(l.pending))
	}
	// The INSERT commits now. Nobody was sent its secret; the test
	// stores one it knows in its place, to ask whether the row, as
	// stored, would refresh.
	raw := secret.PrefixRefreshToken.Generate()
	late := l.pending[0]
	late.Digest = secret.Digest(o.pepper, raw)
	if err := e.store.CreateRefreshToken(t.Context(), late); err != nil {
		t.Fatal(err)
	}
	resp, body = o.post(url.Values{"grant_type": {oauth2.GrantTypeRefreshToken}, "refresh_token": {raw}}, true)
	if resp.StatusCode != http.StatusBadRequest || body["error"] != oauth2.ErrorInvalidGrant {
		t.Errorf("refresh of a family committed after its end = %d %v, want 400 invalid_grant", resp.StatusCode, body["error"])
	}
}
