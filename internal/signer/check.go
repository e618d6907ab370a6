package signer

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/opensts/sts/internal/storage"
)

// keysetCheck is the state of the key-set checks of one Run loop: between
// two key polls, every Config.CheckInterval, it reads the stored set's
// version and reloads the keys only when the version is not the one it
// last loaded. So a key another replica (or the CLI) revoked stops
// signing here, and stops verifying here, within one check interval and
// a reload, not at the next poll; a quiet check costs one small indexed
// read and allocates nothing on the request path (docs/security.md F-66,
// docs/architecture.md "Keys and secrets").
type keysetCheck struct {
	store  storage.KeyStore
	logger *slog.Logger
	// now and confirm, when set, record a check that found the stored
	// version unchanged as a read of the set (Manager.confirm), so a
	// replica that reads storage never reaches its unconfirmed bound
	// (docs/security.md F-109).
	now     func() time.Time
	confirm func(began time.Time)
	seen    int64 // the version last loaded, when known
	known   bool
	lastErr string // the last logged failure, to log changes only
}

// run is one check. reload re-reads every snapshot and returns only
// storage failures (a snapshot left in place), never readiness errors.
// A store without versions is reloaded at every check.
func (c *keysetCheck) run(ctx context.Context, reload func(context.Context) error) {
	ctx, cancel := context.WithTimeout(ctx, lookupTimeout)
	defer cancel()
	c.log(c.check(ctx, reload))
}

func (c *keysetCheck) check(ctx context.Context, reload func(context.Context) error) error {
	vs, ok := c.store.(storage.KeySetVersioner)
	if !ok {
		return reload(ctx)
	}
	var began time.Time
	if c.now != nil {
		began = c.now()
	}
	v, err := vs.SigningKeySetVersion(ctx)
	if err != nil {
		return err
	}
	if c.known && v == c.seen {
		// The set at began is the one loaded (a change bumps the
		// version in its own transaction).
		if c.confirm != nil {
			c.confirm(began)
		}
		return nil
	}
	// Read before the keys: a change committed in between is loaded now
	// and reloaded (unchanged, so not re-parsed) at the next check.
	if err := reload(ctx); err != nil {
		return err
	}
	c.seen, c.known = v, true
	return nil
}

func (c *keysetCheck) log(err error) {
	msg := ""
	if err != nil {
		msg = err.Error()
	}
	if msg == c.lastErr {
		return
	}
	c.lastErr = msg
	if err != nil {
		c.logger.Warn("signer: checking the stored key set failed; keeping the loaded keys until the next check", "err", err)
	} else {
		c.logger.Info("signer: checking the stored key set works again")
	}
}

// checkTicks returns the channel of the key-set checks, and the function
// that stops them; nil (no checks) when they would come no more often
// than the polls, which reload the set anyway.
func (c Config) checkTicks() (<-chan time.Time, func()) {
	if c.CheckInterval <= 0 || c.CheckInterval >= c.PollInterval {
		return nil, func() {}
	}
	t := time.NewTicker(c.CheckInterval)
	return t.C, t.Stop
}

// reloadSnapshot is Reload for a key-set check: only a failure that left
// the previous snapshot in place is an error.
func (m *Manager) reloadSnapshot(ctx context.Context) error {
	if err := m.Reload(ctx); err != nil && !errors.Is(err, ErrNoSigningKey) {
		return err
	}
	return nil
}
