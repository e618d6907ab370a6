package hosttoken_test

import (
	"bytes"
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opensts/sts/internal/hosttoken"
	"github.com/opensts/sts/internal/seal"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/storage/sqlstore"
)

// oauthServer is a real RFC 6749 token endpoint: it accepts a refresh
// token it issued (once: refresh tokens rotate), issues a new pair, and
// fails on demand with HTTP 500 or invalid_grant.
type oauthServer struct {
	*httptest.Server
	mu    sync.Mutex
	valid map[string]bool // refresh tokens still usable
	n     int
	calls atomic.Int64
	fail  string // "500" or "invalid_grant" for the next failN calls
	failN int
	delay time.Duration
	// lifetime is the expires_in of the values issued, in seconds; zero:
	// 8 hours, as GitHub's.
	lifetime int
	// hold, when set, is called with the call's number before the call is
	// answered (before its refresh token is checked or spent).
	hold func(n int64)
}

func newOAuthServer(t *testing.T, initial ...string) *oauthServer {
	s := &oauthServer{valid: map[string]bool{}}
	for _, r := range initial {
		s.valid[r] = true
	}
	s.Server = httptest.NewServer(http.HandlerFunc(s.token))
	t.Cleanup(s.Close)
	return s
}

func (s *oauthServer) token(w http.ResponseWriter, r *http.Request) {
	n := s.calls.Add(1)
	if s.hold != nil {
		s.hold(n)
	}
	time.Sleep(s.delay)
	id, secret, ok := r.BasicAuth()
	if r.ParseForm() != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	if !ok { // client_secret_post (RFC 6749 §2.3.1)
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	if r.PostForm.Get("grant_type") != "refresh_token" || id != "client-1" || secret != "s3cret" {
		w.WriteHeader(http.StatusUnauthorized)
		json.NewEncoder(w).Encode(map[string]string{"error": "invalid_client"})
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	fail := ""
	if s.failN > 0 {
		fail = s.fail
		s.failN--
	}
	switch {
	case fail == "500":
		w.WriteHeader(http.StatusInternalServerError)
		fmt.Fprint(w, `{"oops":"`+r.PostForm.Get("refresh_token")+`"}`) // echoes a secret: must never be stored
		return
	case fail == "invalid_grant" || !s.valid[r.PostForm.Get("refresh_token")]:
		w.WriteHeader(http.StatusBadRequest)
		json.NewEncoder(w).Encode(map[string]string{"error": "invalid_grant"})
		return
	}
	delete(s.valid, r.PostForm.Get("refresh_token"))
	s.n++
	next := fmt.Sprintf("ghr_rotated%d", s.n)
	s.valid[next] = true
	json.NewEncoder(w).Encode(map[string]any{"access_token": fmt.Sprintf("gho_fresh%d", s.n), "token_type": "bearer",
		"expires_in": cmp.Or(s.lifetime, 28800), "refresh_token": next})
}

const integrationID = "6f1c1b3e-2a7d-4c55-9e1e-0a8c5b1d2e3f"

func refresher(w *world, srv *oauthServer) *hosttoken.Refresher {
	return &hosttoken.Refresher{Service: w.svc, HTTPClient: srv.Client(),
		Integrations: map[string]hosttoken.Integration{integrationID: {TokenURL: srv.URL, ClientID: "client-1", ClientSecret: "s3cret"}}}
}

// TestRefresh: a token due within the window is refreshed against a real
// token endpoint, the new pair replaces the old atomically, failures are
// recorded on the token (visible in Get) and backed off, and a later
// attempt recovers.
func TestRefresh(t *testing.T) {
	t.Parallel()
	for name, newStore := range backends(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t, newStore(t))
			ctx := t.Context()
			srv := newOAuthServer(t, "ghr_initial")
			r := refresher(w, srv)
			tok := w.create(t, "gho_initial", "ghr_initial", integrationID, time.Now().Add(5*time.Minute))
			later := w.create(t, "gho_later", "ghr_later", integrationID, time.Now().Add(5*time.Hour))

			srv.fail, srv.failN = "500", 2 // x/oauth2 retries with client_secret_post
			if err := r.RunOnce(ctx); err != nil {
				t.Fatal(err)
			}
			got, _ := w.svc.Get(ctx, w.user, tok.ID)
			if got.Refresh.Failures != 1 || got.Refresh.LastError != "token endpoint returned HTTP 500" {
				t.Errorf("after a 500: refresh status = %+v", got.Refresh)
			}
			// Backoff: the next poll does not call the endpoint again.
			calls := srv.calls.Load()
			r.RunOnce(ctx)
			if srv.calls.Load() != calls {
				t.Error("a failed token was retried before its backoff ended")
			}
			w.clock.Advance(2 * time.Minute)
			if err := r.RunOnce(ctx); err != nil {
				t.Fatal(err)
			}
			v, err := w.svc.Value(ctx, w.runner, tok.ID)
			if err != nil || v.Token != "gho_fresh1" || v.RefreshToken != "ghr_rotated1" || time.Until(v.ExpiresAt) < 7*time.Hour {
				t.Fatalf("Value after refresh = %+v, %v", v, err)
			}
			got, _ = w.svc.Get(ctx, w.user, tok.ID)
			if got.Refresh.Failures != 0 || got.Refresh.LastError != "" || got.Refresh.RefreshedAt.IsZero() {
				t.Errorf("after success: refresh status = %+v", got.Refresh)
			}
			if v, _ := w.svc.Value(ctx, w.user, later.ID); v.Token != "gho_later" {
				t.Error("a token not yet due was refreshed")
			}
			// A revoked refresh token: invalid_grant is recorded, the old pair kept.
			w.clock.Advance(8 * time.Hour)
			srv.fail, srv.failN = "invalid_grant", 100
			r.RunOnce(ctx)
			srv.failN = 0
			got, _ = w.svc.Get(ctx, w.user, tok.ID)
			if got.Refresh.LastError != "token endpoint returned invalid_grant" {
				t.Errorf("after invalid_grant: refresh status = %+v", got.Refresh)
			}
			if v, _ := w.svc.Value(ctx, w.user, tok.ID); v.RefreshToken != "ghr_rotated1" {
				t.Errorf("a failed refresh changed the stored pair: %+v", v)
			}
			if s := r.Stats(); s.Failed < 2 || s.Refreshed < 1 {
				t.Errorf("Stats() = %+v", s)
			}
		})
	}
}

