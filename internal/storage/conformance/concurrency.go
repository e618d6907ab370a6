package conformance

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opensts/sts/internal/storage"
)

// raceN is how many goroutines contend in each race. Every goroutine makes
// exactly one call: a backend that gives up under contention (for example
// with a "database is locked" error) fails the test rather than being
// retried here.
const raceN = 12

// race runs fn(0..n-1) in n goroutines released at once and returns each
// one's error.
func race(n int, fn func(i int) error) []error {
	start := make(chan struct{})
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			errs[i] = fn(i)
		})
	}
	close(start)
	wg.Wait()
	return errs
}

// exactlyOneWinner checks that one call succeeded and every other failed
// with loserErr; it returns the winner's index.
func exactlyOneWinner(t *testing.T, what string, errs []error, loserErr error) int {
	t.Helper()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil:
			if winner >= 0 {
				t.Errorf("%s: goroutines %d and %d both succeeded, want exactly one", what, winner, i)
			}
			winner = i
		case !errors.Is(err, loserErr):
			t.Errorf("%s: goroutine %d = %v, want nil or an error matching %v", what, i, err, loserErr)
		}
	}
	if winner < 0 {
		t.Errorf("%s: no goroutine succeeded, want exactly one", what)
	}
	return winner
}

// allNil reports every non-nil error.
func allNil(t *testing.T, what string, errs []error) {
	t.Helper()
	for i, err := range errs {
		if err != nil {
			t.Errorf("%s: goroutine %d = %v, want nil", what, i, err)
		}
	}
}

const counterPrefix = "count="

// increment parses "count=N" and returns "count=N+1".
func increment(s string) (string, error) {
	n, err := strconv.Atoi(strings.TrimPrefix(s, counterPrefix))
	if err != nil || !strings.HasPrefix(s, counterPrefix) {
		return "", fmt.Errorf("counter %q is not %s<n>", s, counterPrefix)
	}
	return counterPrefix + strconv.Itoa(n+1), nil
}

// testConcurrentUpdateOrganization: every updater must see the row as
// the previous winner left it, so raceN increments yield raceN.
func testConcurrentUpdateOrganization(t *testing.T, s storage.Store) {
	ctx := t.Context()
	org := orgRecord()
	org.Name = counterPrefix + "0"
	mustNil(t, "CreateOrganization", s.CreateOrganization(ctx, org))

	var calls atomic.Int64
	errs := race(raceN, func(int) error {
		return s.UpdateOrganization(ctx, org.ID, func(old storage.Organization) (storage.Organization, error) {
			calls.Add(1)
			name, err := increment(old.Name)
			if err != nil {
				return old, err
			}
			time.Sleep(updaterDelay)
			old.Name = name
			old.UpdatedAt = now()
			return old, nil
		})
	})
	allNil(t, "UpdateOrganization", errs)
	got, err := s.GetOrganization(ctx, org.ID)
	mustNil(t, "GetOrganization", err)
	if want := counterPrefix + strconv.Itoa(raceN); got.Name != want {
		t.Errorf("after %d concurrent increments Name = %q, want %q (lost updates)", raceN, got.Name, want)
	}
	if n := calls.Load(); n < raceN {
		t.Errorf("updaters ran %d times, want at least %d", n, raceN)
	}
}

func testConcurrentUpdatePAT(t *testing.T, s storage.Store) {
	ctx := t.Context()
	o := newTokenOwner(t, s)
	pat := patRecord(o.org.ID, o.principal.ID)
	pat.Description = counterPrefix + "0"
	mustNil(t, "CreatePAT", s.CreatePAT(ctx, pat))

	errs := race(raceN, func(int) error {
		return s.UpdatePAT(ctx, pat.ID, func(old storage.PAT) (storage.PAT, error) {
			d, err := increment(old.Description)
			if err != nil {
				return old, err
			}
			time.Sleep(updaterDelay)
			old.Description = d
			old.LastUsedAt = now()
			return old, nil
		})
	})
	allNil(t, "UpdatePAT", errs)
	got, err := s.GetPAT(ctx, pat.ID)
	mustNil(t, "GetPAT", err)
	if want := counterPrefix + strconv.Itoa(raceN); got.Description != want {
		t.Errorf("after %d concurrent increments Description = %q, want %q (lost updates)", raceN, got.Description, want)
	}
	diff(t, "PAT digest after concurrent updates", pat.Digest, got.Digest)
}

