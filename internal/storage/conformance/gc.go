package conformance

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/opensts/sts/internal/storage"
)

// testGarbageCollection creates rows of each expiring kind on both sides of
// now, in distinct numbers per kind so a count reported under the wrong
// field shows, and checks GarbageCollect removes exactly the expired ones.
func testGarbageCollection(t *testing.T, s storage.Store) {
	ctx := t.Context()
	o := newTokenOwner(t, s)
	t0 := now()
	past, future := t0.Add(-time.Hour), t0.Add(time.Hour)

	type rows struct {
		exchange []storage.ExchangeToken
		refresh  []storage.RefreshToken
		revs     []storage.Revocation
		jtis     []string
		hosts    []storage.HostToken
	}
	seed := func(exp time.Time, nExchange, nRefresh, nRevs, nJTIs, nHosts int) rows {
		var r rows
		for range nExchange {
			et := o.exchangeToken(exp)
			mustNil(t, "CreateExchangeToken", s.CreateExchangeToken(ctx, et))
			r.exchange = append(r.exchange, et)
		}
		for range nRefresh {
			rt := o.refreshToken(storage.NewID(), exp)
			mustNil(t, "CreateRefreshToken", s.CreateRefreshToken(ctx, rt))
			r.refresh = append(r.refresh, rt)
		}
		for range nRevs {
			rv := revocationRecord(exp.Add(-2*time.Hour), exp)
			mustNil(t, "PutRevocation", s.PutRevocation(ctx, rv))
			r.revs = append(r.revs, rv)
		}
		for range nJTIs {
			id := storage.NewID()
			mustNil(t, "MarkUsed", s.MarkUsed(ctx, id, now(), exp))
			r.jtis = append(r.jtis, id)
		}
		for range nHosts {
			ht := o.hostToken(o.principal.ID, exp)
			ht.SealedRefresh = nil // nothing left to refresh it with
			mustNil(t, "CreateHostToken", s.CreateHostToken(ctx, ht))
			r.hosts = append(r.hosts, ht)
		}
		return r
	}
	expired := seed(past, 1, 2, 3, 4, 5)
	live := seed(future, 1, 1, 1, 1, 1)
	forever := o.hostToken(o.principal.ID, time.Time{}) // never expires
	mustNil(t, "CreateHostToken(no expiry)", s.CreateHostToken(ctx, forever))
	// An expired OAuth token with a refresh token and an integration is
	// still refreshable: GC keeps it.
	refreshable := o.hostToken(o.principal.ID, past)
	mustNil(t, "CreateHostToken(expired, refreshable)", s.CreateHostToken(ctx, refreshable))
	live.hosts = append(live.hosts, forever)
	// Long-lived records GC has no business with.
	pat := patRecord(o.org.ID, o.principal.ID)
	mustNil(t, "CreatePAT", s.CreatePAT(ctx, pat))

	gc := func(at time.Time, want storage.GCResult) {
		t.Helper()
		got, err := s.GarbageCollect(ctx, at)
		mustNil(t, "GarbageCollect", err)
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("GarbageCollect(%v) result mismatch (-want +got):\n%s", at, d)
		}
	}
	gc(t0, storage.GCResult{ExchangeTokens: 1, RefreshTokens: 2, Revocations: 3, UsedJTIs: 4, HostTokens: 5})

	// gone checks every expired row is gone; present checks live ones stayed.
	gone := func(r rows) {
		t.Helper()
		for _, et := range r.exchange {
			// Consuming at a time before its expiry would succeed had the row survived.
			_, err := s.ConsumeExchangeToken(ctx, et.Digest, et.ExpiresAt.Add(-time.Hour))
			wantErrIs(t, "ConsumeExchangeToken of a collected token", err, storage.ErrNotFound)
		}
		for _, rt := range r.refresh {
			_, err := s.GetRefreshToken(ctx, rt.ID)
			wantErrIs(t, "GetRefreshToken of a collected token", err, storage.ErrNotFound)
		}
		for _, rv := range r.revs {
			_, err := s.GetRevocation(ctx, rv.ID)
			wantErrIs(t, "GetRevocation of a collected revocation", err, storage.ErrNotFound)
		}
		for _, id := range r.jtis {
			// The id is free again once its row is collected.
			if err := s.MarkUsed(ctx, id, now(), t0.Add(time.Hour)); err != nil {
				t.Errorf("MarkUsed of a collected id = %v, want nil", err)
			}
		}
		for _, ht := range r.hosts {
			_, err := s.GetHostToken(ctx, ht.ID)
			wantErrIs(t, "GetHostToken of a collected token", err, storage.ErrNotFound)
		}
	}
	gone(expired)
	// The MarkUsed calls above re-recorded the expired ids until t0+1h.
	for _, rt := range live.refresh {
		_, err := s.GetRefreshToken(ctx, rt.ID)
		mustNil(t, "GetRefreshToken of a live token", err)
	}
	for _, rv := range live.revs {
		_, err := s.GetRevocation(ctx, rv.ID)
		mustNil(t, "GetRevocation of a live revocation", err)
	}
	for _, id := range live.jtis {
		wantErrIs(t, "MarkUsed of a live id", s.MarkUsed(ctx, id, now(), future), storage.ErrAlreadyExists)
	}
	for _, ht := range live.hosts {
		_, err := s.GetHostToken(ctx, ht.ID)
		mustNil(t, "GetHostToken of a live token", err)
	}
	_, err := s.GetPAT(ctx, pat.ID)
	mustNil(t, "GetPAT after GarbageCollect", err)

	// A second run at the same instant has nothing left to do.
	gc(t0, storage.GCResult{})

	// The now argument, not the backend's clock, decides: two hours on, the
	// live rows (and the 4 re-marked ids) expire, the never-expiring host
	// token stays. The live exchange token is still unconsumed.
	gc(t0.Add(2*time.Hour), storage.GCResult{ExchangeTokens: 1, RefreshTokens: 1, Revocations: 1, UsedJTIs: 5, HostTokens: 1})
	gone(rows{exchange: live.exchange, refresh: live.refresh, revs: live.revs, hosts: live.hosts[:1]})
	_, err = s.GetHostToken(ctx, forever.ID)
	mustNil(t, "GetHostToken(no expiry) after GarbageCollect", err)
	_, err = s.GetHostToken(ctx, refreshable.ID)
	mustNil(t, "GetHostToken(expired, refreshable) after GarbageCollect", err)
}