// TestRefreshTwoReplicas: refreshers of two replicas polling at once refresh
// each token exactly once (the endpoint would reject a reused refresh token).
func TestRefreshTwoReplicas(t *testing.T) {
	t.Parallel()
	for name, newStore := range backends(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t, newStore(t))
			srv := newOAuthServer(t, "ghr_a", "ghr_b", "ghr_c")
			srv.delay = 20 * time.Millisecond
			for _, rt := range []string{"ghr_a", "ghr_b", "ghr_c"} {
				w.create(t, "gho_x", rt, integrationID, time.Now().Add(time.Minute))
			}
			var wg sync.WaitGroup
			rs := []*hosttoken.Refresher{refresher(w, srv), refresher(w, srv)}
			for _, r := range rs {
				wg.Go(func() { r.RunOnce(context.Background()) })
			}
			wg.Wait()
			if got := srv.calls.Load(); got != 3 {
				t.Errorf("token endpoint calls = %d, want 3 (one per token)", got)
			}
			if s0, s1 := rs[0].Stats(), rs[1].Stats(); s0.Refreshed+s1.Refreshed != 3 || s0.Failed+s1.Failed != 0 {
				t.Errorf("Stats = %+v, %+v; want 3 refreshed in total", s0, s1)
			}
		})
	}
}

// TestDatabaseHoldsNoPlaintext scans every column of every row of every
// table for the secret values (and their refreshed successors), after
// create, update, refresh and reseal. None may appear.
func TestDatabaseHoldsNoPlaintext(t *testing.T) {
	t.Parallel()
	for name, newStore := range backends(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			store := newStore(t)
			w := newWorld(t, store)
			ctx := t.Context()
			srv := newOAuthServer(t, "ghr_SECRETREFRESH1")
			tok := w.create(t, "gho_SECRETTOKEN1", "ghr_SECRETREFRESH1", integrationID, time.Now().Add(time.Minute))
			pat := w.create(t, "ghp_SECRETTOKEN2", "", "", time.Time{})
			upd := "ghp_SECRETTOKEN3"
			if _, err := w.svc.Update(ctx, w.user, pat.ID, hosttoken.UpdateInput{Token: &upd}); err != nil {
				t.Fatal(err)
			}
			if err := refresher(w, srv).RunOnce(ctx); err != nil {
				t.Fatal(err)
			}
			if v, err := w.svc.Value(ctx, w.user, tok.ID); err != nil || v.Token != "gho_fresh1" {
				t.Fatalf("refresh did not happen: %+v, %v", v, err)
			}
			newKey := make([]byte, seal.KeySize)
			copy(newKey, bytes.Repeat([]byte{7}, seal.KeySize))
			kr, _ := seal.NewKeyring(newKey, w.master)
			if _, err := hosttoken.Reseal(ctx, store, &seal.Envelope{Keyring: kr}); err != nil {
				t.Fatal(err)
			}
			secrets := []string{"SECRETTOKEN1", "SECRETREFRESH1", "SECRETTOKEN2", "SECRETTOKEN3", "gho_fresh1", "ghr_rotated1"}
			scanned := scanDatabase(t, store, name, secrets)
			if scanned < 2 {
				t.Fatalf("scanned %d host token rows, want at least 2", scanned)
			}
		})
	}
}

