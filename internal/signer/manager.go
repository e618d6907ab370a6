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
	// ScheduledEvent, when set, builds the audit event of each change
	// the schedule makes ([Manager.Tick]), committed in the same
	// transaction as the key set, so it is audited like an on-demand
	// rotation (see [ScheduledEvents]).
	ScheduledEvent EventFunc

	store   storage.KeyStore
	keyring atomic.Pointer[seal.Keyring]
	cfg     Config

	mu    sync.Mutex // serialises reloads and rotations on this replica
	state atomic.Pointer[keySet]
	// lookup is the single-flight re-read of the stored set for a kid
	// this replica does not know (see ResolveKey).
	lookup lookupFlight
	// readAt is when the last read of the stored set that this
	// snapshot is (a load, or a key-set check that found the stored
	// version unchanged) began (UnixNano; 0: none yet), stored after the
	// snapshot (see AbsentSince, confirmed).
	readAt  atomic.Int64
	lastErr string // last logged Tick error, to log changes only; under mu
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
	// Bounded as a poll's steps: at start-up the caller's context has no
	// deadline, and a database gone quiet on an open connection held the
	// start for as long as TCP took to notice (docs/security.md F-98).
	if err := m.cfg.bounded(ctx, m.Reload); err != nil && !errors.Is(err, ErrNoSigningKey) {
		return err
	}
	if ks := m.state.Load(); ks != nil && ks.active == nil && errors.Is(ks.err, ErrSealed) {
		return ks.err
	}
	if _, err := m.rotate(ctx, m.now(), modeScheduled, m.ScheduledEvent); err != nil {
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
	began := m.now()
	rows, err := m.store.ListSigningKeys(ctx)
	if err != nil {
		return fmt.Errorf("signer: list signing keys: %w", err)
	}
	fp := fingerprint(rows)
	old := m.state.Load()
	if old != nil && old.fingerprint == fp {
		m.confirm(began)
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
	ks.withGone(old)
	m.state.Store(ks)
	m.confirm(began)
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
// costs at most one storage read per interval, and a valid token of a key
// another replica has just made active may be answered "unavailable" for
// at most this long (docs/reliability.md "Unknown signing keys").
const LookupInterval = time.Second

// lookupTimeout bounds one re-read; the requests waiting for it give up
// at their own deadline first.
const lookupTimeout = 5 * time.Second

// ErrKeysUnavailable is the cause [Manager.ResolveKey] returns when a kid
// is unknown and the stored key set could not be read, or not re-read yet
// (LookupInterval): whether the kid is ours cannot be told
// (docs/security.md F-45).
var ErrKeysUnavailable = errors.New("signer: the stored key set could not be read")

// lookupFlight is the state of the re-reads for unknown kids: at most one
// runs at a time, every request that meets an unknown kid meanwhile waits
// for it, and a new one starts at most once per LookupInterval.
type lookupFlight struct {
	mu   sync.Mutex
	run  *lookupRun // the re-read in progress, nil when none
	last int64      // when the last one started (UnixNano; 0: never)
}

type lookupRun struct {
	done chan struct{}
	err  error
}

// LookupKey is PublicKey for verifiers: when this replica does not know
// kid, it re-reads the stored set first (see [Manager.ResolveKey]). A
// storage failure keeps the current snapshot and reports the kid unknown.
func (m *Manager) LookupKey(ctx context.Context, kid string) (PublicKey, bool) {
	k, ok, _ := m.ResolveKey(ctx, kid)
	return k, ok
}

// ResolveKey is PublicKey for verifiers. When this replica does not know
// kid, it re-reads the stored set first, because another replica may have
// just rotated with force and be signing with a key this one would
// otherwise learn only at its next poll. The re-read is single-flight
// (concurrent requests wait for the one in progress, up to their own
// deadline) and starts at most once per LookupInterval. When the kid is
// still unknown and the re-read failed, or none could start because the
// last one began less than LookupInterval ago, it returns an error
// wrapping ErrKeysUnavailable: the caller cannot tell the kid is not ours
// and must answer "unavailable", never "invalid". Only a kid a re-read
// made for it did not find, or a kid this manager once loaded and has
// seen leave the stored set (revoked, or deleted after retirement), is
// unknown without an error; the latter costs no re-read.
func (m *Manager) ResolveKey(ctx context.Context, kid string) (PublicKey, bool, error) {
	if k, ok := m.PublicKey(kid); ok {
		return k, true, nil
	}
	if m.dropped(kid) {
		return PublicKey{}, false, nil
	}
	err := m.joinReread(ctx)
	if k, ok := m.PublicKey(kid); ok {
		return k, true, nil
	}
	if errors.Is(err, errRereadSpaced) {
		// Not re-read: another forced rotation since the last
		// re-read may have made this kid ours, so it cannot be told
		// invalid (faulttest TestFaultsReplicas found valid tokens
		// answered inactive here).
		return PublicKey{}, false, fmt.Errorf("%w: kid unknown, re-read at most once per %s", ErrKeysUnavailable, LookupInterval)
	}
	return PublicKey{}, false, err
}

// errRereadSpaced is joinReread's answer when the last re-read began less
// than LookupInterval ago and none is running: no new one starts.
var errRereadSpaced = errors.New("signer: re-read at most once per interval")

// joinReread runs, or waits for, the single-flight re-read of the stored
// set (lookupFlight): nil when it read the set, an error wrapping
// ErrKeysUnavailable when it failed or this caller's context ended first,
// errRereadSpaced when none could start.
func (m *Manager) joinReread(ctx context.Context) error {
	f := &m.lookup
	f.mu.Lock()
	run := f.run
	if run == nil {
		now := m.now().UnixNano()
		if f.last != 0 && now-f.last < int64(LookupInterval) && now >= f.last {
			f.mu.Unlock()
			return errRereadSpaced
		}
		run = &lookupRun{done: make(chan struct{})}
		f.run, f.last = run, now
		// The re-read outlives a request that gives up: the others
		// waiting for it still get its answer.
		go m.reread(context.WithoutCancel(ctx), run)
	}
	f.mu.Unlock()
	select {
	case <-run.done:
		return run.err
	case <-ctx.Done():
		return fmt.Errorf("%w: %w", ErrKeysUnavailable, ctx.Err())
	}
}

// AbsentSince reports whether a read of the stored set that began at or
// after since found no kid. A key that was stored at since and is absent
// from such a read has left the set (revoked, or deleted past its
// retention) and is not ours any more: the caller can say so without a
// re-read (docs/security.md T-192). readAt is loaded before the snapshot,
// which is stored before it, so the snapshot checked is at least that
// read's.
func (m *Manager) AbsentSince(kid string, since time.Time) bool {
	at := m.readAt.Load()
	if at == 0 || at < since.UnixNano() {
		return false
	}
	_, ok := m.state.Load().publicKey(kid)
	return !ok
}

// confirm records that a read of the stored set begun at began found it
// as this manager holds it. readAt only moves forward: reads running side
// by side (a poll, a check, a re-read for an unknown kid) may end out of
// order.
func (m *Manager) confirm(began time.Time) {
	t := began.UnixNano()
	for {
		at := m.readAt.Load()
		if at >= t || m.readAt.CompareAndSwap(at, t) {
			return
		}
	}
}

// confirmed reports whether the keys held are ones a read of the stored
// set begun less than the unconfirmed bound ago found (Config.
// UnconfirmedBound). Past it, a key may have been revoked or rotated away
// from elsewhere (another replica, the CLI) without this replica knowing:
// it signs nothing and trusts no key until it reads the set again, and
// its callers answer "unavailable", never valid nor invalid
// (docs/security.md F-109).
func (m *Manager) confirmed() bool {
	at := m.readAt.Load()
	age := m.now().UnixNano() - at
	return at != 0 && age >= 0 && age < int64(m.cfg.UnconfirmedBound())
}

// reconfirmed is confirmed for the signing path: past the bound it first
// re-reads the stored set (joinReread: single flight, at most once per
// LookupInterval), so a replica whose key-set checks ran late (a loaded
// machine, a manager without a Run loop) signs on as soon as storage
// confirms its keys, and only one that cannot read them refuses.
func (m *Manager) reconfirmed(ctx context.Context) bool {
	if m.confirmed() {
		return true
	}
	_ = m.joinReread(ctx)
	return m.confirmed()
}

// errUnconfirmed is what Sign and SignFor return past the bound.
func (m *Manager) errUnconfirmed() error {
	at := m.readAt.Load()
	return fmt.Errorf("%w: not read for %s (bound %s)", ErrKeysUnavailable,
		m.now().Sub(time.Unix(0, at)).Round(time.Millisecond), m.cfg.UnconfirmedBound())
}

func (m *Manager) reread(ctx context.Context, run *lookupRun) {
	ctx, cancel := context.WithTimeout(ctx, lookupTimeout)
	defer cancel()
	err := m.Reload(ctx)
	if err != nil && !errors.Is(err, ErrSealed) && !errors.Is(err, ErrNoSigningKey) {
		m.logger().Warn("signer: re-reading keys for an unknown kid failed", "err", err)
		err = fmt.Errorf("%w: %w", ErrKeysUnavailable, err)
	} else {
		err = nil
	}
	f := &m.lookup
	f.mu.Lock()
	run.err, f.run = err, nil
	f.mu.Unlock()
	close(run.done)
}

// Sign implements [Signer] with the in-memory active key, while the set
// is confirmed or a re-read confirms it (an error wrapping
// ErrKeysUnavailable past the bound otherwise, docs/security.md F-109).
func (m *Manager) Sign(ctx context.Context, typ string, payload []byte) (string, error) {
	if !m.reconfirmed(ctx) {
		return "", m.errUnconfirmed()
	}
	return m.state.Load().sign(typ, payload)
}

// SignFor implements [AlgSigner] with the same key as Sign.
func (m *Manager) SignFor(ctx context.Context, typ string, build func(alg string) ([]byte, error)) (string, error) {
	if !m.reconfirmed(ctx) {
		return "", m.errUnconfirmed()
	}
	return m.state.Load().signFor(typ, build)
}

// dropped reports whether kid left the stored set after this manager had
// loaded it (see keySet.withGone).
func (m *Manager) dropped(kid string) bool { return m.state.Load().wasDropped(kid) }

// PublicKey implements [KeySet]: no key while the set is unconfirmed
// (docs/security.md F-109), so a verifier asks ResolveKey, which reads
// the set again or says it cannot.
func (m *Manager) PublicKey(kid string) (PublicKey, bool) {
	if !m.confirmed() {
		return PublicKey{}, false
	}
	return m.state.Load().publicKey(kid)
}

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
