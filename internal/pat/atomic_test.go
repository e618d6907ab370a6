package pat_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/opensts/sts/internal/pat"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/storage/sqlstore"
	"github.com/opensts/sts/internal/sts"
)

var errCrash = errors.New("process died here")

// crashAfterCreate fails every audit write, and the clean-up delete too,
// as a crash between the create and its event would: whatever the
// service stored before the failure stays stored.
type crashAfterCreate struct{ storage.Store }

func (crashAfterCreate) AppendAudit(context.Context, ...storage.AuditEvent) error { return errCrash }
func (crashAfterCreate) DeletePAT(context.Context, string) error                  { return errCrash }
func (crashAfterCreate) ConsumeExchangeToken(context.Context, []byte, time.Time) (storage.ExchangeToken, error) {
	return storage.ExchangeToken{}, errCrash
}

func (c crashAfterCreate) WithTx(ctx context.Context, fn func(storage.Tx) error) error {
	return c.Store.WithTx(ctx, func(tx storage.Tx) error { return fn(failingAuditTx{tx}) })
}

type failingAuditTx struct{ storage.Tx }

func (failingAuditTx) AppendAudit(context.Context, ...storage.AuditEvent) error { return errCrash }

// TestCreateIsAtomicWithItsEvent: a PAT is never stored without its audit
// event, even when nothing runs after the failure to clean up
// (docs/design.md#audit): the row and the event are one transaction.
func TestCreateIsAtomicWithItsEvent(t *testing.T) {
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			real := be.open(t)
			f := newFixture(t, real)
			svc, err := pat.NewService(crashAfterCreate{real}, testPepper)
			if err != nil {
				t.Fatal(err)
			}
			_, secret, err := svc.Create(t.Context(), caller, pat.CreateInput{
				OwnerID: f.user.ID, Description: "ci", ExpiresAt: time.Now().Add(30 * 24 * time.Hour)})
			if sts.ErrorCode(err) != sts.Unavailable || secret != "" {
				t.Fatalf("Create with the audit write failing = %q, %v; want Unavailable and no secret", secret, err)
			}
			pats, err := real.ListPATs(t.Context(), f.user.ID)
			if err != nil || len(pats) != 0 {
				t.Errorf("PATs stored without their audit event: %d (%v)", len(pats), err)
			}
		})
	}
}

// TestChangesAreAtomicWithTheirEvents: an update, a regeneration or a
// delete whose audit event cannot be stored changes nothing
// (docs/design.md#audit): the old secret keeps working, no new one is
// disclosed, the description and the token stay.
func TestChangesAreAtomicWithTheirEvents(t *testing.T) {
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			real := be.open(t)
			f := newFixture(t, real)
			p, secret := f.create(t, pat.ScopeTokensRead)
			svc, err := pat.NewService(crashAfterCreate{real}, testPepper)
			if err != nil {
				t.Fatal(err)
			}
			svc.Now = f.clock.Now
			ctx := t.Context()
			desc := "changed"
			if _, err := svc.Update(ctx, caller, "", p.ID, pat.UpdateInput{Description: &desc}); sts.ErrorCode(err) != sts.Unavailable {
				t.Errorf("Update with the audit write failing = %v, want Unavailable", err)
			}
			_, fresh, err := svc.Regenerate(ctx, caller, "", p.ID, f.clock.Now().Add(60*24*time.Hour))
			if sts.ErrorCode(err) != sts.Unavailable || fresh != "" {
				t.Errorf("Regenerate with the audit write failing = %q, %v; want Unavailable and no secret", fresh, err)
			}
			if err := svc.Delete(ctx, caller, "", p.ID); sts.ErrorCode(err) != sts.Unavailable {
				t.Errorf("Delete with the audit write failing = %v, want Unavailable", err)
			}
			got, err := real.GetPAT(ctx, p.ID)
			if err != nil {
				t.Fatalf("GetPAT after the failed changes = %v, want the token kept", err)
			}
			if got.Description != p.Description || !got.ExpiresAt.Equal(p.ExpiresAt) || string(got.Digest) != string(p.Digest) {
				t.Errorf("PAT changed without its audit event: %+v, was %+v", got, p)
			}
			if _, err := f.svc.Authenticate(ctx, secret); err != nil {
				t.Errorf("the old secret after a failed regeneration: %v, want it still valid", err)
			}
			// A one-time exchange token without its event is not stored.
			x, xs, err := svc.CreateExchangeToken(ctx, caller, f.user.ID, time.Minute, pat.ExchangeSource{})
			if sts.ErrorCode(err) != sts.Unavailable || xs != "" {
				t.Errorf("CreateExchangeToken with the audit write failing = %q, %v; want Unavailable and no secret", xs, err)
			}
			if x.ID != "" {
				t.Errorf("CreateExchangeToken returned a token %s without its event", x.ID)
			}
			var n int
			if err := real.(*sqlstore.Store).DB().QueryRowContext(ctx, `SELECT count(*) FROM exchange_tokens`).Scan(&n); err != nil || n != 0 {
				t.Errorf("exchange tokens stored without their event: %d (%v)", n, err)
			}
		})
	}
}