// scanDatabase fails the test if any column of any row holds a secret, and
// returns how many host_tokens rows it saw.
func scanDatabase(t *testing.T, store *sqlstore.Store, backend string, secrets []string) int {
	t.Helper()
	ctx := t.Context()
	q := `SELECT name FROM sqlite_master WHERE type = 'table'`
	if backend == "postgres" {
		q = `SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()`
	}
	tables := queryStrings(t, store.DB(), q)
	hostRows := 0
	for _, table := range tables {
		rows, err := store.DB().QueryContext(ctx, `SELECT * FROM `+table)
		if err != nil {
			t.Fatalf("scan %s: %v", table, err)
		}
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			if table == "host_tokens" {
				hostRows++
			}
			for i, v := range vals {
				text := fmt.Sprint(v)
				if b, ok := v.([]byte); ok {
					text = string(b)
				}
				for _, s := range secrets {
					if strings.Contains(text, s) {
						t.Errorf("%s.%s holds the secret %q in plaintext", table, cols[i], s)
					}
				}
			}
		}
		rows.Close()
	}
	return hostRows
}

func queryStrings(t *testing.T, db *sql.DB, q string) []string {
	t.Helper()
	rows, err := db.QueryContext(t.Context(), q)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		rows.Scan(&s)
		out = append(out, s)
	}
	return out
}

// TestResealRewrapsDataKeys: after `sts keys rotate-master` (Reseal) every
// row opens with the new master key alone, and a second run changes none.
func TestResealRewrapsDataKeys(t *testing.T) {
	t.Parallel()
	store := backends(t)["sqlite"](t)
	w := newWorld(t, store)
	ctx := t.Context()
	tok := w.create(t, "gho_keep", "ghr_keep", "", time.Time{})
	newKey := bytes.Repeat([]byte{9}, seal.KeySize)
	both, _ := seal.NewKeyring(newKey, w.master)
	n, err := hosttoken.Reseal(ctx, store, &seal.Envelope{Keyring: both})
	if err != nil || n != 1 {
		t.Fatalf("Reseal = %d, %v; want 1", n, err)
	}
	if n, _ := hosttoken.Reseal(ctx, store, &seal.Envelope{Keyring: both}); n != 0 {
		t.Errorf("second Reseal changed %d rows", n)
	}
	only, _ := seal.NewKeyring(newKey)
	w.svc.Envelope = &seal.Envelope{Keyring: only}
	v, err := w.svc.Value(ctx, w.user, tok.ID)
	if err != nil || v.Token != "gho_keep" || v.RefreshToken != "ghr_keep" {
		t.Fatalf("Value with only the new key = %+v, %v", v, err)
	}
	row, _ := store.GetHostToken(ctx, tok.ID)
	if row.MasterKeyID != only.PrimaryID() {
		t.Errorf("MasterKeyID = %s, want %s", row.MasterKeyID, only.PrimaryID())
	}
	_ = storage.HostToken{}
}

