package server

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/opensts/sts/internal/clientip"
)

// TestCallDeadline: the request's call deadline behaves as
// context.WithDeadline's, though its timer starts only when something asks
// for Done (docs/security.md F-40): Deadline from the start, Done closed
// and Err DeadlineExceeded at the deadline, a parent's cancellation and an
// earlier parent deadline passed on, children bounded by it.
func TestCallDeadline(t *testing.T) {
	t.Run("fires", func(t *testing.T) {
		start := time.Now()
		ctx := withCallDeadline(context.Background(), start.Add(50*time.Millisecond))
		defer ctx.stop()
		if d, ok := ctx.Deadline(); !ok || !d.Equal(start.Add(50*time.Millisecond)) {
			t.Errorf("Deadline = %v, %v; want the call deadline", d, ok)
		}
		if err := ctx.Err(); err != nil {
			t.Errorf("Err before the deadline = %v", err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(5 * time.Second):
			t.Fatal("Done not closed 5 s after a deadline 50 ms away")
		}
		if took := time.Since(start); took < 50*time.Millisecond {
			t.Errorf("Done closed after %s, before the deadline", took)
		}
		if err := ctx.Err(); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Err = %v, want DeadlineExceeded", err)
		}
		if err := context.Cause(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Cause = %v, want DeadlineExceeded", err)
		}
	})
	t.Run("past without Done", func(t *testing.T) {
		ctx := withCallDeadline(context.Background(), time.Now().Add(-time.Millisecond))
		defer ctx.stop()
		if err := ctx.Err(); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Err after the deadline, Done never asked = %v, want DeadlineExceeded", err)
		}
		select {
		case <-ctx.Done():
		default:
			t.Error("Done open after Err reported the deadline")
		}
	})
	t.Run("parent canceled", func(t *testing.T) {
		for _, askFirst := range []bool{false, true} {
			parent, cancel := context.WithCancel(context.Background())
			ctx := withCallDeadline(parent, time.Now().Add(time.Hour))
			if askFirst {
				_ = ctx.Done()
			}
			cancel()
			select {
			case <-ctx.Done():
			case <-time.After(5 * time.Second):
				t.Fatalf("Done (asked first: %v) not closed after the parent was canceled", askFirst)
			}
			if err := ctx.Err(); !errors.Is(err, context.Canceled) {
				t.Errorf("Err (asked first: %v) = %v, want Canceled", askFirst, err)
			}
			ctx.stop()
		}
	})
	t.Run("earlier parent deadline", func(t *testing.T) {
		pd := time.Now().Add(time.Minute)
		parent, cancel := context.WithDeadline(context.Background(), pd)
		defer cancel()
		ctx := withCallDeadline(parent, time.Now().Add(time.Hour))
		defer ctx.stop()
		if d, _ := ctx.Deadline(); !d.Equal(pd) {
			t.Errorf("Deadline = %v, want the parent's earlier %v", d, pd)
		}
	})
	t.Run("child", func(t *testing.T) {
		ctx := withCallDeadline(context.WithValue(context.Background(), ctxKey("k"), "v"), time.Now().Add(30*time.Millisecond))
		defer ctx.stop()
		child, cancel := context.WithTimeout(ctx, time.Hour)
		defer cancel()
		if child.Value(ctxKey("k")) != "v" {
			t.Error("a value of the parent is lost")
		}
		select {
		case <-child.Done():
		case <-time.After(5 * time.Second):
			t.Fatal("a child's Done not closed at the call deadline")
		}
		if !errors.Is(child.Err(), context.DeadlineExceeded) {
			t.Errorf("child Err = %v, want DeadlineExceeded", child.Err())
		}
	})
	t.Run("stop", func(t *testing.T) {
		ctx := withCallDeadline(context.Background(), time.Now().Add(time.Hour))
		_ = ctx.Done()
		ctx.stop()
		if !errors.Is(ctx.Err(), context.Canceled) {
			t.Errorf("Err after stop = %v, want Canceled", ctx.Err())
		}
	})
}

