package grants

import (
	"context"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/secret"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/tokens"
)

// pauseStore runs a hook once, just before the named step of a
// redemption reaches storage: a deterministic stand-in for a second
// request landing while the first is between two of its writes.
type pauseStore struct {
	storage.Store
	mu   sync.Mutex
	at   string // "GetPrincipal" or "CreateRefreshToken"
	hook func()
}

func (s *pauseStore) pause(step string) {
	s.mu.Lock()
	hook := s.hook
	if step != s.at {
		hook = nil
	}
	if hook != nil {
		s.hook = nil
	}
	s.mu.Unlock()
	if hook != nil {
		hook()
	}
}

func (s *pauseStore) GetPrincipal(ctx context.Context, id string) (storage.Principal, error) {
	s.pause("GetPrincipal")
	return s.Store.GetPrincipal(ctx, id)
}

func (s *pauseStore) CreateRefreshToken(ctx context.Context, t storage.RefreshToken) error {
	s.pause("CreateRefreshToken")
	return s.Store.CreateRefreshToken(ctx, t)
}

// TestAuthorizationCodeReplayRace (docs/security.md T-91, T-111): a code
// presented a second time ends everything its first redemption issued,
// for good, wherever the second presentation lands in the first: after
// it answered, between the code's consumption and the principal lookup,
// or between minting the access token and storing the refresh family.
// Before, a replay in the last window revoked a family that did not exist
// yet: the family was stored live, refreshed at once, and once the 12 h
// row ending its access tokens was collected it minted live tokens for
// the rest of its 30 days. A replay that lands inside the first
// redemption makes it refuse: the family's grant: row is read again once
// the family is stored (T-160). On SQLite and PostgreSQL, through the
// real token endpoint.
func TestAuthorizationCodeReplayRace(t *testing.T) {
	t.Parallel()
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			for _, at := range []string{"", "GetPrincipal", "CreateRefreshToken"} {
				name := "replay after the response"
				if at != "" {
					name = "replay before " + at
				}
				t.Run(name, func(t *testing.T) { testAuthorizationCodeReplayRace(t, backendStore(t, backend), at) })
			}
		})
	}
}

func testAuthorizationCodeReplayRace(t *testing.T, store storage.Store, at string) {
	m := newMatrixEnvOn(t, store)
	ctx := t.Context()
	ps := &pauseStore{Store: m.store, at: at}
	m.ref.Store = ps
	for _, g := range m.handler.Grants {
		if ac, ok := g.(*AuthorizationCode); ok {
			ac.Store = ps
		}
	}
	var offset time.Duration // the refresh grant's and verifier's clock, moved below
	var clockMu sync.Mutex
	clock := func() time.Time { clockMu.Lock(); defer clockMu.Unlock(); return time.Now().Add(offset) }
	m.ref.Now = clock
	verifier := *m.verify
	verifier.Revocations, verifier.Now = tokens.StoreRevocations{Store: m.store}, clock

	c, sec := m.client(t, storage.Client{OrgID: "acme", GrantTypes: []string{oauth2.GrantTypeAuthorizationCode, oauth2.GrantTypeRefreshToken},
		Scopes: []string{"read"}, Audiences: []string{stsIssuer}})
	code := m.authCode(t, c, "ada", "read")
	var replay struct {
		status int
		body   map[string]any
	}
	presentAgain := func() { replay.status, replay.body = m.postAs(t, c.ID, sec, code) }
	if at != "" {
		ps.hook = presentAgain // runs inside the first redemption, which waits
	}
	status, body := m.postAs(t, c.ID, sec, code)
	access, _ := body["access_token"].(string)
	refresh, _ := body["refresh_token"].(string)
	if at != "" {
		// The replay's grant: row is stored before the family: the read
		// after storing it finds the row, so the first redemption is
		// refused, its family ended and never handed out (T-160).
		if status != http.StatusBadRequest || body["error"] != oauth2.ErrorInvalidGrant || access != "" || refresh != "" {
			t.Fatalf("first redemption, replayed before its family was stored = %d %v %v, want 400 invalid_grant and no token",
				status, body["error"], body["reason"])
		}
		if replay.status != http.StatusBadRequest || replay.body["reason"] != ReasonCodeReused {
			t.Fatalf("second presentation = %d %v, want 400 %s", replay.status, replay.body["reason"], ReasonCodeReused)
		}
		return
	}
	if status != http.StatusOK || access == "" || refresh == "" {
		t.Fatalf("first redemption = %d %v %v", status, body["error"], body["reason"])
	}
	if at == "" {
		presentAgain()
	}
	if replay.status != http.StatusBadRequest || replay.body["reason"] != ReasonCodeReused {
		t.Fatalf("second presentation = %d %v, want 400 %s", replay.status, replay.body["reason"], ReasonCodeReused)
	}

	// The access token of the first redemption is ended.
	if _, err := verifier.VerifyAccessToken(ctx, access, stsIssuer); tokens.Reason(err) != "token_revoked" {
		t.Errorf("the first redemption's access token = %v, want token_revoked", err)
	}
	// refreshOnce refreshes the family with its current refresh token.
	refreshOnce := func() (int, map[string]any) {
		status, body := m.postAs(t, c.ID, sec, url.Values{"grant_type": {oauth2.GrantTypeRefreshToken}, "refresh_token": {refresh}})
		if next, _ := body["refresh_token"].(string); next != "" {
			refresh = next
		}
		return status, body
	}
	rt, err := m.store.GetRefreshTokenByDigest(ctx, secret.Digest(m.pepper, refresh))
	if err != nil {
		t.Fatal(err)
	}
	// Its refresh family mints nothing, now...
	if status, body := refreshOnce(); status != http.StatusBadRequest {
		t.Errorf("refresh right after the replay = %d (access token: %v), want 400", status, body["access_token"] != nil)
	}
	// ...nor once every row kept only for access tokens is collected,
	// until the family has expired.
	if err != nil {
		t.Fatal(err)
	}
	late := rt.ExpiresAt.Add(-time.Minute)
	if _, err := m.store.GarbageCollect(ctx, late); err != nil {
		t.Fatal(err)
	}
	clockMu.Lock()
	offset = time.Until(late)
	clockMu.Unlock()
	status, body = refreshOnce()
	if status != http.StatusBadRequest {
		t.Errorf("refresh a minute before the family expires, rows collected = %d, want 400", status)
	}
	if tok, _ := body["access_token"].(string); tok != "" {
		if _, err := verifier.VerifyAccessToken(ctx, tok, stsIssuer); err == nil {
			t.Error("the replayed code's family minted a live access token")
		}
	}
}
