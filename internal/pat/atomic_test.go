package pat_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/opensts/sts/internal/pat"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/sts"
)

var errCrash = errors.New("process died here")

// crashAfterCreate fails every audit write, and the clean-up delete too,
// as a crash between the create and its event would: whatever the
// service stored before the failure stays stored.
type crashAfterCreate struct{ storage.Store }

func (crashAfterCreate) AppendAudit(context.Context, ...storage.AuditEvent) error { return errCrash }
func (crashAfterCreate) DeletePAT(context.Context, string) error                  { return errCrash }

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
