// Package downstore wraps a storage.Store so that a test can make one of
// its reads fail, as storage that cannot answer does. It depends on
// nothing of sts but internal/storage, so any package's tests can use it.
package downstore

import (
	"context"
	"errors"
	"sync/atomic"

	"github.com/opensts/sts/internal/storage"
)

// ErrDown is what a read answers while its store is down.
var ErrDown = errors.New("storage down")

// Principals is Store whose GetPrincipal fails with ErrDown while Down is
// set; every other method is Store's own.
type Principals struct {
	storage.Store
	Down *atomic.Bool
}

// GetPrincipal is Store's, or ErrDown while Down is set.
func (d Principals) GetPrincipal(ctx context.Context, id string) (storage.Principal, error) {
	if d.Down.Load() {
		return storage.Principal{}, ErrDown
	}
	return d.Store.GetPrincipal(ctx, id)
}
