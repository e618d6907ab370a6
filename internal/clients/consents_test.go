package clients_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/opensts/sts/internal/audit"
	"github.com/opensts/sts/internal/clients"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/sts"
	"github.com/opensts/sts/internal/ststest/sqlitetest"
)

// revocationsDown fails revocation writes while down is set.
type revocationsDown struct {
	storage.Store
	down bool
}

func (s *revocationsDown) PutRevocation(ctx context.Context, r storage.Revocation) error {
	if s.down {
		return errors.New("disk full")
	}
	return s.Store.PutRevocation(ctx, r)
}

// TestConsentWithdrawalCanBeRetried: a withdrawal that fails part-way
// (its revocation could not be written) keeps the consent, so the person
// sees it still and withdrawing again finishes the job: the tokens end and
// the consent goes. Before, the consent was deleted first and the retry
// answered "not found" with the application's tokens still working.
func TestConsentWithdrawalCanBeRetried(t *testing.T) {
	ctx := t.Context()
	base := sqlitetest.NewStore(t)
	st := &revocationsDown{Store: base, down: true}
	now := storage.Now(time.Now())
	if err := base.PutConsent(ctx, storage.Consent{PrincipalID: "person", ClientID: "app", Scopes: []string{"openid"}, CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	cs := &clients.Consents{Store: st, AccessRevocation: func(clientID, principalID string, now time.Time) storage.Revocation {
		return storage.Revocation{ID: "test:" + clientID + "/" + principalID, IssuedBefore: now, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
	}}

	if err := cs.Revoke(ctx, audit.Caller{}, "person", "app"); sts.ErrorCode(err) != sts.Unavailable {
		t.Fatalf("withdrawal with revocations down = %v, want unavailable", err)
	}
	if _, err := base.GetConsent(ctx, "person", "app"); err != nil {
		t.Fatalf("the consent is gone after a failed withdrawal (%v): the person could not retry", err)
	}

	st.down = false
	if err := cs.Revoke(ctx, audit.Caller{}, "person", "app"); err != nil {
		t.Fatalf("retried withdrawal = %v, want it to finish", err)
	}
	if _, err := base.GetRevocation(ctx, "test:app/person"); err != nil {
		t.Errorf("no revocation after the retried withdrawal: %v", err)
	}
	if _, err := base.GetConsent(ctx, "person", "app"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("consent after the retried withdrawal: %v, want not found", err)
	}
	// An unknown consent is not found and writes nothing.
	if err := cs.Revoke(ctx, audit.Caller{}, "person", "other"); sts.ErrorCode(err) != sts.NotFound {
		t.Errorf("withdrawing an unknown consent = %v, want not found", err)
	}
	if _, err := base.GetRevocation(ctx, "test:other/person"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("withdrawing an unknown consent wrote a revocation (%v)", err)
	}
}