// TestRefreshSkipsSuspendedOwners (docs/security.md A-47): the refresher
// keeps no disabled or deleted principal's SCM credentials alive. A token
// whose subject or runner is disabled or gone is neither claimed nor
// refreshed, uses no slot of a poll's batch (the healthy token behind four
// such tokens that expire sooner is refreshed with a batch of one), and is
// refreshed again once its owners are enabled.
func TestRefreshSkipsSuspendedOwners(t *testing.T) {
	t.Parallel()
	for name, newStore := range backends(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t, newStore(t))
			ctx := t.Context()
			srv := newOAuthServer(t, "ghr_disabled_user", "ghr_disabled_runner", "ghr_gone_user", "ghr_gone_runner", "ghr_healthy")
			r := refresher(w, srv)
			r.Batch = 1
			acme := w.user.OrgID
			runner2 := principal(t, w.store, acme, storage.PrincipalRunner, false)
			runner3 := principal(t, w.store, acme, storage.PrincipalRunner, false)
			gone := principal(t, w.store, acme, storage.PrincipalUser, false)
			mk := func(runnerID, subjectID, refresh string, exp time.Duration) string {
				t.Helper()
				tok, err := w.svc.Create(ctx, w.admin, hosttoken.CreateInput{
					RunnerID: runnerID, UserID: subjectID, Host: "github.com", Token: "gho_x", RefreshToken: refresh,
					Source: storage.HostTokenSourceOAuth, ExpiresAt: time.Now().Add(exp), IntegrationID: integrationID,
				})
				if err != nil {
					t.Fatalf("Create: %v", err)
				}
				return tok.ID
			}
			disabledUser := mk(w.runner.PrincipalID, w.user.PrincipalID, "ghr_disabled_user", time.Minute)
			disabledRunner := mk(runner2.PrincipalID, w.bystander.PrincipalID, "ghr_disabled_runner", 2*time.Minute)
			goneUser := mk(w.runner.PrincipalID, gone.PrincipalID, "ghr_gone_user", 3*time.Minute)
			goneRunner := mk(runner3.PrincipalID, w.bystander.PrincipalID, "ghr_gone_runner", 4*time.Minute)
			healthy := mk(w.runner.PrincipalID, w.bystander.PrincipalID, "ghr_healthy", 5*time.Minute)
			setDisabled := func(id string, disabled bool) {
				t.Helper()
				if err := w.store.UpdatePrincipal(ctx, id, func(p storage.Principal) (storage.Principal, error) {
					p.Disabled = disabled
					return p, nil
				}); err != nil {
					t.Fatal(err)
				}
			}
			setDisabled(w.user.PrincipalID, true)
			setDisabled(runner2.PrincipalID, true)
			// Rows left behind by a deletion that did not take them along.
			for _, id := range []string{gone.PrincipalID, runner3.PrincipalID} {
				if err := w.store.DeletePrincipal(ctx, id); err != nil {
					t.Fatal(err)
				}
			}
			untouched := func(when string, ids ...string) {
				t.Helper()
				for _, id := range ids {
					row, err := w.store.GetHostToken(ctx, id)
					if err != nil {
						t.Fatal(err)
					}
					if row.RefreshLeaseID != "" || !row.RefreshLeaseUntil.IsZero() || !row.RefreshedAt.IsZero() || row.RefreshFailures != 0 {
						t.Errorf("%s: token %s of a suspended owner was claimed or refreshed: lease %q until %v, refreshed %v, failures %d",
							when, id, row.RefreshLeaseID, row.RefreshLeaseUntil, row.RefreshedAt, row.RefreshFailures)
					}
				}
			}
			suspended := []string{disabledUser, disabledRunner, goneUser, goneRunner}
			if err := r.RunOnce(ctx); err != nil {
				t.Fatal(err)
			}
			untouched("after a poll", suspended...)
			if v, err := w.svc.Value(ctx, w.admin, healthy); err != nil || v.Token != "gho_fresh1" {
				t.Errorf("the healthy token behind the suspended ones was not refreshed: %+v, %v", v, err)
			}
			// A token listed while its owners were enabled and suspended
			// before the refresher claims it is not claimed either.
			for _, id := range suspended {
				if err := r.RefreshOne(ctx, id); err != nil {
					t.Errorf("RefreshOne(%s): %v", id, err)
				}
			}
			untouched("claimed one by one", suspended...)
			if got := srv.calls.Load(); got != 1 {
				t.Errorf("token endpoint calls = %d, want 1 (the healthy token only)", got)
			}
			if s := r.Stats(); s.Refreshed != 1 || s.Failed != 0 {
				t.Errorf("Stats() = %+v, want 1 refreshed, 0 failed", s)
			}
			evs, err := w.store.ListAudit(ctx, storage.AuditFilter{OrgID: acme, Action: "host_token.refresh", Limit: 100})
			if err != nil || len(evs) != 1 || evs[0].Target != "host_token:"+healthy {
				t.Errorf("host_token.refresh events = %+v, %v; want the healthy token's only", evs, err)
			}
			// Enabled again, the user's token is refreshed again.
			setDisabled(w.user.PrincipalID, false)
			if err := r.RunOnce(ctx); err != nil {
				t.Fatal(err)
			}
			if v, err := w.svc.Value(ctx, w.user, disabledUser); err != nil || v.Token != "gho_fresh2" {
				t.Errorf("the re-enabled user's token was not refreshed: %+v, %v", v, err)
			}
		})
	}
}

