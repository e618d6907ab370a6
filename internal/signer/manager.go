package signer

import (
	"context"
	"crypto"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/opensts/sts/internal/seal"
	"github.com/opensts/sts/internal/storage"
)

// Manager is the rotating signer of one replica. It keeps the decrypted
// active key and the published public keys in memory (so minting and
// verifying never touch storage) and reloads them when the stored set
// changes. Every replica runs one; rotations are coordinated through
// [storage.KeyStore.UpdateSigningKeys], so exactly one replica's rotation
// wins. A Manager is safe for concurrent use.
type Manager struct {
	// Now is the clock; it defaults to time.Now.
	Now func() time.Time
	// Logger receives rotation and reload events (kids only, never key
	// material); it defaults to slog.Default().
	Logger *slog.Logger
	// OnRotate, when set, is called after each rotation the schedule
	// made ([Manager.Tick]), so it is audited like an on-demand one (see
	// [AuditRotations]); its error is logged, never undoes the rotation.
	OnRotate func(context.Context, Rotation) error

	store   storage.KeyStore
	keyring atomic.Pointer[seal.Keyring]
	cfg     Config

	mu    sync.Mutex // serialises reloads and rotations on this replica
	state atomic.Pointer[keySet]
	// lastLookup is when an unknown kid last made this replica re-read
	// the stored set (UnixNano; 0: never).
	lastLookup atomic.Int64
	lastErr    string // last logged Tick error, to log changes only; under mu
}

var (
	_ Signer = (*Manager)(nil)
	_ KeySet = (*Manager)(nil)
)

// New returns a manager over store whose private keys are sealed with
// keyring. keyring may be nil when no master key is available: the
// published keys still load (JWKS and verification work) but nothing can
// sign, and [Manager.Ready] reports the set as sealed. Call [Manager.Init]
// before use.
func New(store storage.KeyStore, keyring *seal.Keyring, cfg Config) (*Manager, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("signer: %w", err)
	}
	m := &Manager{store: store, cfg: cfg.withDefaults()}
	m.keyring.Store(keyring)
	return m, nil
}

// Config returns the effective configuration (defaults filled in).
func (m *Manager) Config() Config { return m.cfg }

func (m *Manager) now() time.Time {
	if m.Now != nil {
		return m.Now()
	}
	return time.Now()
}

func (m *Manager) logger() *slog.Logger {
	if m.Logger != nil {
		return m.Logger
	}
	return slog.Default()
}

// Init loads the key set and, if the set is empty, creates the first
// active key and a next key. It returns an error wrapping ErrSealed when
// existing keys cannot be opened with the keyring; it never generates keys
// over an existing set to get around that.
func (m *Manager) Init(ctx context.Context) error {
	if err := m.Reload(ctx); err != nil && !errors.Is(err, ErrNoSigningKey) {
		return err
	}
	if ks := m.state.Load(); ks != nil && ks.active == nil && errors.Is(ks.err, ErrSealed) {
		return ks.err
	}
	if _, err := m.rotate(ctx, m.now(), modeScheduled); err != nil {
		return err
	}
	return m.Ready()
}

// Ready returns nil when the manager holds an active key that can sign;
// otherwise an error that says why (wrapping ErrNoSigningKey, and ErrSealed
// when the master key is missing or wrong). /readyz reports it.
func (m *Manager) Ready() error {
	ks := m.state.Load()
	if ks == nil {
		return fmt.Errorf("%w: key set not loaded", ErrNoSigningKey)
	}
	if ks.active == nil {
		return ks.err
	}
	return nil
}

// Reload reads the key set from storage and swaps in a new snapshot if it
// changed. A decrypted key already in memory is reused, so a master-key
// rotation by another process does not interrupt signing. It returns the
// snapshot's readiness error (see [Manager.Ready]) or a storage error, in
// which case the previous snapshot stays in place.
func (m *Manager) Reload(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.reloadLocked(ctx)
}

