package hosttoken_test

import (
	"context"
	"testing"
	"time"

	"github.com/opensts/sts/internal/hosttoken"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/storage/sqlstore"
	"github.com/opensts/sts/internal/sts"
)

// deletingStore deletes principal victim, as DeletePrincipal does
// (disable, sweep its host tokens, delete it), right after a read of it
// has answered: the deletion lands between Create's checks and its write.
type deletingStore struct {
	*sqlstore.Store
	victim string
	done   bool
}

func (s *deletingStore) GetPrincipal(ctx context.Context, id string) (storage.Principal, error) {
	p, err := s.Store.GetPrincipal(ctx, id)
	if err != nil || id != s.victim || s.done {
		return p, err
	}
	s.done = true
	if err := s.Store.UpdatePrincipal(ctx, id, func(old storage.Principal) (storage.Principal, error) {
		old.Disabled = true
		return old, nil
	}); err != nil {
		panic(err)
	}
	for _, f := range []storage.HostTokenFilter{{SubjectID: id}, {RunnerID: id}} {
		rows, err := s.Store.ListHostTokens(ctx, f)
		if err != nil {
			panic(err)
		}
		for _, r := range rows {
			if err := s.Store.DeleteHostToken(ctx, r.ID); err != nil {
				panic(err)
			}
		}
	}
	if err := s.Store.DeletePrincipal(ctx, id); err != nil {
		panic(err)
	}
	return p, nil
}

// TestCreateRacingPrincipalDeletion (docs/security.md T-162): a token
// created while its subject or its runner is being deleted is refused,
// never stored beside a principal that no longer exists, where nothing
// would deliver, refresh or delete it with its owner. Nor is one
// stored for a principal that is disabled (deletion disables first).
func TestCreateRacingPrincipalDeletion(t *testing.T) {
	t.Parallel()
	for name, newStore := range backends(t) {
		for _, role := range []string{"subject", "runner"} {
			t.Run(name+"/"+role, func(t *testing.T) {
				t.Parallel()
				inner := newStore(t)
				w := newWorld(t, inner)
				ctx := t.Context()
				victim := w.user.PrincipalID
				if role == "runner" {
					victim = w.runner.PrincipalID
				}
				store := &deletingStore{Store: inner, victim: victim}
				svc := &hosttoken.Service{Store: store, Envelope: w.svc.Envelope, Audit: w.svc.Audit, Now: w.clock.Now}
				_, err := svc.Create(ctx, w.user, hosttoken.CreateInput{RunnerID: w.runner.PrincipalID, UserID: w.user.PrincipalID,
					Host: "github.com", Token: "gho_orphan", Source: storage.HostTokenSourcePAT, ExpiresAt: time.Now().Add(time.Hour)})
				if !store.done {
					t.Fatal("the deletion did not run")
				}
				if err == nil {
					t.Error("Create succeeded while its " + role + " was deleted")
				} else if c := sts.ErrorCode(err); c != sts.NotFound && c != sts.FailedPrecondition {
					t.Errorf("Create = %v (%s), want not_found or failed_precondition", err, c)
				}
				rows, err := inner.ListHostTokens(ctx, storage.HostTokenFilter{})
				if err != nil {
					t.Fatal(err)
				}
				for _, r := range rows {
					t.Errorf("host token %s stored for %s %s, which no longer exists", r.ID, role, victim)
				}
			})
		}
	}
}

// TestCreateRefusesDisabledPrincipals: an administrator cannot store a
// token for a disabled subject or runner (T-162): it would be kept for a
// principal on its way out, which deletion's sweep may already have
// passed.
func TestCreateRefusesDisabledPrincipals(t *testing.T) {
	t.Parallel()
	for name, newStore := range backends(t) {
		for _, role := range []string{"subject", "runner"} {
			t.Run(name+"/"+role, func(t *testing.T) {
				t.Parallel()
				store := newStore(t)
				w := newWorld(t, store)
				ctx := t.Context()
				victim := w.user.PrincipalID
				if role == "runner" {
					victim = w.runner.PrincipalID
				}
				if err := store.UpdatePrincipal(ctx, victim, func(p storage.Principal) (storage.Principal, error) {
					p.Disabled = true
					return p, nil
				}); err != nil {
					t.Fatal(err)
				}
				_, err := w.svc.Create(ctx, w.admin, hosttoken.CreateInput{RunnerID: w.runner.PrincipalID, UserID: w.user.PrincipalID,
					Host: "github.com", Token: "gho_for_the_disabled"})
				wantCode(t, "Create for a disabled "+role, err, sts.FailedPrecondition)
				if rows, _ := store.ListHostTokens(ctx, storage.HostTokenFilter{}); len(rows) != 0 {
					t.Errorf("%d host tokens stored for a disabled %s", len(rows), role)
				}
			})
		}
	}
}