// TestExpiryUpdateKeepsInFlightRefresh (docs/security.md A-49): an
// update that changes only a token's expiry while the refresher is at the
// token endpoint neither frees the token for a second refresh of the same
// refresh token (another replica polling meanwhile does not call the
// endpoint) nor makes the refresher discard what the endpoint returned:
// the rotated refresh token is stored, so the next refresh works.
func TestExpiryUpdateKeepsInFlightRefresh(t *testing.T) {
	t.Parallel()
	for name, newStore := range backends(t) {
		for _, replica := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/second-replica=%v", name, replica), func(t *testing.T) {
				t.Parallel()
				expiryUpdateDuringRefresh(t, newStore(t), replica)
			})
		}
	}
}

func expiryUpdateDuringRefresh(t *testing.T, store *sqlstore.Store, replica bool) {
	w := newWorld(t, store)
	ctx := t.Context()
	srv := newOAuthServer(t, "ghr_initial")
	tok := w.create(t, "gho_initial", "ghr_initial", integrationID, time.Now().Add(time.Minute))
	err := updateDuringRefresh(t, w, srv, replica, func() {
		exp := time.Now().Add(30 * time.Second) // sooner: the runner may not extend it (T-176)
		if _, err := w.svc.Update(ctx, w.runner, tok.ID, hosttoken.UpdateInput{ExpiresAt: &exp}); err != nil {
			t.Errorf("expiry-only Update during a refresh: %v", err)
		}
	})
	if err != nil {
		t.Fatalf("the in-flight refresh: %v", err)
	}
	v, err := w.svc.Value(ctx, w.user, tok.ID)
	if err != nil || v.Token != "gho_fresh1" || v.RefreshToken != "ghr_rotated1" || time.Until(v.ExpiresAt) < 7*time.Hour {
		t.Fatalf("after the refresh: %+v, %v; want the refreshed pair and its expiry", v, err)
	}
	// The refresh token the endpoint rotated to is the one stored:
	// the next refresh succeeds.
	w.clock.Advance(8 * time.Hour)
	if err := refresher(w, srv).RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	got, _ := w.svc.Get(ctx, w.user, tok.ID)
	if v, _ := w.svc.Value(ctx, w.user, tok.ID); v.Token != "gho_fresh2" || got.Refresh.LastError != "" {
		t.Errorf("the next refresh: value %+v, status %+v; want gho_fresh2 and no error", v, got.Refresh)
	}
}

// TestUpdateKeepsBackoff (docs/security.md A-58): a new expiry or value
// no longer ends a failed refresh's backoff, so whoever may update a token
// cannot make the refresher call the token endpoint again at once; the
// token is refreshed when the backoff ends.
func TestUpdateKeepsBackoff(t *testing.T) {
	t.Parallel()
	for name, newStore := range backends(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t, newStore(t))
			ctx := t.Context()
			srv := newOAuthServer(t, "ghr_initial")
			r := refresher(w, srv)
			tok := w.create(t, "gho_initial", "ghr_initial", integrationID, time.Now().Add(time.Minute))
			srv.fail, srv.failN = "500", 2
			r.RunOnce(ctx)
			calls := srv.calls.Load()
			now := w.clock.Now()
			if _, err := w.svc.Update(ctx, w.runner, tok.ID, hosttoken.UpdateInput{ExpiresAt: &now}); err != nil {
				t.Fatal(err)
			}
			if _, err := w.svc.Update(ctx, w.user, tok.ID, hosttoken.UpdateInput{Token: ptr("gho_owner")}); err != nil {
				t.Fatal(err)
			}
			if err := r.RunOnce(ctx); err != nil {
				t.Fatal(err)
			}
			if got := srv.calls.Load(); got != calls {
				t.Fatalf("token endpoint calls after updates during a backoff = %d, want %d: an update ended the backoff", got, calls)
			}
			w.clock.Advance(time.Minute + time.Second) // the first backoff ends
			if err := r.RunOnce(ctx); err != nil {
				t.Fatal(err)
			}
			if v, err := w.svc.Value(ctx, w.user, tok.ID); err != nil || v.Token != "gho_fresh1" {
				t.Errorf("Value after the backoff = %+v, %v; want gho_fresh1", v, err)
			}
		})
	}
}

