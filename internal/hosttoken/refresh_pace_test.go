package hosttoken_test

import (
	"context"
	"testing"
	"time"

	"github.com/opensts/sts/internal/hosttoken"
	"github.com/opensts/sts/internal/storage"
)

// TestRefreshesArePaced (docs/security.md A-58): whoever may update a
// token cannot make the refresher call the SCM's token endpoint at will. A
// runner that sets its token's expiry to now before every poll (a minute
// apart) gets one refresh per pace (10 minutes by default), not one per
// poll. A token whose SCM value lives shorter than the pace and the refresh
// window together is still refreshed when its own expiry comes near.
func TestRefreshesArePaced(t *testing.T) {
	t.Parallel()
	for name, newStore := range backends(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t, newStore(t))
			ctx := t.Context()
			srv := newOAuthServer(t, "ghr_initial")
			r := refresher(w, srv)
			tok := w.create(t, "gho_initial", "ghr_initial", integrationID, time.Now().Add(time.Minute))
			poll := func() {
				t.Helper()
				if err := r.RunOnce(ctx); err != nil {
					t.Fatal(err)
				}
			}
			expireAndPoll := func(step time.Duration) {
				t.Helper()
				now := w.clock.Now() // set by the user: a runner may not move a user token's expiry later (T-176)
				if _, err := w.svc.Update(ctx, w.user, tok.ID, hosttoken.UpdateInput{ExpiresAt: &now}); err != nil {
					t.Fatal(err)
				}
				w.clock.Advance(step)
				poll()
			}
			poll() // due by its own expiry: refreshed
			if got := srv.calls.Load(); got != 1 {
				t.Fatalf("token endpoint calls = %d, want 1", got)
			}
			for range 9 {
				expireAndPoll(time.Minute)
			}
			if got := srv.calls.Load(); got != 1 {
				t.Errorf("token endpoint calls after 9 expiry updates within the pace = %d, want 1", got)
			}
			expireAndPoll(time.Minute + time.Second) // the pace since the refresh has passed
			if got := srv.calls.Load(); got != 2 {
				t.Errorf("token endpoint calls once the pace passed = %d, want 2", got)
			}
			if v, err := w.svc.Value(ctx, w.user, tok.ID); err != nil || v.Token != "gho_fresh2" {
				t.Errorf("Value = %+v, %v; want gho_fresh2", v, err)
			}

			// An SCM whose values live 15 minutes, 5 beyond the refresh
			// window: each is refreshed 5 minutes after the last refresh,
			// before it expires, as without pacing.
			srv.lifetime = 15 * 60
			srv.mu.Lock()
			srv.valid["ghr_short"] = true
			srv.mu.Unlock()
			short := w.create(t, "gho_short", "ghr_short", integrationID, w.clock.Now().Add(time.Minute))
			if err := w.store.DeleteHostToken(ctx, tok.ID); err != nil { // set aside: counted apart
				t.Fatal(err)
			}
			calls := srv.calls.Load()
			poll()
			for i := range 3 {
				v, err := w.svc.Value(ctx, w.user, short.ID)
				if err != nil || w.clock.Now().After(v.ExpiresAt) {
					t.Fatalf("short-lived value %d = %+v, %v; want it valid", i, v, err)
				}
				w.clock.Advance(5*time.Minute + time.Second)
				poll()
			}
			if got := srv.calls.Load() - calls; got != 4 {
				t.Errorf("token endpoint calls for a 15-minute value over 15 minutes = %d, want 4 (one every 5 minutes)", got)
			}
		})
	}
}

// slowStore holds the unit of work a refresher stores its result in until
// release is closed, after telling arrived: a store so slow that the
// refresh's lease runs out meanwhile.
type slowStore struct {
	hosttoken.Store
	arrived chan<- struct{}
	release <-chan struct{}
}

func (s slowStore) WithTx(ctx context.Context, fn func(storage.Tx) error) error {
	s.arrived <- struct{}{}
	<-s.release
	return s.Store.WithTx(ctx, fn)
}

// TestLeaseRunOutRecordsNoSpuriousFailure (docs/security.md A-58): replica
// A has spent the refresh token at the endpoint but stores its result so
// slowly that its lease runs out; replica B claims the token and sends the
// same refresh token, and the endpoint refuses it (spent). A stores the new
// pair while B is at the endpoint. B's refusal concerns a refresh token the
// row no longer holds: it is not recorded on the token (no failure shown
// to the owner, no backoff), and the next refresh works.
func TestLeaseRunOutRecordsNoSpuriousFailure(t *testing.T) {
	t.Parallel()
	for name, newStore := range backends(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t, newStore(t))
			ctx := t.Context()
			srv := newOAuthServer(t, "ghr_initial")
			atB, goB := make(chan struct{}), make(chan struct{})
			srv.hold = func(n int64) {
				if n == 2 { // B's first call
					close(atB)
					<-goB
				}
			}
			tok := w.create(t, "gho_initial", "ghr_initial", integrationID, time.Now().Add(time.Minute))
			arrived, release := make(chan struct{}), make(chan struct{})
			a := refresher(w, srv)
			a.Service = &hosttoken.Service{Store: slowStore{w.store, arrived, release}, Envelope: w.svc.Envelope,
				Audit: w.svc.Audit, Now: w.clock.Now}
			doneA, doneB := make(chan error, 1), make(chan error, 1)
			go func() { doneA <- a.RunOnce(context.Background()) }()
			<-arrived // A spent ghr_initial and is storing its result
			w.clock.Advance(hosttoken.DefaultRefreshLease + time.Second)
			go func() { doneB <- refresher(w, srv).RunOnce(context.Background()) }()
			select {
			case <-atB:
			case err := <-doneB:
				close(release)
				t.Fatalf("replica B did not claim the token whose lease ran out: %v", err)
			}
			close(release)
			if err := <-doneA; err != nil {
				t.Fatalf("replica A: %v", err)
			}
			close(goB)
			if err := <-doneB; err != nil {
				t.Fatalf("replica B: %v", err)
			}
			v, err := w.svc.Value(ctx, w.user, tok.ID)
			if err != nil || v.Token != "gho_fresh1" || v.RefreshToken != "ghr_rotated1" {
				t.Fatalf("Value = %+v, %v; want A's pair", v, err)
			}
			got, _ := w.svc.Get(ctx, w.user, tok.ID)
			if got.Refresh.Failures != 0 || got.Refresh.LastError != "" {
				t.Errorf("refresh status = %+v; want no failure: the refused refresh token is no longer the token's", got.Refresh)
			}
			w.clock.Advance(8 * time.Hour)
			if err := refresher(w, srv).RunOnce(ctx); err != nil {
				t.Fatal(err)
			}
			if v, _ := w.svc.Value(ctx, w.user, tok.ID); v.Token != "gho_fresh2" {
				t.Errorf("the next refresh: value %q; want gho_fresh2", v.Token)
			}
		})
	}
}
