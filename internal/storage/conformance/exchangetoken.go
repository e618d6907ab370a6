package conformance

import (
	"testing"
	"time"

	"github.com/opensts/sts/internal/storage"
)

func testExchangeTokenConsume(t *testing.T, s storage.Store) {
	ctx := t.Context()
	o := newTokenOwner(t, s)
	t0 := now()

	live := o.exchangeToken(t0.Add(5 * time.Minute))
	other := o.exchangeToken(t0.Add(5 * time.Minute))
	expired := o.exchangeToken(t0.Add(-time.Minute))
	for _, et := range []storage.ExchangeToken{live, other, expired} {
		mustNil(t, "CreateExchangeToken", s.CreateExchangeToken(ctx, et))
	}

	// Reading leaves it unspent; an expired or unknown one is not found.
	got, err := s.GetExchangeToken(ctx, live.Digest, t0)
	mustNil(t, "GetExchangeToken", err)
	diff(t, "GetExchangeToken", live, got)
	_, err = s.GetExchangeToken(ctx, expired.Digest, t0)
	wantErrIs(t, "GetExchangeToken(expired)", err, storage.ErrNotFound)
	_, err = s.GetExchangeToken(ctx, live.Digest, t0.Add(time.Hour))
	wantErrIs(t, "GetExchangeToken(live token, now after ExpiresAt)", err, storage.ErrNotFound)
	_, err = s.GetExchangeToken(ctx, randBytes(32), t0)
	wantErrIs(t, "GetExchangeToken(unknown digest)", err, storage.ErrNotFound)

	got, err = s.ConsumeExchangeToken(ctx, live.Digest, t0)
	mustNil(t, "ConsumeExchangeToken (first)", err)
	diff(t, "ConsumeExchangeToken", live, got)
	_, err = s.ConsumeExchangeToken(ctx, live.Digest, t0)
	wantErrIs(t, "ConsumeExchangeToken (second)", err, storage.ErrNotFound)
	_, err = s.GetExchangeToken(ctx, live.Digest, t0)
	wantErrIs(t, "GetExchangeToken(spent)", err, storage.ErrNotFound)

	_, err = s.ConsumeExchangeToken(ctx, expired.Digest, t0)
	wantErrIs(t, "ConsumeExchangeToken(expired)", err, storage.ErrNotFound)
	_, err = s.ConsumeExchangeToken(ctx, randBytes(32), t0)
	wantErrIs(t, "ConsumeExchangeToken(unknown digest)", err, storage.ErrNotFound)

	// Expiry is judged at the now argument, not the backend's clock: a
	// token is refused after its ExpiresAt ...
	_, err = s.ConsumeExchangeToken(ctx, other.Digest, t0.Add(time.Hour))
	wantErrIs(t, "ConsumeExchangeToken(live token, now after ExpiresAt)", err, storage.ErrNotFound)
	// ... and a token already past ExpiresAt by the wall clock is accepted
	// at a now before it.
	late := o.exchangeToken(t0.Add(-time.Hour))
	mustNil(t, "CreateExchangeToken", s.CreateExchangeToken(ctx, late))
	got, err = s.ConsumeExchangeToken(ctx, late.Digest, t0.Add(-2*time.Hour))
	mustNil(t, "ConsumeExchangeToken(now before ExpiresAt)", err)
	if got.ID != late.ID {
		t.Errorf("ConsumeExchangeToken(late).ID = %q, want %q", got.ID, late.ID)
	}

	// Consuming one token leaves the others alone.
	fresh := o.exchangeToken(t0.Add(5 * time.Minute))
	mustNil(t, "CreateExchangeToken", s.CreateExchangeToken(ctx, fresh))
	keep := o.exchangeToken(t0.Add(5 * time.Minute))
	mustNil(t, "CreateExchangeToken", s.CreateExchangeToken(ctx, keep))
	_, err = s.ConsumeExchangeToken(ctx, fresh.Digest, t0)
	mustNil(t, "ConsumeExchangeToken(fresh)", err)
	got, err = s.ConsumeExchangeToken(ctx, keep.Digest, t0)
	mustNil(t, "ConsumeExchangeToken(untouched neighbour)", err)
	diff(t, "ConsumeExchangeToken(untouched neighbour)", keep, got)
}

// testExchangeTokensOfPrincipal: the principal's tokens neither spent nor
// expired at now, oldest first, and no other principal's (docs/security.md
// the grant of the instance role refuses them).
func testExchangeTokensOfPrincipal(t *testing.T, s storage.Store) {
	ctx := t.Context()
	o, other := newTokenOwner(t, s), newTokenOwner(t, s)
	t0 := now()
	older, newer := o.exchangeToken(t0.Add(5*time.Minute)), o.exchangeToken(t0.Add(5*time.Minute))
	older.CreatedAt, newer.CreatedAt = t0.Add(-2*time.Minute), t0.Add(-time.Minute)
	spent, expired := o.exchangeToken(t0.Add(5*time.Minute)), o.exchangeToken(t0.Add(-time.Minute))
	for _, et := range []storage.ExchangeToken{newer, older, spent, expired, other.exchangeToken(t0.Add(5 * time.Minute))} {
		mustNil(t, "CreateExchangeToken", s.CreateExchangeToken(ctx, et))
	}
	_, err := s.ConsumeExchangeToken(ctx, spent.Digest, t0)
	mustNil(t, "ConsumeExchangeToken", err)
	got, err := s.ListExchangeTokensOfPrincipal(ctx, o.principal.ID, t0)
	mustNil(t, "ListExchangeTokensOfPrincipal", err)
	var ids []string
	for _, et := range got {
		ids = append(ids, et.ID)
	}
	diff(t, "ListExchangeTokensOfPrincipal (ids)", []string{older.ID, newer.ID}, ids)
	got, err = s.ListExchangeTokensOfPrincipal(ctx, o.principal.ID, t0.Add(time.Hour))
	mustNil(t, "ListExchangeTokensOfPrincipal(after expiry)", err)
	if len(got) != 0 {
		t.Errorf("ListExchangeTokensOfPrincipal(after expiry) returned %d tokens, want none", len(got))
	}
}
