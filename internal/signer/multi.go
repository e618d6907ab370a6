package signer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/opensts/sts/internal/seal"
	"github.com/opensts/sts/internal/storage"
)

// Multi keeps one active signing key per algorithm: the primary Manager
// (Config.Algorithm, which signs access tokens) and one Manager per extra
// algorithm, for relying parties that accept only that one (many accept
// only RS256). Each Manager owns the keys of its algorithm in the one key
// store and rotates them on its own schedule, exactly as a lone Manager
// does; the published set (JWKS, Algorithms, PublicKey) is the union.
// It is safe for concurrent use.
type Multi struct {
	primary *Manager
	// managers is primary then the extra algorithms' Managers in the order
	// given; built once, so lookups on the verification path allocate
	// nothing.
	managers []*Manager
	// watchers are one Manager per algorithm not kept here, over that
	// algorithm's live (active and next) keys, which another replica
	// keeps: they only load them, so this replica publishes and trusts
	// every live key in the store (docs/security.md F-100), and never
	// rotate nor sign. verify is managers then watchers, built once.
	watchers []*Manager
	verify   []*Manager
	store    storage.KeyStore
	cfg      Config
	// foreign is the algorithms not kept here that last had live keys in
	// the store (see noteForeign), so a disagreement is logged once.
	foreignMu sync.Mutex
	foreign   string
}

var (
	_ Signer = (*Multi)(nil)
	_ KeySet = (*Multi)(nil)
)

// NewMulti returns the managers of cfg.Algorithm and of each extra
// algorithm (ES256, RS256 or EdDSA, none twice nor equal to the primary)
// over store. The primary owns its algorithm's keys and the retired keys
// of every algorithm that is not an extra one, so keys of a former primary
// algorithm are deleted in time as they always were. The active and next
// keys of an algorithm not kept here are a watcher's: another replica
// whose keys.extra_algorithms differs may keep them (docs/security.md
// F-100); they are published and trusted here, never signed with.
func NewMulti(store storage.KeyStore, keyring *seal.Keyring, cfg Config, extra ...string) (*Multi, error) {
	cfg = cfg.withDefaults()
	for i, alg := range extra {
		switch {
		case alg != ES256 && alg != RS256 && alg != EdDSA:
			return nil, fmt.Errorf("signer: extra algorithm %q: want ES256, RS256 or EdDSA", alg)
		case alg == cfg.Algorithm:
			return nil, fmt.Errorf("signer: extra algorithm %s is the primary algorithm", alg)
		case slices.Contains(extra[:i], alg):
			return nil, fmt.Errorf("signer: extra algorithm %s listed twice", alg)
		}
	}
	primaryOwns := func(k storage.SigningKey) bool {
		return k.Algorithm == cfg.Algorithm || (k.State == storage.KeyRetired && !slices.Contains(extra, k.Algorithm))
	}
	primary, err := New(algStore{store: store, owns: primaryOwns}, keyring, cfg)
	if err != nil {
		return nil, err
	}
	m := &Multi{primary: primary, managers: []*Manager{primary}, store: store, cfg: cfg}
	for _, alg := range extra {
		c := cfg
		c.Algorithm = alg
		x, err := New(algStore{store: store, owns: func(k storage.SigningKey) bool { return k.Algorithm == alg }}, keyring, c)
		if err != nil {
			return nil, err
		}
		m.managers = append(m.managers, x)
	}
	for _, alg := range []string{ES256, RS256, EdDSA} {
		if m.kept(alg) {
			continue
		}
		c := cfg
		c.Algorithm = alg
		w, err := New(algStore{store: store, owns: func(k storage.SigningKey) bool { return k.Algorithm == alg && k.State != storage.KeyRetired }}, keyring, c)
		if err != nil {
			return nil, err
		}
		m.watchers = append(m.watchers, w)
	}
	m.verify = append(slices.Clone(m.managers), m.watchers...)
	return m, nil
}

// Primary is the Manager of the primary algorithm (the one KeyService
// rotates on demand).
func (m *Multi) Primary() *Manager { return m.primary }

func (m *Multi) all() []*Manager { return m.managers }

// ActiveKeyID is the primary algorithm's active kid ("" if none).
func (m *Multi) ActiveKeyID() string { return m.primary.ActiveKeyID() }

// SetKeyring is [Manager.SetKeyring] on every Manager.
func (m *Multi) SetKeyring(keyring *seal.Keyring) {
	for _, x := range m.verify {
		x.SetKeyring(keyring)
	}
}