// errAlreadyRotated is what a replica's rotation updater returns when
// another replica rotated first (dex errAlreadyRotated).
var errAlreadyRotated = errors.New("conformance: keys already rotated")

// updaterDelay widens the window between an updater reading the current
// state and the backend writing its result, so a backend without proper
// locking loses the race reliably rather than occasionally.
const updaterDelay = 2 * time.Millisecond

// rotationRounds repeats the key-rotation race, each from a fresh set.
const rotationRounds = 3

// testConcurrentKeyRotation: raceN replicas each try to add a next key
// unless one is already there. Exactly one rotation may win.
func testConcurrentKeyRotation(t *testing.T, s storage.Store) {
	var prev []storage.SigningKey
	for round := range rotationRounds {
		active := signingKeyRecord(storage.KeyActive, now().Add(-time.Hour))
		setKeys(t, s, prev, []storage.SigningKey{active})

		candidates := make([]storage.SigningKey, raceN)
		for i := range candidates {
			candidates[i] = signingKeyRecord(storage.KeyNext, now())
		}
		errs := race(raceN, func(i int) error {
			return s.UpdateSigningKeys(t.Context(), func(old []storage.SigningKey) ([]storage.SigningKey, error) {
				for _, k := range old {
					if k.State == storage.KeyNext {
						return nil, errAlreadyRotated
					}
				}
				time.Sleep(updaterDelay)
				return append(old, candidates[i]), nil
			})
		})
		what := fmt.Sprintf("round %d: UpdateSigningKeys", round)
		winner := exactlyOneWinner(t, what, errs, errAlreadyRotated)
		if winner < 0 {
			t.FailNow()
		}
		prev = sortKeys([]storage.SigningKey{active, candidates[winner]})
		got := listKeys(t, s)
		diff(t, fmt.Sprintf("round %d: key set after concurrent rotations", round), prev, got)
		prev = got
	}
}

func testConcurrentConsumeExchangeToken(t *testing.T, s storage.Store) {
	ctx := t.Context()
	o := newTokenOwner(t, s)
	et := o.exchangeToken(now().Add(time.Hour))
	mustNil(t, "CreateExchangeToken", s.CreateExchangeToken(ctx, et))

	got := make([]storage.ExchangeToken, raceN)
	errs := race(raceN, func(i int) error {
		var err error
		got[i], err = s.ConsumeExchangeToken(ctx, et.Digest, now())
		return err
	})
	if w := exactlyOneWinner(t, "ConsumeExchangeToken", errs, storage.ErrNotFound); w >= 0 {
		diff(t, "the winner's exchange token", et, got[w])
	}
	_, err := s.ConsumeExchangeToken(ctx, et.Digest, now())
	wantErrIs(t, "ConsumeExchangeToken after the race", err, storage.ErrNotFound)
}

func testConcurrentMarkUsed(t *testing.T, s storage.Store) {
	id := "https://issuer.example.com#" + storage.NewID()
	exp := now().Add(time.Hour)
	errs := race(raceN, func(int) error { return s.MarkUsed(t.Context(), id, now(), exp) })
	exactlyOneWinner(t, "MarkUsed", errs, storage.ErrAlreadyExists)
}

func testConcurrentCreatePATSameDigest(t *testing.T, s storage.Store) {
	ctx := t.Context()
	o := newTokenOwner(t, s)
	digest := randBytes(32)
	pats := make([]storage.PAT, raceN)
	for i := range pats {
		pats[i] = patRecord(o.org.ID, o.principal.ID)
		pats[i].Digest = digest
	}
	errs := race(raceN, func(i int) error { return s.CreatePAT(ctx, pats[i]) })
	w := exactlyOneWinner(t, "CreatePAT(same digest)", errs, storage.ErrAlreadyExists)
	list, err := s.ListPATs(ctx, o.principal.ID)
	mustNil(t, "ListPATs", err)
	if w >= 0 {
		diff(t, "PATs after the race", []storage.PAT{pats[w]}, list)
	}
}