func (m *Manager) reloadLocked(ctx context.Context) error {
	rows, err := m.store.ListSigningKeys(ctx)
	if err != nil {
		return fmt.Errorf("signer: list signing keys: %w", err)
	}
	fp := fingerprint(rows)
	old := m.state.Load()
	if old != nil && old.fingerprint == fp {
		if old.active == nil {
			return old.err
		}
		return nil
	}
	var (
		priv      crypto.Signer
		activeErr error
	)
	for _, row := range rows {
		if row.State != storage.KeyActive {
			continue
		}
		if old != nil && old.active != nil && old.active.kid == row.ID {
			priv = old.active.priv
			break
		}
		priv, activeErr = openPrivate(row, m.keyring.Load())
		break
	}
	ks, err := newKeySet(fp, rows, m.cfg.Algorithm, priv, activeErr)
	if err != nil {
		return err
	}
	m.state.Store(ks)
	if ks.active != nil && (old == nil || old.active == nil || old.active.kid != ks.active.kid) {
		m.logger().Info("signer: active signing key loaded", "kid", ks.active.kid, "alg", ks.active.alg)
	}
	if ks.active == nil {
		return ks.err
	}
	return nil
}

// fingerprint identifies the content of a stored set that matters to the
// snapshot, so unchanged sets are not re-parsed on every poll.
func fingerprint(rows []storage.SigningKey) string {
	h := sha256.New()
	for _, r := range rows {
		for _, s := range []string{r.ID, r.Algorithm, string(r.State), r.MasterKeyID,
			strconv.FormatInt(r.ActivatedAt.UnixMicro(), 10), strconv.FormatInt(r.DeleteAfter.UnixMicro(), 10)} {
			h.Write([]byte(s))
			h.Write([]byte{0})
		}
		h.Write(r.PublicJWK)
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// LookupInterval bounds how often [Manager.LookupKey] re-reads the stored
// key set for a kid this replica does not know: a storm of made-up kids
// costs at most one storage read per interval.
const LookupInterval = 5 * time.Second

// LookupKey is PublicKey for verifiers: when this replica does not know
// kid, it re-reads the stored set first (at most once per LookupInterval),
// because another replica may have just rotated with force and be signing
// with a key this one would otherwise learn only at its next poll. A
// storage failure keeps the current snapshot.
func (m *Manager) LookupKey(ctx context.Context, kid string) (PublicKey, bool) {
	if k, ok := m.PublicKey(kid); ok {
		return k, true
	}
	now := m.now().UnixNano()
	last := m.lastLookup.Load()
	if last != 0 && now-last < int64(LookupInterval) && now >= last {
		return PublicKey{}, false
	}
	if !m.lastLookup.CompareAndSwap(last, now) {
		return m.PublicKey(kid) // another request is re-reading right now
	}
	if err := m.Reload(ctx); err != nil && !errors.Is(err, ErrSealed) && !errors.Is(err, ErrNoSigningKey) {
		m.logger().Warn("signer: re-reading keys for an unknown kid failed", "err", err)
	}
	return m.PublicKey(kid)
}

// Sign implements [Signer] with the in-memory active key.
func (m *Manager) Sign(_ context.Context, typ string, payload []byte) (string, error) {
	return m.state.Load().sign(typ, payload)
}

// PublicKey implements [KeySet].
func (m *Manager) PublicKey(kid string) (PublicKey, bool) { return m.state.Load().publicKey(kid) }

// Algorithms implements [KeySet].
func (m *Manager) Algorithms() []string {
	if ks := m.state.Load(); ks != nil {
		return ks.algs
	}
	return []string{m.cfg.Algorithm}
}

// JWKS implements [KeySet].
func (m *Manager) JWKS() ([]byte, error) { return m.state.Load().jwksDoc() }

// ActiveKeyID returns the kid of the key that signs now ("" if none).
func (m *Manager) ActiveKeyID() string {
	if ks := m.state.Load(); ks != nil && ks.active != nil {
		return ks.active.kid
	}
	return ""
}
