package signer

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/opensts/sts/internal/storage"
)

// ErrKeyNotFound is returned by [Manager.RevokeKey] for a kid the stored
// set does not hold (never ours, deleted, or revoked already).
var ErrKeyNotFound = errors.New("signer: no such signing key")

// ErrNoSuccessor is returned by [Manager.RevokeKey] when the key to revoke
// signs now, or is the next key, and no key could take its place: the
// master key is missing or wrong (the error wraps ErrSealed too), so
// nothing could sign afterwards. Nothing is revoked.
var ErrNoSuccessor = errors.New("signer: no key can take the revoked key's place")

// errStale aborts a revocation planned on a set that changed before it
// was applied (another replica rotated meanwhile); it is planned again.
var errStale = errors.New("signer: key set changed while revoking")

// ActionRevoke is the audit action of a revocation ([Manager.RevokeKey]).
const ActionRevoke = "signing_key.revoke"

// Revocation reports what one revocation did.
type Revocation struct {
	// Algorithm is the algorithm of the revoked key.
	Algorithm string
	// KeyID is the revoked kid, no longer published nor trusted.
	KeyID string
	// State is the state the key had: active, next or retired.
	State storage.KeyState
	// Activated is the kid that took over signing, when the revoked key
	// was active ("" otherwise).
	Activated string
	// Next is the kid of the newly published next key, when the revoked
	// key was active or next ("" otherwise).
	Next string
	// Deleted lists retired kids dropped on the way because their
	// DeleteAfter had passed.
	Deleted []string
}

// AuditEvent is the audit record of r, made by actor: target
// signing_key:<revoked kid>, the kids in the detail, never key material.
func (r Revocation) AuditEvent(actor, requestID string, now time.Time) storage.AuditEvent {
	detail := fmt.Sprintf("state=%s activated=%s next=%s alg=%s", r.State, r.Activated, r.Next, r.Algorithm)
	if len(r.Deleted) > 0 {
		detail += " deleted=" + strings.Join(r.Deleted, ",")
	}
	return storage.AuditEvent{
		ID: storage.NewID(), Time: storage.Now(now), Actor: actor, Action: ActionRevoke,
		Target: "signing_key:" + r.KeyID, RequestID: requestID, Outcome: "success", Detail: detail,
	}
}

// RevokeEventFunc builds the audit event of a revocation; the change and
// the event commit together.
type RevokeEventFunc func(Revocation) storage.AuditEvent

// revokePlan computes the key set without kid. Like plan it is a pure
// function of its arguments, because UpdateSigningKeys may run it more
// than once. fresh holds pre-generated rows in state next, as many as the
// state the caller saw needs.
type revokePlan struct {
	now   time.Time
	kid   string
	state storage.KeyState // the state of kid the caller saw
	fresh []storage.SigningKey
}

func (p revokePlan) apply(old []storage.SigningKey) ([]storage.SigningKey, Revocation, error) {
	now := storage.Now(p.now)
	res := Revocation{KeyID: p.kid}
	idx := slices.IndexFunc(old, func(k storage.SigningKey) bool { return k.ID == p.kid })
	if idx < 0 {
		return nil, res, fmt.Errorf("%w: %s", ErrKeyNotFound, p.kid)
	}
	if old[idx].State != p.state {
		return nil, res, errStale
	}
	res.State, res.Algorithm = p.state, old[idx].Algorithm
	nextIdx := slices.IndexFunc(old, func(k storage.SigningKey) bool { return k.State == storage.KeyNext })
	fresh := p.fresh
	take := func() (storage.SigningKey, error) {
		if len(fresh) == 0 {
			return storage.SigningKey{}, errStale
		}
		k := fresh[0]
		fresh = fresh[1:]
		return k, nil
	}
	out := make([]storage.SigningKey, 0, len(old)+1)
	for i, k := range old {
		switch {
		case i == idx:
			// Dropped, not retired: no retention, so every token it
			// signed, or that was forged with it, stops verifying.
			continue
		case k.State == storage.KeyRetired && !now.Before(k.DeleteAfter):
			res.Deleted = append(res.Deleted, k.ID)
			continue
		case p.state == storage.KeyActive && i == nextIdx:
			// The successor signs at once, as after a forced rotation.
			k.State, k.ActivatedAt = storage.KeyActive, now
			res.Activated = k.ID
		}
		out = append(out, k)
	}
	if p.state == storage.KeyActive && nextIdx < 0 {
		// No next key to promote (should not happen: every rotation
		// leaves one): a new key signs at once.
		k, err := take()
		if err != nil {
			return nil, res, err
		}
		k.State, k.ActivatedAt = storage.KeyActive, now
		out = append(out, k)
		res.Activated = k.ID
	}
	if p.state == storage.KeyActive || p.state == storage.KeyNext {
		k, err := take()
		if err != nil {
			return nil, res, err
		}
		out = append(out, k)
		res.Next = k.ID
	}
	return out, res, nil
}

