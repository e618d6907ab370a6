package hosttoken_test

import (
	"context"
	"crypto/rand"
	"errors"
	"testing"
	"time"

	"golang.org/x/crypto/nacl/box"

	"github.com/opensts/sts/internal/audit"
	"github.com/opensts/sts/internal/hosttoken"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/sts"
)

// auditDown fails every audit write, inside a unit of work too.
type auditDown struct{ storage.Store }

var errAuditDown = errors.New("audit table unavailable")

func (auditDown) AppendAudit(context.Context, ...storage.AuditEvent) error { return errAuditDown }

func (a auditDown) WithTx(ctx context.Context, fn func(storage.Tx) error) error {
	return a.Store.WithTx(ctx, func(tx storage.Tx) error { return fn(auditDownTx{tx}) })
}

type auditDownTx struct{ storage.Tx }

func (auditDownTx) AppendAudit(context.Context, ...storage.AuditEvent) error { return errAuditDown }

// TestCreateIsAtomicWithItsEvent: a host token (an SCM secret) is never
// stored, nor acknowledged, without its audit event (docs/design.md#audit).
func TestCreateIsAtomicWithItsEvent(t *testing.T) {
	t.Parallel()
	for name, open := range backends(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			store := open(t)
			w := newWorld(t, store)
			down := auditDown{store}
			svc := &hosttoken.Service{Store: down, Envelope: w.svc.Envelope, Audit: &audit.Writer{Store: down}, Now: w.clock.Now}
			_, err := svc.Create(t.Context(), w.user, hosttoken.CreateInput{
				RunnerID: w.runner.PrincipalID, UserID: w.user.PrincipalID, Host: "github.com", Token: "gho_secret",
				Source: storage.HostTokenSourceOAuth, ExpiresAt: time.Now().Add(time.Hour), Scopes: []string{"repo"},
			})
			if sts.ErrorCode(err) != sts.Unavailable {
				t.Fatalf("Create with the audit trail down = %v, want Unavailable", err)
			}
			rows, err := store.ListHostTokens(t.Context(), storage.HostTokenFilter{RunnerID: w.runner.PrincipalID})
			if err != nil || len(rows) != 0 {
				t.Errorf("host tokens stored without their audit event: %d (%v)", len(rows), err)
			}
		})
	}
}

// TestChangesAreAtomicWithTheirEvents: an update or a delete of a host
// token whose audit event cannot be stored changes nothing
// (docs/design.md#audit).
func TestChangesAreAtomicWithTheirEvents(t *testing.T) {
	t.Parallel()
	for name, open := range backends(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			store := open(t)
			w := newWorld(t, store)
			ctx := t.Context()
			tok, err := w.svc.Create(ctx, w.user, hosttoken.CreateInput{
				RunnerID: w.runner.PrincipalID, UserID: w.user.PrincipalID, Host: "github.com", Token: "gho_secret",
				Source: storage.HostTokenSourceOAuth, ExpiresAt: time.Now().Add(time.Hour), Scopes: []string{"repo"},
			})
			if err != nil {
				t.Fatal(err)
			}
			before, err := store.GetHostToken(ctx, tok.ID)
			if err != nil {
				t.Fatal(err)
			}
			down := auditDown{store}
			svc := &hosttoken.Service{Store: down, Envelope: w.svc.Envelope, Audit: &audit.Writer{Store: down}, Now: w.clock.Now}
			newTok := "gho_other"
			if _, err := svc.Update(ctx, w.user, tok.ID, hosttoken.UpdateInput{Token: &newTok, Scopes: []string{"gist"}}); sts.ErrorCode(err) != sts.Unavailable {
				t.Errorf("Update with the audit trail down = %v, want Unavailable", err)
			}
			if err := svc.Delete(ctx, w.user, tok.ID); sts.ErrorCode(err) != sts.Unavailable {
				t.Errorf("Delete with the audit trail down = %v, want Unavailable", err)
			}
			after, err := store.GetHostToken(ctx, tok.ID)
			if err != nil {
				t.Fatalf("GetHostToken after the failed changes = %v, want the token kept", err)
			}
			if string(after.SealedToken) != string(before.SealedToken) || len(after.Scopes) != 1 || after.Scopes[0] != "repo" {
				t.Errorf("host token changed without its audit event: scopes %v", after.Scopes)
			}
		})
	}
}

// TestRunnerKeyIsAtomicWithItsEvent: a runner key (which decides who can
// read SCM secrets) whose audit event cannot be stored is not stored
// either (docs/design.md#audit); before, the key stayed registered.
func TestRunnerKeyIsAtomicWithItsEvent(t *testing.T) {
	t.Parallel()
	for name, open := range backends(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			store := open(t)
			w := newWorld(t, store)
			pub, _, err := box.GenerateKey(rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			admin := w.admin
			admin.OrgID = w.runner.OrgID
			down := auditDown{store}
			_, err = hosttoken.SetRunnerKey(t.Context(), down, &audit.Writer{Store: down}, admin, w.runner.PrincipalID, pub[:], time.Now())
			if sts.ErrorCode(err) != sts.Unavailable {
				t.Fatalf("SetRunnerKey with the audit trail down = %v, want Unavailable", err)
			}
			if _, err := store.GetRunnerKey(t.Context(), w.runner.PrincipalID); !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("runner key stored without its audit event: %v", err)
			}
		})
	}
}
