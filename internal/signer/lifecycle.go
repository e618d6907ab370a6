package signer

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/opensts/sts/internal/seal"
	"github.com/opensts/sts/internal/storage"
)

// Rotate makes the next key active now, retires the active key (published
// until every token it signed has expired), drops retired keys past their
// DeleteAfter and publishes a fresh next key. It refuses with an error
// wrapping ErrNextNotReady while the next key has been published for less
// than PublishAhead. It rotates away from the active key this manager last
// loaded: when another caller (on any replica) has already done so it
// changes nothing and reports AlreadyRotated, so N concurrent calls make
// exactly one rotation. `sts keys rotate` calls it.
func (m *Manager) Rotate(ctx context.Context, now time.Time) (Rotation, error) {
	return m.rotate(ctx, now, modeOnDemand, nil)
}

// ForceRotate is Rotate without the publish-ahead check, for an active key
// that must stop signing at once. Verifiers that cached our JWKS less than
// PublishAhead ago may reject new tokens until they refetch. The retired
// key stays published, and its tokens verify, for MaxTokenLifetime +
// Leeway + PollInterval like any retired key: for a key whose private
// half is compromised use [Manager.RevokeKey], which withdraws it at once.
func (m *Manager) ForceRotate(ctx context.Context, now time.Time) (Rotation, error) {
	return m.rotate(ctx, now, modeForced, nil)
}

// Tick is one poll of [Manager.Run]: reload the set, rotate if the active
// key is older than RotationPeriod (measured from its stored ActivatedAt,
// so replicas agree) and the next key is published long enough, and drop
// expired retired keys. Tests call it with a moving clock. Each storage
// step (here and in rotateLocked) ends within Config.StorageTimeout
// whatever ctx allows (serve's has no deadline), so that storage that
// stopped answering fails the poll instead of holding the key set's lock,
// and the loop with it, until TCP gives up (docs/security.md F-94).
func (m *Manager) Tick(ctx context.Context) error {
	err := m.cfg.bounded(ctx, m.Reload)
	if err != nil && errors.Is(err, ErrSealed) {
		return err // never rotate around keys we cannot open
	}
	if _, rerr := m.rotate(ctx, m.now(), modeScheduled, m.ScheduledEvent); rerr != nil {
		return rerr
	}
	return m.Ready()
}

// bounded runs one storage step of a key poll, a rotation or a
// revocation with at most StorageTimeout left on its context; a caller's
// earlier deadline (a request's) still wins (docs/security.md F-94).
func (c Config) bounded(ctx context.Context, step func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, c.StorageTimeout)
	defer cancel()
	return step(ctx)
}

// Run calls Tick every PollInterval until ctx is done, logging failures
// (when they change) rather than stopping, and in between reloads the set
// within CheckInterval of any change to it (see keysetCheck). The server
// starts it with its own context; it returns nil when ctx is cancelled.
func (m *Manager) Run(ctx context.Context) error {
	t := time.NewTicker(m.cfg.PollInterval)
	defer t.Stop()
	checks, stop := m.cfg.checkTicks()
	defer stop()
	kc := keysetCheck{store: m.store, logger: m.logger(), now: m.now, confirm: m.confirm}
	m.logTick(m.Tick(ctx))
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			m.logTick(m.Tick(ctx))
		case <-checks:
			kc.run(ctx, m.reloadSnapshot)
		}
	}
}

func (m *Manager) logTick(err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	msg := ""
	if err != nil {
		msg = err.Error()
	}
	if msg == m.lastErr {
		return
	}
	m.lastErr = msg
	if err != nil {
		m.logger().Error("signer: key set not ready", "err", err)
	} else {
		m.logger().Info("signer: key set ready", "kid", m.ActiveKeyID())
	}
}

// RotateNow is the on-demand rotation behind `sts keys rotate` and
// sts.v1.KeyService/RotateSigningKey, one implementation for both. It
// first reloads the stored set, so it rotates away from the key that signs
// now even when this manager's snapshot is up to a poll interval old
// (another replica or the CLI rotated since), then acts as [Manager.Rotate]
// or, with force, as [Manager.ForceRotate]: force skips only the
// publish-ahead wait, never the refusal to generate keys over a sealed set.
// The manager's snapshot is swapped before it returns, so this process
// signs with the new active key and publishes the new next key at once;
// other replicas follow at their next poll (Config.PollInterval).
func (m *Manager) RotateNow(ctx context.Context, force bool) (Rotation, error) {
	return m.rotateNow(ctx, force, nil)
}