// Keys lists the whole stored set, every algorithm's keys (each
// [KeyInfo] names its algorithm), like [ListKeys].
func (m *Multi) Keys(ctx context.Context) ([]KeyInfo, error) {
	return ListKeys(ctx, m.store, m.cfg)
}

// RotateEach is [Manager.RotateNow] on every algorithm in turn, the
// primary first: `sts keys rotate` and KeyService/RotateSigningKey rotate
// them all. It returns the rotations that were made (each names its
// Algorithm) even when a later algorithm fails, so callers can record
// them; the error says which algorithm failed (a next key not published
// long enough, without force, wraps ErrNextNotReady). Each algorithm's
// change commits with the audit event ev builds for it (nil: none).
func (m *Multi) RotateEach(ctx context.Context, force bool, ev EventFunc) ([]Rotation, error) {
	out := make([]Rotation, 0, len(m.all()))
	var errs []error
	for _, x := range m.all() {
		r, err := x.rotateNow(ctx, force, ev)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", x.cfg.Algorithm, err))
			continue
		}
		out = append(out, r)
	}
	return out, errors.Join(errs...)
}

// RotateMaster is [Manager.RotateMaster] on every algorithm: each
// Manager re-wraps its own keys and uses keyring from then on. It returns
// how many rows changed in all.
func (m *Multi) RotateMaster(ctx context.Context, keyring *seal.Keyring) (int, error) {
	total := 0
	for _, x := range m.verify {
		n, err := x.RotateMaster(ctx, keyring)
		total += n
		if err != nil {
			return total, fmt.Errorf("%s: %w", x.cfg.Algorithm, err)
		}
	}
	return total, nil
}

// SetClock and SetLogger set Now and Logger on every Manager.
func (m *Multi) SetClock(now func() time.Time) {
	for _, x := range m.verify {
		x.Now = now
	}
}

// SetScheduledEvent sets ScheduledEvent on every Manager.
func (m *Multi) SetScheduledEvent(ev EventFunc) {
	for _, x := range m.all() {
		x.ScheduledEvent = ev
	}
}

func (m *Multi) SetLogger(l *slog.Logger) {
	for _, x := range m.verify {
		x.Logger = l
	}
}

// For returns the Signer of alg: the Manager whose active key has that
// algorithm. An algorithm without one is an error. It is an [AlgSigner],
// as every signer of ID tokens must be (tokens.Issuer.MintIDTokenWith).
func (m *Multi) For(alg string) (AlgSigner, error) {
	for _, x := range m.all() {
		if x.cfg.Algorithm == alg {
			return x, nil
		}
	}
	return nil, fmt.Errorf("%w: no %s key is kept", ErrNoSigningKey, alg)
}

// Sign implements [Signer] with the primary algorithm's active key.
func (m *Multi) Sign(ctx context.Context, typ string, payload []byte) (string, error) {
	return m.primary.Sign(ctx, typ, payload)
}

// SignFor implements [AlgSigner] with the primary algorithm's active key.
func (m *Multi) SignFor(ctx context.Context, typ string, build func(alg string) ([]byte, error)) (string, error) {
	return m.primary.SignFor(ctx, typ, build)
}

// PublicKey implements [KeySet] over every live key in the store and the
// retired keys this replica owns.
func (m *Multi) PublicKey(kid string) (PublicKey, bool) {
	for _, x := range m.verify {
		if k, ok := x.PublicKey(kid); ok {
			return k, true
		}
	}
	return PublicKey{}, false
}

// LookupKey is [Manager.LookupKey] over every algorithm's keys.
func (m *Multi) LookupKey(ctx context.Context, kid string) (PublicKey, bool) {
	k, ok, _ := m.ResolveKey(ctx, kid)
	return k, ok
}

// ResolveKey is [Manager.ResolveKey] over every algorithm's keys: the
// first error is returned when no algorithm's set has kid.
func (m *Multi) ResolveKey(ctx context.Context, kid string) (PublicKey, bool, error) {
	if k, ok := m.PublicKey(kid); ok {
		return k, true, nil
	}
	// A kid one algorithm's Manager has seen leave the set (revoked) is
	// unknown to every other too: none re-reads for it.
	for _, x := range m.verify {
		if x.dropped(kid) {
			return PublicKey{}, false, nil
		}
	}
	var first error
	for _, x := range m.verify {
		k, ok, err := x.ResolveKey(ctx, kid)
		if ok {
			return k, true, nil
		}
		if first == nil {
			first = err
		}
	}
	return PublicKey{}, false, first
}