type ctxKey string

// TestCallDeadlineNoTimerUnasked: a request that never waits on its
// context (a token grant served from the caches) costs no timer: the
// middleware's allocations with a call deadline are those without one.
func TestCallDeadlineNoTimerUnasked(t *testing.T) {
	parent, cancel := context.WithCancel(context.Background())
	defer cancel()
	allocs := testing.AllocsPerRun(100, func() {
		ctx := withCallDeadline(parent, time.Now().Add(time.Minute))
		_, _ = ctx.Deadline()
		ctx.stop()
	})
	if allocs > 1 {
		t.Errorf("%v allocations for a call deadline never waited on, want at most 1 (the context itself)", allocs)
	}
}

// TestRequestContextStartsNoTimer: the middleware gives a request its call
// deadline without starting a timer: with a call timeout it allocates one
// object more than without (the callDeadline), where context.WithTimeout
// cost a timer context, its timer and a registration with the request's
// context on every request (docs/performance.md).
func TestRequestContextStartsNoTimer(t *testing.T) {
	ips := clientip.NewResolver(nil, clientip.XForwardedFor)
	var had bool
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, had = r.Context().Deadline() })
	parent, cancel := context.WithCancel(context.Background()) // as net/http's request context is
	defer cancel()
	allocs := func(timeout time.Duration) float64 {
		h := requestContext(ips, timeout, 30*time.Second)(next)
		w := &nopWriter{h: http.Header{}}
		r := httptest.NewRequestWithContext(parent, http.MethodPost, "/oauth2/token", nil)
		r.Header.Set(RequestIDHeader, "req-1")
		return testing.AllocsPerRun(200, func() { h.ServeHTTP(w, r) })
	}
	without, with := allocs(0), allocs(5*time.Second)
	if !had {
		t.Fatal("the handler saw no deadline")
	}
	if with > without+1 {
		t.Errorf("requestContext with a call timeout: %.0f allocs, without: %.0f; want at most one more", with, without)
	}
}

// TestRequestContextAllocs: the request ID and the client address ride in
// one context value with the ID's header value, so that the middleware
// allocates, beyond the request's copy, only the node and (for an ID it
// makes) the ID's string (docs/performance.md, "client_credentials,
// eighth pass").
func TestRequestContextAllocs(t *testing.T) {
	ips := clientip.NewResolver(nil, clientip.XForwardedFor)
	var gotID, gotIP string
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotID, gotIP = RequestID(r.Context()), clientip.FromRequest(r)
	})
	h := requestContext(ips, 0, 0)(next)
	for _, tc := range []struct {
		name, id string
		max      float64
	}{
		{"made", "", 3},       // the ID's string, the node, the request's copy
		{"given", "req-1", 2}, // the node, the request's copy
	} {
		w := &nopWriter{h: http.Header{}}
		r := httptest.NewRequest(http.MethodPost, "/oauth2/token", nil)
		r.RemoteAddr = "192.0.2.7:4000"
		if tc.id != "" {
			r.Header.Set(RequestIDHeader, tc.id)
		}
		max := tc.max
		if raceEnabled && tc.id == "" {
			max++ // newRequestID's byte array escapes under the race detector
		}
		allocs := testing.AllocsPerRun(200, func() { h.ServeHTTP(w, r) })
		if allocs > max {
			t.Errorf("%s ID: requestContext = %.0f allocs, want ≤ %.0f", tc.name, allocs, max)
		}
		if gotIP != "192.0.2.7" || gotID == "" || w.h.Get(RequestIDHeader) != gotID || (tc.id != "" && gotID != tc.id) {
			t.Errorf("%s ID: handler saw ID %q, IP %q; header %q", tc.name, gotID, gotIP, w.h.Get(RequestIDHeader))
		}
		if vs := w.h[RequestIDHeader]; len(vs) != 1 || cap(vs) != 1 {
			t.Errorf("%s ID: header value %q (cap %d), want one value of capacity 1", tc.name, vs, cap(vs))
		}
	}
}
