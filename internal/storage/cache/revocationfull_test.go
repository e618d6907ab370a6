package cache_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opensts/sts/internal/storage/cache"
)

// TestFullRevocationViewAge (docs/observability.md, docs/security.md
// F-92): a view over its row limit (checks read storage) still reports,
// through RevocationsSyncedAt, the catch-ups that succeed, and says it is
// full. Its age grew without end while every catch-up returned nil, which
// the documentation reads as "catch-ups fail".
func TestFullRevocationViewAge(t *testing.T) {
	defer cache.SetMaxRevocations(3)()
	e := newRevEnv(t)
	ctx := t.Context()
	for _, id := range []string{"jti:1", "jti:2", "jti:3", "jti:4"} {
		if err := e.elsewhere.PutRevocation(ctx, e.revocation(id, e.clock.Now())); err != nil {
			t.Fatal(err)
		}
	}
	// 3 minutes of ticks, a second apart: the full view loads again once
	// a minute and skips the ticks between.
	for i := range 180 {
		e.clock.Advance(time.Second)
		if err := e.here.SyncRevocations(ctx); err != nil {
			t.Fatalf("tick %d: catch-up failed: %v", i+1, err)
		}
		if age := e.clock.Now().Sub(e.here.RevocationsSyncedAt()); age > time.Second {
			t.Fatalf("tick %d: every catch-up succeeded, yet the view's age is %s, as if catch-ups failed", i+1, age)
		}
		if !e.here.RevocationsFull() {
			t.Fatalf("tick %d: 4 live revocations over a limit of 3, RevocationsFull() = false", i+1)
		}
	}
	if _, fromMemory := e.revoked(t, "jti:4"); fromMemory {
		t.Error("a full view answered a check from memory")
	}

	// Once the rows fit again (here: a higher limit), the next load
	// takes them and the view answers again.
	defer cache.SetMaxRevocations(10)()
	e.clock.Advance(time.Minute)
	if err := e.here.SyncRevocations(ctx); err != nil {
		t.Fatal(err)
	}
	if e.here.RevocationsFull() {
		t.Error("RevocationsFull() still true once the rows fit")
	}
	if revoked, fromMemory := e.revoked(t, "jti:4"); !revoked || !fromMemory {
		t.Errorf("jti:4 once the view fits again: revoked %v, from memory %v", revoked, fromMemory)
	}
}

// TestFullRevocationViewLogged: the view going full is logged once, as a
// warning, not at every tick.
func TestFullRevocationViewLogged(t *testing.T) {
	defer cache.SetMaxRevocations(3)()
	e := newRevEnv(t)
	for _, id := range []string{"jti:1", "jti:2", "jti:3", "jti:4"} {
		if err := e.elsewhere.PutRevocation(t.Context(), e.revocation(id, e.clock.Now())); err != nil {
			t.Fatal(err)
		}
	}
	var logs lockedBuffer
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { e.here.RunRevocations(ctx, slog.New(slog.NewTextHandler(&logs, nil))); close(done) }()
	defer func() { cancel(); <-done }()
	for range 30 {
		if e.here.RevocationsFull() {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	for range 3 { // three more ticks, each catching up (the clock stands: no new load)
		time.Sleep(cache.RevocationPoll + 100*time.Millisecond)
		e.clock.Advance(time.Second)
	}
	out := logs.String()
	if n := strings.Count(out, "\n"); n != 1 || !strings.Contains(out, "level=WARN") || !strings.Contains(out, "full") {
		t.Errorf("want one warning that the view is full, logged:\n%s", out)
	}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