// AbsentSince is [Manager.AbsentSince] over every algorithm's keys: each
// Manager reads only its own algorithm's, so kid must be absent from all.
func (m *Multi) AbsentSince(kid string, since time.Time) bool {
	for _, x := range m.verify {
		if !x.AbsentSince(kid, since) {
			return false
		}
	}
	return true
}

// Algorithms implements [KeySet]: the union, sorted.
func (m *Multi) Algorithms() []string {
	var out []string
	for _, x := range m.all() {
		out = append(out, x.Algorithms()...)
	}
	for _, w := range m.watchers {
		if ks := w.state.Load(); ks != nil && len(ks.rows) > 0 {
			out = append(out, ks.algs...)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// JWKS implements [KeySet]: every algorithm's published keys in one set.
func (m *Multi) JWKS() ([]byte, error) {
	var all []json.RawMessage
	for _, x := range m.verify {
		doc, err := x.JWKS()
		if err != nil {
			return nil, err
		}
		var set struct {
			Keys []json.RawMessage `json:"keys"`
		}
		if err := json.Unmarshal(doc, &set); err != nil {
			return nil, fmt.Errorf("signer: jwks: %w", err)
		}
		all = append(all, set.Keys...)
	}
	return json.Marshal(struct {
		Keys []json.RawMessage `json:"keys"`
	}{all})
}

// ActiveKeyIDs is the active kid of each algorithm that has one.
func (m *Multi) ActiveKeyIDs() map[string]string {
	out := map[string]string{}
	for _, x := range m.all() {
		if kid := x.ActiveKeyID(); kid != "" {
			out[x.cfg.Algorithm] = kid
		}
	}
	return out
}

// Init, Reload, Ready and Tick act on every Manager; Init and Ready
// fail when any algorithm cannot sign. Init and Tick first retire the
// live keys of an algorithm no replica keeps any more (see
// retireAbandoned, which also logs those another replica keeps); the
// watchers only reload.
func (m *Multi) Init(ctx context.Context) error {
	// Each step is one bounded storage call (docs/security.md F-98), as
	// Manager.Init's are.
	if err := m.cfg.bounded(ctx, m.retireAbandoned); err != nil {
		return err
	}
	// The watchers first: a failure leaves no algorithm ready.
	if err := m.cfg.bounded(ctx, m.reloadWatchers); err != nil {
		return err
	}
	return m.each(func(x *Manager) error { return x.Init(ctx) })
}

func (m *Multi) Reload(ctx context.Context) error {
	if err := m.each(func(x *Manager) error { return x.Reload(ctx) }); err != nil {
		return err
	}
	return m.reloadWatchers(ctx)
}

// reloadWatchers reloads the live keys of the algorithms not kept here;
// having no active key is no error for them.
func (m *Multi) reloadWatchers(ctx context.Context) error {
	var errs []error
	for _, w := range m.watchers {
		if err := w.reloadSnapshot(ctx); err != nil && !errors.Is(err, ErrSealed) {
			errs = append(errs, fmt.Errorf("%s: %w", w.cfg.Algorithm, err))
		}
	}
	return errors.Join(errs...)
}

func (m *Multi) Ready() error { return m.each(func(x *Manager) error { return x.Ready() }) }

func (m *Multi) Tick(ctx context.Context) error {
	if err := m.cfg.bounded(ctx, m.retireAbandoned); err != nil {
		return err
	}
	err := m.each(func(x *Manager) error { return x.Tick(ctx) })
	return errors.Join(err, m.cfg.bounded(ctx, m.reloadWatchers))
}

// Run ticks every PollInterval until ctx ends, logging each algorithm's
// failures (when they change) as a lone Manager's Run does, and in
// between reloads every algorithm's set within CheckInterval of any
// change to the stored set (one version read per check for them all, see
// keysetCheck).
func (m *Multi) Run(ctx context.Context) error {
	t := time.NewTicker(m.cfg.PollInterval)
	defer t.Stop()
	checks, stop := m.cfg.checkTicks()
	defer stop()
	kc := m.newKeysetCheck()
	m.tick(ctx)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			m.tick(ctx)
		case <-checks:
			kc.run(ctx, m.reloadSnapshots)
		}
	}
}

// newKeysetCheck is the key-set check of Run: a check that finds the
// stored version unchanged confirms every algorithm's set, the watchers'
// too (docs/security.md F-109).
func (m *Multi) newKeysetCheck() *keysetCheck {
	return &keysetCheck{store: m.store, logger: m.primary.logger(), now: m.primary.now,
		confirm: func(began time.Time) {
			for _, x := range m.verify {
				x.confirm(began)
			}
		}}
}

// tick is one poll of Run.
func (m *Multi) tick(ctx context.Context) {
	if err := m.cfg.bounded(ctx, m.retireAbandoned); err != nil {
		m.primary.logger().Warn("signer: retiring the keys of an algorithm no replica keeps failed", "err", err)
	}
	for _, x := range m.all() {
		x.logTick(x.Tick(ctx))
	}
	if err := m.cfg.bounded(ctx, m.reloadWatchers); err != nil {
		m.primary.logger().Warn("signer: reloading the keys of algorithms kept elsewhere failed", "err", err)
	}
}

// reloadSnapshots is [Manager.reloadSnapshot] on every algorithm, the
// watchers' too.
func (m *Multi) reloadSnapshots(ctx context.Context) error {
	if err := m.each(func(x *Manager) error { return x.reloadSnapshot(ctx) }); err != nil {
		return err
	}
	return m.reloadWatchers(ctx)
}

// kept reports whether alg has a Manager here.
func (m *Multi) kept(alg string) bool {
	for _, x := range m.all() {
		if x.cfg.Algorithm == alg {
			return true
		}
	}
	return false
}

// abandoned reports, for each algorithm not kept here that has live keys
// in rows, whether no replica can still keep it: its active key (or, with
// none, its newest next key) dates from longer ago than
// keys.rotation_period plus keys.publish_ahead. A replica keeping that
// algorithm rotates its active key at its first poll after
// keys.rotation_period, so an overdue one has no keeper (replicas must
// agree on keys.rotation_period, docs/configuration.md).
func (m *Multi) abandoned(rows []storage.SigningKey, now time.Time) map[string]bool {
	latest := map[string]time.Time{}
	for _, k := range rows {
		if k.State == storage.KeyRetired || m.kept(k.Algorithm) {
			continue
		}
		at := k.CreatedAt
		if k.State == storage.KeyActive {
			at = k.ActivatedAt
		}
		if at.After(latest[k.Algorithm]) || latest[k.Algorithm].IsZero() {
			latest[k.Algorithm] = at
		}
	}
	out := map[string]bool{}
	for alg, at := range latest {
		if now.Sub(at) > m.cfg.RotationPeriod+m.cfg.PublishAhead {
			out[alg] = true
		}
	}
	return out
}

// retireAbandoned retires the active and next keys of algorithms no
// replica keeps any more (see abandoned): keys.algorithm changed to an
// extra algorithm, or an extra algorithm removed, on every replica.
// Retired, they stay published until every token they signed has expired
// (the primary then deletes them) and never sign again (their private half
// is dropped). A start, a poll and a revocation all follow this one rule:
// retiring the live keys of an algorithm another replica still keeps made
// it replace them at its next poll, with a key never published ahead
// (docs/security.md F-100). The stored set is only written when there is
// such a key. The set it read (or wrote) then goes to noteForeign.
func (m *Multi) retireAbandoned(ctx context.Context) error {
	rows, err := m.store.ListSigningKeys(ctx)
	if err != nil {
		return fmt.Errorf("signer: list signing keys: %w", err)
	}
	now := m.primary.now()
	if len(m.abandoned(rows, now)) == 0 {
		m.noteForeign(rows)
		return nil
	}
	stamp := storage.Now(now)
	var retired []string
	err = m.store.UpdateSigningKeys(ctx, func(old []storage.SigningKey) ([]storage.SigningKey, error) {
		retired = retired[:0]
		rows = old
		gone := m.abandoned(old, now)
		out := make([]storage.SigningKey, len(old))
		for i, k := range old {
			if k.State != storage.KeyRetired && gone[k.Algorithm] {
				k.State, k.RetiredAt, k.DeleteAfter = storage.KeyRetired, stamp, stamp.Add(m.cfg.retainFor())
				k.Sealed, k.MasterKeyID = nil, ""
				retired = append(retired, k.ID)
			}
			out[i] = k
		}
		if len(retired) == 0 {
			return nil, errNothingToDo
		}
		rows = out
		return out, nil
	})
	switch {
	case errors.Is(err, errNothingToDo):
	case err != nil:
		return fmt.Errorf("signer: retire keys of algorithms no longer kept: %w", err)
	default:
		m.primary.logger().Info("signer: retired the keys of an algorithm no replica keeps any more", "retired", retired)
	}
	m.noteForeign(rows)
	return nil
}

// noteForeign logs, once per change, the algorithms not kept here that
// have an active or next key in the store: replicas disagree on
// keys.algorithm or keys.extra_algorithms, or a change of them is rolling
// out. Retiring them at once made the two replicas replace each other's
// keys for good (docs/security.md F-100); they are left to the replica
// that keeps them until overdue (see retireAbandoned), and this one
// publishes and trusts them but never signs with them. rows is the
// stored set retireAbandoned read (and wrote), so a poll lists it once.
func (m *Multi) noteForeign(rows []storage.SigningKey) {
	var algs []string
	for _, k := range rows {
		if k.State != storage.KeyRetired && !m.kept(k.Algorithm) {
			algs = append(algs, k.Algorithm)
		}
	}
	slices.Sort(algs)
	algs = slices.Compact(algs)
	now := strings.Join(algs, ",")
	m.foreignMu.Lock()
	changed := now != m.foreign
	m.foreign = now
	m.foreignMu.Unlock()
	if changed && now != "" {
		m.primary.logger().Error("signer: another replica keeps signing keys of algorithms this one does not: replicas must agree on keys.algorithm and keys.extra_algorithms",
			"algorithms", algs, "kept", m.Algorithms())
	}
}

func (m *Multi) each(fn func(*Manager) error) error {
	var errs []error
	for _, x := range m.all() {
		if err := fn(x); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", x.cfg.Algorithm, err))
		}
	}
	return errors.Join(errs...)
}

