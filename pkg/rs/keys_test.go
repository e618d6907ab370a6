package rs_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/opensts/sts/pkg/rs"
)

// TestVerifyKeysUnavailable: while sts's key set cannot be fetched, a
// token whose key the verifier does not hold is ErrKeys (the guide's 503:
// try again), never ErrInvalidToken (401: the client drops a valid
// token), also on the calls within MinRefetch of the failed fetch, which do
// not refetch. A kid still unknown after a good fetch stays
// ErrInvalidToken without a refetch (docs/security.md T-75, T-17).
func TestVerifyKeysUnavailable(t *testing.T) {
	t.Parallel()
	s := newSTSStub(t)
	c := newClock()
	v := &rs.Verifier{Issuer: s.srv.URL, Audience: "rs", Now: c.Now}
	good := s.mint(t, "k1", s.claims(t0))
	unknown := s.mint(t, "k2", s.claims(t0))
	steps := []struct {
		name     string
		advance  time.Duration
		down     bool
		raw      string
		want     error
		wantHits int64
	}{
		{"sts down", 0, true, good, rs.ErrKeys, 1},
		{"T-75 sts still down, within MinRefetch", time.Second, true, good, rs.ErrKeys, 1},
		{"T-75 sts back, within MinRefetch", time.Second, false, good, rs.ErrKeys, 1},
		{"after MinRefetch", rs.DefaultMinRefetch, false, good, nil, 2},
		{"T-17 unknown kid within MinRefetch", time.Second, false, unknown, rs.ErrInvalidToken, 2},
		{"unknown kid after MinRefetch refetches", rs.DefaultMinRefetch, false, unknown, rs.ErrInvalidToken, 3},
		{"T-75 unknown kid, sts down", rs.DefaultMinRefetch, true, unknown, rs.ErrKeys, 4},
		{"T-75 unknown kid within MinRefetch of the failure", time.Second, true, unknown, rs.ErrKeys, 4},
		{"known kid, sts down", time.Second, true, good, nil, 4},
	}
	for _, st := range steps {
		c.Add(st.advance)
		s.down.Store(st.down)
		_, err := v.Verify(t.Context(), st.raw)
		if (st.want == nil) != (err == nil) || !errors.Is(err, st.want) {
			t.Errorf("%s: Verify = %v, want %v", st.name, err, st.want)
		}
		if got := s.hits.Load(); got != st.wantHits {
			t.Errorf("%s: %d JWKS fetches in all, want %d", st.name, got, st.wantHits)
		}
	}
}

// TestVerifyCallerGone: a request whose client went away while the key set
// was fetched must not count as a failed fetch for the requests after it,
// which MinRefetch would otherwise refuse for 30 s (docs/security.md T-75).
func TestVerifyCallerGone(t *testing.T) {
	t.Parallel()
	s := newSTSStub(t)
	c := newClock()
	v := &rs.Verifier{Issuer: s.srv.URL, Audience: "rs", Now: c.Now}
	raw := s.mint(t, "k1", s.claims(t0))
	gone, cancel := context.WithCancel(t.Context())
	cancel()
	_, _ = v.Verify(gone, raw) // whatever it answers the departed client
	c.Add(time.Second)
	if _, err := v.Verify(t.Context(), raw); err != nil {
		t.Errorf("Verify after a departed caller = %v, want nil", err)
	}
}

// TestVerifyFetchTimeout: the fetch is bounded by FetchTimeout whatever
// HTTPClient is supplied (here one without a timeout), so a hung sts
// cannot hold the verifier (docs/security.md T-75).
func TestVerifyFetchTimeout(t *testing.T) {
	t.Parallel()
	s := newSTSStub(t)
	s.stallJWKS(t)
	v := &rs.Verifier{Issuer: s.srv.URL, Audience: "rs", HTTPClient: &http.Client{}, FetchTimeout: 100 * time.Millisecond}
	raw := s.mint(t, "k1", s.claims(time.Now()))
	done := make(chan error, 1)
	go func() {
		_, err := v.Verify(context.WithoutCancel(t.Context()), raw)
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, rs.ErrKeys) {
			t.Errorf("Verify against a hung JWKS endpoint = %v, want %v", err, rs.ErrKeys)
		}
	case <-time.After(5 * time.Second):
		t.Error("Verify against a hung JWKS endpoint still waiting after 5 s, want ErrKeys after FetchTimeout (100 ms)")
	}
}

// TestVerifyDuringRefresh: refreshing a stale key set against a slow sts
// must not hold up tokens whose key the verifier holds; they are checked
// with the held set while the refresh runs (docs/security.md T-75).
func TestVerifyDuringRefresh(t *testing.T) {
	t.Parallel()
	s := newSTSStub(t)
	c := newClock()
	v := &rs.Verifier{Issuer: s.srv.URL, Audience: "rs", Now: c.Now, FetchTimeout: time.Minute}
	if _, err := v.Verify(t.Context(), s.mint(t, "k1", s.claims(t0))); err != nil {
		t.Fatal(err)
	}
	c.Add(rs.DefaultRefreshInterval + time.Second) // the held set is stale
	raw := s.mint(t, "k1", s.claims(c.Now()))
	s.stallJWKS(t)
	const callers = 4
	errs := make(chan error, callers)
	for range callers {
		go func() {
			_, err := v.Verify(t.Context(), raw)
			errs <- err
		}()
	}
	timeout := time.After(5 * time.Second)
	for range callers {
		select {
		case err := <-errs:
			if err != nil {
				t.Errorf("Verify with a held key during a refresh = %v, want nil", err)
			}
		case <-timeout:
			t.Fatal("Verify with a held key still waiting for the refresh of the key set after 5 s")
		}
	}
}

// TestVerifyWaitsForOneFetch: callers needing a key that is not held wait
// for one shared fetch, each no longer than its own context allows; one
// giving up leaves the fetch to the others (docs/security.md T-75, T-17).
func TestVerifyWaitsForOneFetch(t *testing.T) {
	t.Parallel()
	s := newSTSStub(t)
	c := newClock()
	v := &rs.Verifier{Issuer: s.srv.URL, Audience: "rs", Now: c.Now, FetchTimeout: time.Minute}
	raw := s.mint(t, "k1", s.claims(t0))
	release := s.stallJWKS(t)
	const callers = 4
	errs := make(chan error, callers)
	for range callers {
		go func() {
			_, err := v.Verify(t.Context(), raw)
			errs <- err
		}()
	}
	short, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := v.Verify(short, raw)
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, rs.ErrKeys) || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Verify past its own deadline = %v, want %v and %v", err, rs.ErrKeys, context.DeadlineExceeded)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Verify with a 100 ms deadline still waiting for the key set after 5 s")
	}
	release()
	for range callers {
		if err := <-errs; err != nil {
			t.Errorf("Verify of a waiting caller = %v, want nil", err)
		}
	}
	if got := s.hits.Load(); got != 1 {
		t.Errorf("%d JWKS fetches, want 1 shared by every caller", got)
	}
}
