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
	t.Parallel()
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

// TestStoreRetriesEndWithTheLease (docs/security.md F-89): the attempts to
// store a refresh's result end when the refresh lease does, not a lease's
// length after storing began: past the lease another replica may claim
// the token and send the spent refresh token again, and this poll held
// back every other due token meanwhile. Here the token endpoint answers
// 4 s into an 8 s lease while a row lock another session holds stalls
// every attempt: the poll must be over once the attempt under way when
// the lease ends does (at 9 s; it went on to 12 s).
func TestStoreRetriesEndWithTheLease(t *testing.T) {
	t.Parallel()
	w, proxy, direct := worldBehindProxy(t)
	srv := newOAuthServer(t, "ghr_initial")
	r := refresher(w, srv)
	const lease, answerAfter = 8 * time.Second, 4 * time.Second
	r.Lease = lease
	w.create(t, "gho_initial", "ghr_initial", integrationID, time.Now().Add(5*time.Minute))
	holder, err := pgx.Connect(t.Context(), direct)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { holder.Close(context.Background()) })
	tx, err := holder.Begin(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tx.Rollback(context.Background()) })
	claimedAt := make(chan time.Time, 1)
	srv.hold = func(int64) {
		claimedAt <- time.Now() // the claim came just before the call
		if _, err := tx.Exec(context.Background(), `SELECT id FROM host_tokens FOR UPDATE`); err != nil {
			t.Error(err)
		}
		time.Sleep(answerAfter)
	}
	done := make(chan error, 1)
	go func() { done <- r.RunOnce(context.Background()) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		proxy.Close()
		t.Fatal("RunOnce still waiting after 30s")
	}
	var took time.Duration
	select {
	case c := <-claimedAt:
		took = time.Since(c)
	default:
		t.Fatal("the token endpoint was never called")
	}
	t.Logf("the poll ended %s after the claim (lease %s)", took.Round(time.Millisecond), lease)
	if limit := lease + 2500*time.Millisecond; took > limit {
		t.Errorf("the poll ended %s after the claim, past the lease's end (%s): its attempts to store went on while another replica could claim the token", took.Round(time.Millisecond), lease)
	}
}