// TestNewRefreshTokenEndsBackoff (docs/security.md A-58): the backoff a
// dead refresh token earned does not hold back the new one its owner
// supplies, so a value re-authorized after a run of failures is renewed
// at the next poll in its refresh window, not after the dead token's hour
// of backoff. The same refresh token supplied again ends nothing.
func TestNewRefreshTokenEndsBackoff(t *testing.T) {
	t.Parallel()
	for name, newStore := range backends(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t, newStore(t))
			ctx := t.Context()
			srv := newOAuthServer(t) // ghr_dead is refused: invalid_grant
			r := refresher(w, srv)
			tok := w.create(t, "gho_initial", "ghr_dead", integrationID, w.clock.Now().Add(time.Minute))
			for range 3 { // backoffs of 1, 2 and 4 minutes; the last still runs
				if err := r.RunOnce(ctx); err != nil {
					t.Fatal(err)
				}
				w.clock.Advance(3 * time.Minute)
			}
			calls := srv.calls.Load()
			if calls == 0 {
				t.Fatal("the dead refresh token was never spent")
			}
			dead := "ghr_dead"
			if _, err := w.svc.Update(ctx, w.user, tok.ID, hosttoken.UpdateInput{RefreshToken: &dead}); err != nil {
				t.Fatal(err)
			}
			if err := r.RunOnce(ctx); err != nil {
				t.Fatal(err)
			}
			if got := srv.calls.Load(); got != calls {
				t.Fatalf("token endpoint calls after the dead refresh token was supplied again = %d, want %d: it ended the backoff", got, calls)
			}
			srv.mu.Lock()
			srv.valid["ghr_new"] = true
			srv.mu.Unlock()
			val, rt, exp := "gho_new", "ghr_new", w.clock.Now().Add(5*time.Minute)
			if _, err := w.svc.Update(ctx, w.user, tok.ID, hosttoken.UpdateInput{Token: &val, RefreshToken: &rt, ExpiresAt: &exp}); err != nil {
				t.Fatal(err)
			}
			if err := r.RunOnce(ctx); err != nil {
				t.Fatal(err)
			}
			if got := srv.calls.Load(); got != calls+1 {
				t.Fatalf("token endpoint calls after a new refresh token = %d, want %d: the dead one's backoff held it back", got, calls+1)
			}
			if v, err := w.svc.Value(ctx, w.user, tok.ID); err != nil || v.Token != "gho_fresh1" {
				t.Errorf("Value after the new refresh token's first poll = %+v, %v; want gho_fresh1", v, err)
			}
		})
	}
}

// TestValueUpdateDuringRefresh (docs/security.md A-49): an update that
// replaces a token's value while the refresher is at the token endpoint
// keeps the value it set, but not the refresh token the refresher has just
// spent: the row gets the rotated refresh token the endpoint returned (and
// the endpoint's value only when the update set none), so the next refresh
// works. Nor does it free the token for another replica to spend the same
// refresh token meanwhile. An update that supplies a new refresh token wins
// entirely; one that supplies the spent refresh token again does not
// bring it back.
func TestValueUpdateDuringRefresh(t *testing.T) {
	t.Parallel()
	owner, spent := "gho_owner", "ghr_initial"
	later := time.Now().Add(9 * time.Hour).Truncate(time.Second)
	cases := []struct {
		name    string
		in      hosttoken.UpdateInput
		replica bool   // another replica polls while the refresh is in flight
		token   string // want, after the refresh
		refresh string
		expiry  time.Time // want; zero: the endpoint's
	}{
		{name: "value", in: hosttoken.UpdateInput{Token: &owner}, token: owner, refresh: "ghr_rotated1"},
		{name: "value/second-replica", in: hosttoken.UpdateInput{Token: &owner}, replica: true, token: owner, refresh: "ghr_rotated1"},
		{name: "value-and-expiry", in: hosttoken.UpdateInput{Token: &owner, ExpiresAt: &later}, token: owner,
			refresh: "ghr_rotated1", expiry: later},
		{name: "value-and-spent-refresh-token", in: hosttoken.UpdateInput{Token: &owner, RefreshToken: &spent},
			token: owner, refresh: "ghr_rotated1"},
		{name: "spent-refresh-token", in: hosttoken.UpdateInput{RefreshToken: &spent}, token: "gho_fresh1",
			refresh: "ghr_rotated1"},
		{name: "new-refresh-token", in: hosttoken.UpdateInput{Token: &owner, RefreshToken: ptr("ghr_owner")},
			token: owner, refresh: "ghr_owner"},
	}
	for name, newStore := range backends(t) {
		for _, c := range cases {
			t.Run(name+"/"+c.name, func(t *testing.T) {
				t.Parallel()
				valueUpdateDuringRefresh(t, newStore(t), c.in, c.replica, c.token, c.refresh, c.expiry)
			})
		}
	}
}

