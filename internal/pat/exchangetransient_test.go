package pat_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opensts/sts/internal/pat"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/sts"
)

// flakyReads is a store whose principal and organization reads fail, as
// a storage outage does, while down is set.
type flakyReads struct {
	storage.Store
	down *atomic.Bool
}

var errOutage = errors.New("connection refused")

func (s flakyReads) GetPrincipal(ctx context.Context, id string) (storage.Principal, error) {
	if s.down.Load() {
		return storage.Principal{}, errOutage
	}
	return s.Store.GetPrincipal(ctx, id)
}

func (s flakyReads) GetOrganization(ctx context.Context, id string) (storage.Organization, error) {
	if s.down.Load() {
		return storage.Organization{}, errOutage
	}
	return s.Store.GetOrganization(ctx, id)
}

// TestExchangeTokenKeptOnTransientFailure: a redemption that storage
// cannot judge (the principal, its creator or its organization
// unreadable), or whose caller's check cannot (the sources of the token it
// would buy), is unavailable and leaves the exchange token redeemable; a
// definite refusal (the caller's check refusing, the principal disabled)
// spends it (docs/security.md A-70).
func TestExchangeTokenKeptOnTransientFailure(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			var down atomic.Bool
			f := newFixture(t, flakyReads{b.open(t), &down})
			ctx := t.Context()
			mint := func() string {
				t.Helper()
				_, secret, err := f.svc.CreateExchangeToken(ctx, caller, f.user.ID, time.Minute, pat.ExchangeSource{})
				if err != nil {
					t.Fatal(err)
				}
				return secret
			}

			secret := mint()
			down.Store(true)
			if _, err := f.svc.ConsumeExchangeToken(ctx, secret); sts.ErrorCode(err) != sts.Unavailable {
				t.Fatalf("redemption during an outage = %v, want unavailable", err)
			}
			down.Store(false)
			if au, err := f.svc.ConsumeExchangeToken(ctx, secret); err != nil || au.Principal.ID != f.user.ID {
				t.Fatalf("redemption after the outage = %+v, %v; want the same exchange token redeemed", au, err)
			}
			if _, err := f.svc.ConsumeExchangeToken(ctx, secret); sts.ErrorCode(err) != sts.Unauthenticated {
				t.Errorf("second redemption = %v, want unauthenticated (spent)", err)
			}

			// The caller's check: unavailable keeps it, a refusal spends it.
			secret = mint()
			unsure := func(context.Context, pat.Authenticated, pat.ExchangeRedemption) (string, error) {
				return "", sts.Errorf(sts.Unavailable, "sources unreadable")
			}
			if _, red, err := f.svc.RedeemExchangeToken(ctx, secret, unsure); sts.ErrorCode(err) != sts.Unavailable || red.Reason != "" {
				t.Fatalf("redemption whose check is unavailable = %v (reason %q), want unavailable", err, red.Reason)
			}
			if _, err := f.svc.ConsumeExchangeToken(ctx, secret); err != nil {
				t.Fatalf("redemption after the check could not say = %v, want the same exchange token redeemed", err)
			}
			secret = mint()
			refuse := func(context.Context, pat.Authenticated, pat.ExchangeRedemption) (string, error) {
				return pat.ExchangeSourceGone, sts.Errorf(sts.Unauthenticated, "invalid token")
			}
			if _, red, err := f.svc.RedeemExchangeToken(ctx, secret, refuse); sts.ErrorCode(err) != sts.Unauthenticated || red.Reason != pat.ExchangeSourceGone {
				t.Fatalf("redemption whose check refuses = %v (reason %q), want unauthenticated, %s", err, red.Reason, pat.ExchangeSourceGone)
			}
			if _, err := f.svc.ConsumeExchangeToken(ctx, secret); sts.ErrorCode(err) != sts.Unauthenticated {
				t.Errorf("redemption after a refusal = %v, want unauthenticated (spent)", err)
			}

			// A principal disabled: refused and spent, so enabling it again
			// does not bring the exchange token back.
			secret = mint()
			setDisabled := func(off bool) {
				if err := f.store.UpdatePrincipal(ctx, f.user.ID, func(p storage.Principal) (storage.Principal, error) { p.Disabled = off; return p, nil }); err != nil {
					t.Fatal(err)
				}
			}
			setDisabled(true)
			if _, err := f.svc.ConsumeExchangeToken(ctx, secret); sts.ErrorCode(err) != sts.Unauthenticated {
				t.Fatalf("redemption for a disabled principal = %v, want unauthenticated", err)
			}
			setDisabled(false)
			if _, err := f.svc.ConsumeExchangeToken(ctx, secret); sts.ErrorCode(err) != sts.Unauthenticated {
				t.Errorf("redemption after the principal is enabled again = %v, want unauthenticated (spent)", err)
			}
		})
	}
}