// rotateNow is RotateNow whose change commits with the audit event ev
// builds (nil: none).
func (m *Manager) rotateNow(ctx context.Context, force bool, ev EventFunc) (Rotation, error) {
	mode := modeOnDemand
	if force {
		mode = modeForced
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	// A readiness error (nothing active, or sealed) is not a reason to stop
	// here: rotateLocked refuses a sealed set itself.
	if err := m.reloadStep(ctx); err != nil {
		return Rotation{}, err
	}
	return m.rotateLocked(ctx, m.now(), mode, ev)
}

// RotateEach is [Manager.RotateNow] as a list of one, so a lone Manager
// and a [Multi] serve KeyService alike; each change commits with the audit
// event ev builds for it (nil: none).
func (m *Manager) RotateEach(ctx context.Context, force bool, ev EventFunc) ([]Rotation, error) {
	r, err := m.rotateNow(ctx, force, ev)
	if err != nil {
		return nil, err
	}
	return []Rotation{r}, nil
}

// rotate runs one rotation of mode against the stored set.
func (m *Manager) rotate(ctx context.Context, now time.Time, mode rotateMode, ev EventFunc) (Rotation, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.rotateLocked(ctx, now, mode, ev)
}

// rotateLocked is rotate with m.mu held. A change of the key set commits
// with the audit event ev builds from it, in one transaction of the
// store's unit of work (docs/design.md#audit); nil ev records nothing.
func (m *Manager) rotateLocked(ctx context.Context, now time.Time, mode rotateMode, ev EventFunc) (Rotation, error) {
	ks := m.state.Load()
	if ks == nil {
		if err := m.reloadStep(ctx); err != nil {
			return Rotation{}, err
		}
		ks = m.state.Load()
	}
	if err := m.checkOpenable(ks); err != nil {
		// Never generate keys over a set we cannot open: a missing or
		// wrong master key must leave the server sealed, not orphan the
		// existing keys (docs/security.md D-06).
		return Rotation{}, err
	}
	p := plan{
		now:          now,
		mode:         mode,
		period:       m.cfg.RotationPeriod,
		publishAhead: m.cfg.PublishAhead,
		retainFor:    m.cfg.retainFor(),
	}
	if a := activeRow(ks.rows); a != nil {
		p.expectActive = a.ID
	}
	n, ok := m.freshNeeded(ks.rows, p)
	if !ok {
		return Rotation{}, nil
	}
	var err error
	if p.fresh, err = m.freshRows(n, now); err != nil {
		return Rotation{}, err
	}
	var event func(Rotation) storage.AuditEvent
	if ev != nil {
		event = func(r Rotation) storage.AuditEvent {
			r.Algorithm = m.cfg.Algorithm
			return ev(r)
		}
	}
	// The keys are generated above, outside commitPlan's bound: a large
	// RSA modulus may take seconds.
	res, err := commitPlan(ctx, m, p.apply, event)
	switch {
	case errors.Is(err, errAlreadyRotated):
		res = Rotation{AlreadyRotated: true}
	case errors.Is(err, errNothingToDo):
		res = Rotation{}
	case err != nil:
		return Rotation{}, fmt.Errorf("signer: update signing keys: %w", err)
	default:
		m.logger().Info("signer: key set updated", "activated", res.Activated, "retired", res.Retired,
			"next", res.Next, "deleted", res.Deleted)
	}
	res.Algorithm = m.cfg.Algorithm
	if rerr := m.reloadStep(ctx); rerr != nil {
		return res, rerr
	}
	return res, nil
}

// reloadStep is reloadLocked as one bounded storage step of a rotation
// or a revocation (docs/security.md F-94). A set with nothing active is
// no reason to stop there, so only other failures are returned.
func (m *Manager) reloadStep(ctx context.Context) error {
	if err := m.cfg.bounded(ctx, m.reloadLocked); err != nil && !errors.Is(err, ErrNoSigningKey) {
		return err
	}
	return nil
}

// commitLocked writes the change of the key set apply makes, with m.mu
// held. When event is not nil, the audit event it builds (after apply
// has run) commits in the same transaction of the store's unit of work
// (docs/design.md#audit): an event that cannot be stored undoes the
// change.
func (m *Manager) commitLocked(ctx context.Context, apply func([]storage.SigningKey) ([]storage.SigningKey, error), event func() storage.AuditEvent) error {
	if event == nil {
		return m.store.UpdateSigningKeys(ctx, apply)
	}
	uow, ok := m.store.(storage.UnitOfWork)
	if !ok {
		return errors.New("signer: an audited change of the key set needs a store with units of work")
	}
	return uow.WithTx(ctx, func(tx storage.Tx) error {
		if err := tx.UpdateSigningKeys(ctx, apply); err != nil {
			return err
		}
		if err := tx.AppendAudit(ctx, event()); err != nil {
			return storage.EventNotStored{Err: err}
		}
		return nil
	})
}

// checkOpenable returns an error wrapping ErrSealed when the active key
// failed to open or the keyring lacks the master key of a key that may
// still sign (active or next).
func (m *Manager) checkOpenable(ks *keySet) error {
	if ks.active == nil && errors.Is(ks.err, ErrSealed) {
		return ks.err
	}
	kr := m.keyring.Load()
	for _, r := range ks.rows {
		if r.State == storage.KeyRetired {
			continue
		}
		if kr == nil {
			return &SealedError{KeyID: r.ID, MasterKeyID: r.MasterKeyID, Err: ErrNoMasterKey}
		}
		if !kr.Has(r.MasterKeyID) {
			return &SealedError{KeyID: r.ID, MasterKeyID: r.MasterKeyID, Err: seal.ErrUnknownKey}
		}
	}
	return nil
}

// freshNeeded says how many new keys plan p may need against the loaded
// rows, and whether there is anything to do at all, so a quiet poll neither
// generates a key nor writes.
func (m *Manager) freshNeeded(rows []storage.SigningKey, p plan) (int, bool) {
	now := storage.Now(p.now)
	active, next := activeRow(rows), nextRow(rows)
	if active == nil {
		return 2, true
	}
	expired := false
	for _, k := range rows {
		if k.State == storage.KeyRetired && !now.Before(k.DeleteAfter) {
			expired = true
		}
	}
	switch {
	case next == nil:
		return 1, true
	case p.mode == modeOnDemand || p.mode == modeForced:
		return 1, true
	case !now.Before(active.ActivatedAt.Add(p.period)) && now.Sub(next.CreatedAt) >= p.publishAhead:
		return 1, true
	default:
		return 0, expired
	}
}

func activeRow(rows []storage.SigningKey) *storage.SigningKey { return rowIn(rows, storage.KeyActive) }
func nextRow(rows []storage.SigningKey) *storage.SigningKey   { return rowIn(rows, storage.KeyNext) }

func rowIn(rows []storage.SigningKey, state storage.KeyState) *storage.SigningKey {
	for i := range rows {
		if rows[i].State == state {
			return &rows[i]
		}
	}
	return nil
}

// freshRows returns n new key rows of the configured algorithm, sealed
// under the current master key, created at now, for a plan to place.
func (m *Manager) freshRows(n int, now time.Time) ([]storage.SigningKey, error) {
	var rows []storage.SigningKey
	for range n {
		row, _, err := newKeyRow(m.cfg.Algorithm, m.cfg.RSABits, m.keyring.Load(), now)
		if err != nil {
			return nil, err
		}
		rows = append(rows, row)
	}
	return rows, nil
}

// commitPlan commits apply, a plan's change of the stored key set, with
// the audit event ev makes of the plan's result (none when ev is nil),
// and returns that result. The commit is one bounded storage step
// (docs/security.md F-94).
func commitPlan[R any](ctx context.Context, m *Manager, apply func([]storage.SigningKey) ([]storage.SigningKey, R, error),
	ev func(R) storage.AuditEvent,
) (R, error) {
	var res R
	change := func(old []storage.SigningKey) ([]storage.SigningKey, error) {
		out, r, err := apply(old)
		res = r
		return out, err
	}
	var event func() storage.AuditEvent
	if ev != nil {
		event = func() storage.AuditEvent { return ev(res) }
	}
	err := m.cfg.bounded(ctx, func(ctx context.Context) error { return m.commitLocked(ctx, change, event) })
	return res, err
}
