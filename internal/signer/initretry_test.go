package signer_test

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/opensts/sts/internal/signer"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/ststest/clocktest"
)

// failOnce is a key store whose at-th call (a read, an update or a unit
// of work) fails; with stored, that update is committed first, as when
// the connection drops after PostgreSQL received its COMMIT.
type failOnce struct {
	storage.Store
	calls, at int64
	stored    bool
}

var errStorageFault = errors.New("injected storage fault")

func (f *failOnce) fault() bool { return atomic.AddInt64(&f.calls, 1) == f.at }

func (f *failOnce) ListSigningKeys(ctx context.Context) ([]storage.SigningKey, error) {
	if f.fault() {
		return nil, errStorageFault
	}
	return f.Store.ListSigningKeys(ctx)
}

func (f *failOnce) UpdateSigningKeys(ctx context.Context, fn func([]storage.SigningKey) ([]storage.SigningKey, error)) error {
	if f.fault() {
		if f.stored {
			_ = f.Store.UpdateSigningKeys(ctx, fn)
		}
		return errStorageFault
	}
	return f.Store.UpdateSigningKeys(ctx, fn)
}

func (f *failOnce) WithTx(ctx context.Context, fn func(storage.Tx) error) error {
	uow := f.Store.(storage.UnitOfWork)
	if f.fault() {
		if f.stored {
			_ = uow.WithTx(ctx, fn)
		}
		return errStorageFault
	}
	return uow.WithTx(ctx, fn)
}

// TestMultiInitAfterStorageFailure: serve's start-up (boot.retry) calls
// Multi.Init again after any failure. Whichever storage step of the
// first Init fails (the primary's or RS256's read, commit or reload, and
// a commit stored though reported failed), the next Init leaves every
// algorithm with an active key, and Ready reports nil only then: a
// server that came up while PostgreSQL was away converges, and never
// reports ready with an algorithm that cannot sign (docs/security.md F-01).
func TestMultiInitAfterStorageFailure(t *testing.T) {
	t.Parallel()
	// Init on a fresh set makes a handful of key-store calls; 12 covers
	// every one of them and a few past the end (no fault at all).
	for at := int64(1); at <= 12; at++ {
		for _, stored := range []bool{false, true} {
			t.Run(strconv.FormatInt(at, 10)+"/stored="+strconv.FormatBool(stored), func(t *testing.T) {
				t.Parallel()
				f := &failOnce{Store: newSQLiteStore(t), at: at, stored: stored}
				clk := clocktest.New(t0)
				m, err := signer.NewMulti(f, newKeyring(t, masterKey()), signer.Config{Algorithm: signer.ES256}, signer.RS256)
				if err != nil {
					t.Fatal(err)
				}
				m.SetClock(clk.Now)
				m.SetLogger(slog.New(slog.DiscardHandler))
				m.SetScheduledEvent(signer.ScheduledEvents(clk.Now))
				first := m.Init(t.Context())
				if first != nil {
					if !errors.Is(first, errStorageFault) {
						t.Fatalf("first Init = %v, want the injected fault", first)
					}
					if err := m.Ready(); err == nil {
						t.Errorf("Ready after a failed Init = nil, want an error (ids %v)", m.ActiveKeyIDs())
					}
				}
				if err := m.Init(t.Context()); err != nil && first != nil {
					t.Fatalf("second Init after %v = %v, want nil", first, err)
				}
				ids := m.ActiveKeyIDs()
				if err := m.Ready(); err != nil || ids[signer.ES256] == "" || ids[signer.RS256] == "" {
					t.Errorf("after a retried Init: Ready = %v, active %v; want ready with an ES256 and an RS256 key", err, ids)
				}
				byAlg := map[string]int{}
				for _, k := range keysByState(t, f.Store)[storage.KeyActive] {
					byAlg[k.Algorithm]++
				}
				if byAlg[signer.ES256] != 1 || byAlg[signer.RS256] != 1 {
					t.Errorf("stored active keys per algorithm = %v, want one each", byAlg)
				}
			})
		}
	}
}