func ptr[T any](v T) *T { return &v }

func valueUpdateDuringRefresh(t *testing.T, store *sqlstore.Store, in hosttoken.UpdateInput, replica bool,
	wantToken, wantRefresh string, wantExpiry time.Time) {
	w := newWorld(t, store)
	ctx := t.Context()
	srv := newOAuthServer(t, "ghr_initial", "ghr_owner")
	exp := time.Now().Add(time.Minute).Truncate(time.Second)
	tok := w.create(t, "gho_initial", "ghr_initial", integrationID, exp)
	_ = updateDuringRefresh(t, w, srv, replica, func() { // the result, stored or discarded, is checked below
		if _, err := w.svc.Update(ctx, w.user, tok.ID, in); err != nil {
			t.Fatalf("Update during a refresh: %v", err)
		}
	})
	v, err := w.svc.Value(ctx, w.user, tok.ID)
	if err != nil {
		t.Fatal(err)
	}
	if v.Token != wantToken || v.RefreshToken != wantRefresh {
		t.Errorf("after the refresh: token %q, refresh token %q; want %q, %q", v.Token, v.RefreshToken, wantToken, wantRefresh)
	}
	switch {
	case wantToken == "gho_fresh1" && time.Until(v.ExpiresAt) < 7*time.Hour:
		t.Errorf("expiry %v; want the endpoint's (8 h)", v.ExpiresAt)
	case wantToken != "gho_fresh1" && in.ExpiresAt == nil && !v.ExpiresAt.Equal(exp):
		t.Errorf("expiry %v; want %v, the stored value's", v.ExpiresAt, exp)
	case !wantExpiry.IsZero() && !v.ExpiresAt.Equal(wantExpiry):
		t.Errorf("expiry %v; want %v, the update's", v.ExpiresAt, wantExpiry)
	}
	// The next refresh redeems what is stored: it works.
	w.clock.Advance(10 * time.Hour)
	if err := refresher(w, srv).RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	got, _ := w.svc.Get(ctx, w.user, tok.ID)
	if v, _ := w.svc.Value(ctx, w.user, tok.ID); got.Refresh.LastError != "" || !strings.HasPrefix(v.Token, "gho_fresh") ||
		v.Token == "gho_fresh1" {
		t.Errorf("the next refresh: token %q, status %+v; want a new value and no error", v.Token, got.Refresh)
	}
}

// updateDuringRefresh starts a refresh that srv holds at its first call
// to the token endpoint, runs update while it is held and, with replica,
// a second replica's poll, which must not call the endpoint again; then it
// lets the refresh finish and returns the refresher's error.
func updateDuringRefresh(t *testing.T, w *world, srv *oauthServer, replica bool, update func()) error {
	t.Helper()
	arrived, release := make(chan struct{}), make(chan struct{})
	srv.hold = func(n int64) {
		if n == 1 {
			arrived <- struct{}{}
			<-release
		}
	}
	var once sync.Once
	free := func() { once.Do(func() { close(release) }) }
	defer free() // a failed test does not leave the server's handler waiting
	done := make(chan error, 1)
	go func() { done <- refresher(w, srv).RunOnce(context.Background()) }()
	select {
	case <-arrived:
	case err := <-done:
		t.Fatalf("the refresher did not call the token endpoint: %v", err)
	}
	update()
	if replica {
		if err := refresher(w, srv).RunOnce(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	if got := srv.calls.Load(); got != 1 {
		t.Errorf("token endpoint calls while a refresh was in flight = %d, want 1", got)
	}
	free()
	return <-done
}
