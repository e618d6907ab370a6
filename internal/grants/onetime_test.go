package grants

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/storage/sqlstore"
	"github.com/opensts/sts/internal/ststest/pgtest"
)

// oneTimeEnv adds pool "once" whose provider is marked one-time-use
// (tokens with aud "once"), beside the example pool "ci" (not one-time).
func oneTimeEnv(t *testing.T, store storage.Store) *env {
	t.Helper()
	e := newEnv(t, store)
	ctx := t.Context()
	if err := e.store.CreatePool(ctx, storage.Pool{ID: "once", OrgID: "acme", Condition: "true", Scopes: []string{"read"},
		MaxTokenLifetime: time.Hour, AllowUnauthenticated: true}); err != nil {
		t.Fatal(err)
	}
	if err := e.store.CreateProvider(ctx, storage.Provider{PoolID: "once", ID: "p", Issuer: e.issuer.URL,
		Audiences: []string{"once"}, OneTimeUse: true}); err != nil {
		t.Fatal(err)
	}
	e.grant.Replay = e.store
	return e
}

func (e *env) onceToken(t *testing.T, jti string) string {
	t.Helper()
	c := e.issuer.claims(time.Now(), "job-1")
	c["aud"] = "once"
	if jti != "" {
		c["jti"] = jti
	}
	return e.issuer.mint(t, "RS256", c)
}

func (e *env) exchangeStatus(t *testing.T, tok string, kv ...string) (int, string) {
	t.Helper()
	resp, body := e.post(t, PathToken, exchangeForm(tok, kv...))
	reason, _ := body["reason"].(string)
	return resp.StatusCode, reason
}

// TestOneTimeSubjectToken: docs/security.md T-48. A token of a one-time-use
// provider is exchanged once; the second use is refused; a refused
// exchange spends nothing; a token without jti is refused; other
// providers' tokens are unaffected.
func TestOneTimeSubjectToken(t *testing.T) {
	e := oneTimeEnv(t, nil)
	tok := e.onceToken(t, "jti-1")

	if code, reason := e.exchangeStatus(t, tok, "scope", "write"); code != http.StatusBadRequest || reason != ReasonScopeExceedsPool {
		t.Fatalf("over-scoped exchange = %d %s, want 400 %s", code, reason, ReasonScopeExceedsPool)
	}
	if code, reason := e.exchangeStatus(t, tok); code != http.StatusOK {
		t.Fatalf("first use after a refused one = %d %s, want 200 (a refusal must not spend the token)", code, reason)
	}
	if code, reason := e.exchangeStatus(t, tok); code != http.StatusBadRequest || reason != ReasonSubjectReplayed {
		t.Fatalf("second use = %d %s, want 400 %s", code, reason, ReasonSubjectReplayed)
	}
	if code, reason := e.exchangeStatus(t, e.onceToken(t, "jti-2")); code != http.StatusOK {
		t.Fatalf("another jti = %d %s, want 200", code, reason)
	}
	if code, reason := e.exchangeStatus(t, e.onceToken(t, "")); code != http.StatusBadRequest || reason != ReasonSubjectJTIMissing {
		t.Fatalf("no jti = %d %s, want 400 %s", code, reason, ReasonSubjectJTIMissing)
	}

	c := e.issuer.claims(time.Now(), "job-1")
	c["jti"] = "jti-1" // same jti, provider not marked one-time
	again := e.issuer.mint(t, "RS256", c)
	for i := range 2 {
		if code, reason := e.exchangeStatus(t, again); code != http.StatusOK {
			t.Fatalf("use %d of a token from an ordinary provider = %d %s, want 200", i+1, code, reason)
		}
	}
}

type downReplay struct{}

func (downReplay) MarkUsed(context.Context, string, time.Time, time.Time) error {
	return errors.New("replay store down")
}

// TestOneTimeReplayStoreDown: docs/security.md F-16. Without a working shared
// store a one-time token is refused with 503 (accepting would allow a
// replay on another replica); other providers are unaffected.
func TestOneTimeReplayStoreDown(t *testing.T) {
	e := oneTimeEnv(t, nil)
	e.grant.Replay = downReplay{}
	resp, body := e.post(t, PathToken, exchangeForm(e.onceToken(t, "jti-1")))
	if resp.StatusCode != http.StatusServiceUnavailable || body["reason"] != ReasonReplayUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("store down = %d %v (Retry-After %q), want 503 %s with Retry-After", resp.StatusCode, body, resp.Header.Get("Retry-After"), ReasonReplayUnavailable)
	}
	if code, reason := e.exchangeStatus(t, e.issuer.mint(t, "RS256", e.issuer.claims(time.Now(), "job-1"))); code != http.StatusOK {
		t.Fatalf("ordinary provider with the replay store down = %d %s, want 200", code, reason)
	}
	e.grant.Replay = nil
	if code, reason := e.exchangeStatus(t, e.onceToken(t, "jti-2")); code != http.StatusServiceUnavailable || reason != ReasonReplayUnavailable {
		t.Fatalf("no replay store = %d %s, want 503 %s", code, reason, ReasonReplayUnavailable)
	}
}

// TestOneTimeRace: 16 replicas' worth of concurrent exchanges of one token
// give exactly one access token, on SQLite and PostgreSQL.
func TestOneTimeRace(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			store := backendStore(t, backend)
			e := oneTimeEnv(t, store)
			tok := e.onceToken(t, "jti-race")
			const n = 16
			codes := make([]int, n)
			var wg sync.WaitGroup
			for i := range n {
				wg.Go(func() { codes[i], _ = e.exchangeStatus(t, tok) })
			}
			wg.Wait()
			ok := 0
			for _, c := range codes {
				switch c {
				case http.StatusOK:
					ok++
				case http.StatusBadRequest:
				default:
					t.Errorf("status %d, want 200 or 400", c)
				}
			}
			if ok != 1 {
				t.Fatalf("%d of %d concurrent exchanges succeeded, want exactly 1 (%v)", ok, n, codes)
			}
		})
	}
}

// backendStore is the store a test runs on for backend: a migrated
// PostgreSQL database for "postgres", nil (the test environment's own
// SQLite) for "sqlite".
func backendStore(t *testing.T, backend string) storage.Store {
	t.Helper()
	if backend != "postgres" {
		return nil
	}
	s, err := sqlstore.Open(t.Context(), sqlstore.Config{Driver: sqlstore.DriverPostgres, DSN: pgtest.DSN(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	return s
}