// RevokeKey withdraws the key kid at once, for a key whose private half
// is compromised: unlike a rotation, which keeps the retired key
// published until every token it signed has expired, it removes the key
// from the stored set, so every token it signed (and every token forged
// with it) stops verifying. When kid is active, the next key signs in its
// place at once (as after a forced rotation) and a fresh next key is
// published; a revoked next key is replaced by a fresh one; a retired key
// is just dropped. It first reloads the stored set, and swaps this
// manager's snapshot before it returns: this process's JWKS, PublicKey
// and ResolveKey lose the key at once, other replicas at their next poll
// (Config.PollInterval), as they learn every change of the set. The
// change commits with the audit event ev builds (nil: none).
//
// Errors: ErrKeyNotFound for a kid not in the stored set;
// ErrNoSuccessor (with ErrSealed) when kid is active or next and the
// master key cannot make or open its successor, in which case nothing
// changes; a storage error otherwise.
func (m *Manager) RevokeKey(ctx context.Context, kid string, ev RevokeEventFunc) (Revocation, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for range 3 {
		res, err := m.revokeLocked(ctx, kid, ev)
		if !errors.Is(err, errStale) {
			return res, err
		}
	}
	return Revocation{}, errors.New("signer: the key set kept changing while revoking; nothing was revoked")
}

// revokeLocked is one attempt of RevokeKey with m.mu held.
func (m *Manager) revokeLocked(ctx context.Context, kid string, ev RevokeEventFunc) (Revocation, error) {
	// A readiness error (sealed) is not a reason to stop here: a retired
	// key needs no master key, and the others are checked below.
	// Each storage step is bounded, as a poll's (docs/security.md F-94).
	if err := m.reloadStep(ctx); err != nil {
		return Revocation{}, err
	}
	ks := m.state.Load()
	row := rowByID(ks.rows, kid)
	if row == nil {
		return Revocation{}, fmt.Errorf("%w: %s", ErrKeyNotFound, kid)
	}
	p := revokePlan{now: m.now(), kid: kid, state: row.State}
	n := 0
	switch row.State {
	case storage.KeyActive:
		n = 1
		if nextRow(ks.rows) == nil {
			n = 2
		}
	case storage.KeyNext:
		n = 1
	}
	if n > 0 {
		// Never leave the set without a key that signs, nor generate
		// keys over a set we cannot open (docs/security.md D-06).
		if err := m.checkOpenable(ks); err != nil {
			return Revocation{}, fmt.Errorf("%w: %w", ErrNoSuccessor, err)
		}
	}
	var err error
	if p.fresh, err = m.freshRows(n, p.now); err != nil {
		return Revocation{}, err
	}
	res, err := commitPlan(ctx, m, p.apply, ev)
	if err != nil {
		if errors.Is(err, ErrKeyNotFound) || errors.Is(err, errStale) {
			return Revocation{}, err
		}
		return Revocation{}, fmt.Errorf("signer: update signing keys: %w", err)
	}
	m.logger().Warn("signer: signing key revoked", "kid", kid, "state", res.State,
		"activated", res.Activated, "next", res.Next, "deleted", res.Deleted)
	if rerr := m.reloadStep(ctx); rerr != nil {
		return res, rerr
	}
	return res, nil
}

func rowByID(rows []storage.SigningKey, kid string) *storage.SigningKey {
	for i := range rows {
		if rows[i].ID == kid {
			return &rows[i]
		}
	}
	return nil
}

// RevokeKey is [Manager.RevokeKey] by the Manager that owns kid's
// algorithm (the primary for an algorithm no longer kept, after those
// keys are retired). It returns ErrKeyNotFound for a kid no algorithm's
// set holds.
func (m *Multi) RevokeKey(ctx context.Context, kid string, ev RevokeEventFunc) (Revocation, error) {
	// One bounded step, as a poll's (docs/security.md F-94).
	var rows []storage.SigningKey
	err := m.cfg.bounded(ctx, func(ctx context.Context) (err error) {
		if err := m.retireAbandoned(ctx); err != nil {
			return err
		}
		if rows, err = m.store.ListSigningKeys(ctx); err != nil {
			return fmt.Errorf("signer: list signing keys: %w", err)
		}
		return nil
	})
	if err != nil {
		return Revocation{}, err
	}
	row := rowByID(rows, kid)
	if row == nil {
		return Revocation{}, fmt.Errorf("%w: %s", ErrKeyNotFound, kid)
	}
	// The primary owns retired keys of algorithms not kept here; a
	// watcher the live ones (another replica keeps them). Each Manager's
	// algStore says which are its own.
	owner := m.primary
	for _, x := range m.verify[1:] {
		if x.store.(algStore).owns(*row) {
			owner = x
		}
	}
	return owner.RevokeKey(ctx, kid, ev)
}