// algStore is the part of a key store one Manager of a Multi owns: the
// keys owns accepts. Updates keep the other keys as they
// are, in the same atomic step, so Managers of different algorithms never
// see, rotate or delete each other's keys.
type algStore struct {
	store storage.KeyStore
	owns  func(k storage.SigningKey) bool
}

func (s algStore) ListSigningKeys(ctx context.Context) ([]storage.SigningKey, error) {
	all, err := s.store.ListSigningKeys(ctx)
	if err != nil {
		return nil, err
	}
	mine, _ := s.split(all)
	return mine, nil
}

func (s algStore) UpdateSigningKeys(ctx context.Context, fn func(old []storage.SigningKey) ([]storage.SigningKey, error)) error {
	return s.store.UpdateSigningKeys(ctx, s.mineOnly(fn))
}

// WithTx runs fn in a unit of work of the whole store whose
// UpdateSigningKeys, like algStore's, sees and changes only these keys.
func (s algStore) WithTx(ctx context.Context, fn func(storage.Tx) error) error {
	uow, ok := s.store.(storage.UnitOfWork)
	if !ok {
		return errors.New("signer: the key store has no units of work")
	}
	return uow.WithTx(ctx, func(tx storage.Tx) error { return fn(algTx{Tx: tx, s: s}) })
}

