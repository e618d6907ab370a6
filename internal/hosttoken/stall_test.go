package hosttoken_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// TestRotatedRefreshStoredAfterAStall (docs/security.md F-89): the token
// endpoint has spent the refresh token it was sent and rotated it; the
// database then stalls for longer than one storage step's bound (here a
// row lock another session holds 7 s; a failover alike). The job tries
// again within the lease and stores the rotated refresh token. It gave up
// after 5 s: the row kept the spent one and the host token could never be
// refreshed again.
func TestRotatedRefreshStoredAfterAStall(t *testing.T) {
	w, proxy, direct := worldBehindProxy(t)
	srv := newOAuthServer(t, "ghr_initial")
	r := refresher(w, srv)
	tok := w.create(t, "gho_initial", "ghr_initial", integrationID, time.Now().Add(5*time.Minute))
	before, err := w.store.GetHostToken(t.Context(), tok.ID)
	if err != nil {
		t.Fatal(err)
	}
	// A 7 s stall that starts while the token endpoint answers: here a
	// row lock another session holds (an owner's update, say), no outage.
	holder, err := pgx.Connect(t.Context(), direct)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { holder.Close(context.Background()) })
	released := make(chan struct{})
	srv.hold = func(int64) {
		tx, err := holder.Begin(context.Background())
		if err != nil {
			t.Error(err)
			return
		}
		if _, err := tx.Exec(context.Background(), `SELECT id FROM host_tokens FOR UPDATE`); err != nil {
			t.Error(err)
		}
		time.AfterFunc(7*time.Second, func() {
			tx.Rollback(context.Background())
			close(released)
		})
	}
	done := make(chan error, 1)
	go func() { done <- r.RunOnce(context.Background()) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		proxy.Close()
		t.Fatal("RunOnce still waiting after 30s")
	}
	select { // the holder's connection is the test's again
	case <-released:
	case <-time.After(10 * time.Second):
		t.Fatal("the row lock was never taken or released")
	}
	after, err := w.store.GetHostToken(t.Context(), tok.ID)
	if err != nil {
		t.Fatal(err)
	}
	srv.mu.Lock()
	initialLive := srv.valid["ghr_initial"]
	srv.mu.Unlock()
	if initialLive {
		t.Fatal("the token endpoint did not spend ghr_initial; the test proves nothing")
	}
	if bytes.Equal(after.SealedRefresh, before.SealedRefresh) {
		t.Errorf("after a 7 s stall: the token endpoint spent ghr_initial and rotated it, and the row still holds ghr_initial: the host token is dead")
	}
}
