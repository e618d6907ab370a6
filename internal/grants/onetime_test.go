package grants

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
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
	addOneTimePool(t, e)
	return e
}

// addOneTimePool adds oneTimeEnv's pool "once" to e.
func addOneTimePool(t *testing.T, e *env) {
	t.Helper()
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

func (downReplay) Used(context.Context, string, time.Time) (bool, error) {
	return false, errors.New("replay store down")
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
	t.Parallel()
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
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

// flakyAudit is a real audit store whose writes fail while down is set.
type flakyAudit struct {
	storage.Store
	down atomic.Bool
}

func (f *flakyAudit) AppendAudit(ctx context.Context, evs ...storage.AuditEvent) error {
	if f.down.Load() {
		return errors.New("audit table unavailable")
	}
	return f.Store.AppendAudit(ctx, evs...)
}

// flakyReplay is the real replay store, its next fail spends failing.
type flakyReplay struct {
	storage.ReplayStore
	fail atomic.Int32
}

func (f *flakyReplay) MarkUsed(ctx context.Context, key string, iat, exp time.Time) error {
	if f.fail.Add(-1) >= 0 {
		return errors.New("replay store down")
	}
	return f.ReplayStore.MarkUsed(ctx, key, iat, exp)
}

// TestOneTimeTokenSurvivesAuditOutage: docs/security.md T-134. With
// audit.mode required a one-time subject token is spent only once the
// issuance's event is committed: an audit store that fails that commit
// answers 503 and leaves the token unspent, so the client's retry gets
// its token; a spend that fails after the commit withholds the token and
// a second event names its jti as not sent.
func TestOneTimeTokenSurvivesAuditOutage(t *testing.T) {
	trail := &flakyAudit{Store: newSQLite(t)}
	e, _, _, _ := auditModeEnv(t, trail, true)
	addOneTimePool(t, e)
	// events are the exchange events of actor, newest first, once there
	// are n of them (the refusals' are queued, not committed).
	events := func(actor string, n int) []storage.AuditEvent {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			evs, err := trail.ListAudit(t.Context(), storage.AuditFilter{Action: ActionTokenExchange, Actor: actor})
			if err != nil {
				t.Fatal(err)
			}
			if len(evs) >= n || time.Now().After(deadline) {
				return evs
			}
			time.Sleep(5 * time.Millisecond)
		}
	}

	t.Run("audit commit fails", func(t *testing.T) {
		tok := e.onceToken(t, "jti-audit")
		trail.down.Store(true)
		resp, body := e.post(t, PathToken, exchangeForm(tok))
		trail.down.Store(false)
		if resp.StatusCode != http.StatusServiceUnavailable || body["reason"] != ReasonAuditUnavailable || body["access_token"] != nil {
			t.Fatalf("exchange with the audit trail down = %d %v, want 503 %s and no token", resp.StatusCode, body, ReasonAuditUnavailable)
		}
		if code, reason := e.exchangeStatus(t, tok); code != http.StatusOK {
			t.Fatalf("retry once the trail is back = %d %s, want 200 (the failed commit spent the token)", code, reason)
		}
		if code, reason := e.exchangeStatus(t, tok); code != http.StatusBadRequest || reason != ReasonSubjectReplayed {
			t.Fatalf("third use = %d %s, want 400 %s", code, reason, ReasonSubjectReplayed)
		}
	})

	t.Run("a replay commits no issued event", func(t *testing.T) {
		c := e.issuer.claims(time.Now(), "job-replay")
		c["aud"], c["jti"] = "once", "jti-replay"
		tok := e.issuer.mint(t, "RS256", c)
		if code, reason := e.exchangeStatus(t, tok); code != http.StatusOK {
			t.Fatalf("first use = %d %s, want 200", code, reason)
		}
		for range 2 {
			if code, reason := e.exchangeStatus(t, tok); code != http.StatusBadRequest || reason != ReasonSubjectReplayed {
				t.Fatalf("replay = %d %s, want 400 %s", code, reason, ReasonSubjectReplayed)
			}
		}
		issued := 0
		for _, ev := range events("external:"+e.issuer.URL+"#job-replay", 3) {
			if ev.Outcome == OutcomeIssued {
				issued++
			}
		}
		if issued != 1 {
			t.Fatalf("issued events = %d after one use and two refused replays, want 1", issued)
		}
	})

	t.Run("spend fails after the commit", func(t *testing.T) {
		replay := &flakyReplay{ReplayStore: e.store}
		replay.fail.Store(1)
		e.grant.Replay = replay
		t.Cleanup(func() { e.grant.Replay = e.store })
		c := e.issuer.claims(time.Now(), "job-spend")
		c["aud"], c["jti"] = "once", "jti-spend"
		tok := e.issuer.mint(t, "RS256", c)
		resp, body := e.post(t, PathToken, exchangeForm(tok))
		if resp.StatusCode != http.StatusServiceUnavailable || body["reason"] != ReasonReplayUnavailable || body["access_token"] != nil {
			t.Fatalf("exchange with the spend failing = %d %v, want 503 %s and no token", resp.StatusCode, body, ReasonReplayUnavailable)
		}
		evs := events("external:"+e.issuer.URL+"#job-spend", 2)
		if len(evs) != 2 {
			t.Fatalf("events = %+v, want the issued one and the refusal", evs)
		}
		var d [2]auditDetail
		for i, ev := range evs {
			if err := json.Unmarshal([]byte(ev.Detail), &d[i]); err != nil {
				t.Fatal(err)
			}
		}
		if evs[1].Outcome != OutcomeIssued || evs[0].Outcome != OutcomeRefused || d[0].Reason != ReasonReplayUnavailable ||
			d[0].JTI == "" || d[0].JTI != d[1].JTI {
			t.Fatalf("events = %+v, want the issued one committed, then one naming its jti withheld (%s)", evs, ReasonReplayUnavailable)
		}
		if code, reason := e.exchangeStatus(t, tok); code != http.StatusOK {
			t.Fatalf("retry = %d %s, want 200", code, reason)
		}
	})
}

// raceReplay is the real replay store, whose Used reports every token
// unspent: a second use that passed the read before a first one spent.
type raceReplay struct{ storage.ReplayStore }

func (raceReplay) Used(context.Context, string, time.Time) (bool, error) { return false, nil }

// TestOneTimeReplayStoresNothing: docs/security.md T-134. A replayed
// one-time subject token asking for offline_access is refused before a
// refresh family is stored when the read before the mint finds it spent;
// one that lost the race to that read is refused by the spend, which
// comes after the family is stored, and the family it stored, never
// handed out, is ended: no live refresh token either way.
func TestOneTimeReplayStoresNothing(t *testing.T) {
	o := newOfflineEnv(t)
	e, ctx := o.env, t.Context()
	if err := e.store.UpdateProvider(ctx, "offline", "p", func(p storage.Provider) (storage.Provider, error) {
		p.OneTimeUse = true
		return p, nil
	}); err != nil {
		t.Fatal(err)
	}
	families := func(q string) int {
		var n int
		if err := e.store.(*sqlstore.Store).DB().QueryRowContext(ctx, q).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	for i, replay := range []storage.ReplayStore{e.store, raceReplay{e.store}} {
		e.grant.Replay = replay
		c := e.issuer.claims(time.Now(), "u1")
		c["aud"], c["jti"] = "offline", fmt.Sprintf("once-%d", i)
		form := exchangeForm(e.issuer.mint(t, "RS256", c), "pool", "offline", "scope", "read offline_access")
		if resp, body := o.post(form, true); resp.StatusCode != http.StatusOK || body["refresh_token"] == nil {
			t.Fatalf("%T: first use = %d %v, want 200 with a refresh token", replay, resp.StatusCode, body)
		}
		// The read refuses a replay before anything is stored; a replay
		// that passed it (raceReplay) stores a family the spend ends.
		q := "SELECT COUNT(*) FROM refresh_tokens"
		if i == 1 {
			q += " WHERE revoked = 0"
		}
		before := families(q)
		for range 3 {
			if resp, body := o.post(form, true); resp.StatusCode != http.StatusBadRequest || body["reason"] != ReasonSubjectReplayed {
				t.Fatalf("%T: replay = %d %v, want 400 %s", replay, resp.StatusCode, body, ReasonSubjectReplayed)
			}
		}
		if after := families(q); after != before {
			t.Errorf("%T: refresh_tokens rows (%s) %d -> %d after 3 refused replays: each replay left a family", replay, q, before, after)
		}
	}
}