// algTx is a unit of work whose key updates go through its algStore.
type algTx struct {
	storage.Tx
	s algStore
}

func (t algTx) UpdateSigningKeys(ctx context.Context, fn func(old []storage.SigningKey) ([]storage.SigningKey, error)) error {
	return t.Tx.UpdateSigningKeys(ctx, t.s.mineOnly(fn))
}

// mineOnly hands fn this store's keys and keeps the others as they are.
func (s algStore) mineOnly(fn func(old []storage.SigningKey) ([]storage.SigningKey, error)) func([]storage.SigningKey) ([]storage.SigningKey, error) {
	return func(old []storage.SigningKey) ([]storage.SigningKey, error) {
		mine, others := s.split(old)
		out, err := fn(mine)
		if err != nil {
			return nil, err
		}
		for _, k := range out {
			if !s.owns(k) {
				return nil, fmt.Errorf("signer: key %s (%s, %s) is not this manager's", k.ID, k.Algorithm, k.State)
			}
		}
		return append(others, out...), nil
	}
}

func (s algStore) split(all []storage.SigningKey) (mine, others []storage.SigningKey) {
	for _, k := range all {
		if s.owns(k) {
			mine = append(mine, k)
		} else {
			others = append(others, k)
		}
	}
	return mine, others
}
