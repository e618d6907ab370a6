package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/opensts/sts/internal/config"
	"github.com/opensts/sts/internal/seal"
	"github.com/opensts/sts/internal/server"
	"github.com/opensts/sts/internal/signer"
	"github.com/opensts/sts/internal/storage/sqlstore"
)

// Backoff of the start-up retry loop.
const (
	retryMin = 250 * time.Millisecond
	retryMax = 10 * time.Second
)

// The reasons /readyz shows for boot's checks: fixed texts, as it answers
// anyone; the errors behind them go to the log (docs/security.md F-103).
var (
	errWaitingForStorage = server.Reason("waiting for storage")
	errWaitingForKeys    = server.Reason("waiting for the signing keys")
	// errMigrating is the migrations' reason while they run, which can be
	// long: a large table, or another process holding the migration lock
	// (docs/security.md F-102).
	errMigrating = server.Reason("applying database migrations; see the server log")
	// errTokenEndpointsNotBuilt is what the unauthenticated /readyz says
	// when building the token endpoints failed: the error itself can name
	// organizations and providers, and goes to the log (docs/security.md
	// F-97).
	errTokenEndpointsNotBuilt = server.Reason("token endpoints not built yet; see the server log")
	// errPendingNoAutoMigrate is the migrations' reason when they are left
	// to `sts migrate`.
	errPendingNoAutoMigrate = server.Reason("schema has pending migrations: run sts migrate (storage.auto_migrate is false)")
	reasonSchemaNewer       = server.Reason("the database schema is newer than this binary; see the server log")
	reasonKeysSealed        = server.Reason("sealed: the master key does not open them")
	reasonKeysNotLoaded     = server.Reason("not loaded; see the server log")
)

// boot brings storage and the master key up, possibly after the listener
// is already serving: with PostgreSQL down at start, /livez answers 200,
// /readyz 503, and retry keeps trying until it works. Its fields are read
// by readiness checks on other goroutines, hence the atomics.
type boot struct {
	cfg    config.Config
	store  *sqlstore.Store
	logger *slog.Logger
	keys   *signer.Multi
	// onKeys run once, in order, when the master key and signing keys are
	// first ready: services that need the master key (the digest pepper)
	// start there.
	onKeys []func(context.Context, *seal.Keyring) error
	// rotate starts the signing-key rotation loop; init calls it once,
	// when the key set first loads.
	rotate func()
	// trust is the file's trust configuration, applied once after the
	// migrations (see applyTrustOnce).
	trust *trustPlan
	// onPermanent, when set, is called by retry with an error retrying
	// cannot fix (see permanent), after which retry stops.
	onPermanent func(error)

	migrated   atomic.Bool
	migrateErr atomic.Pointer[error]
	keyring    atomic.Pointer[seal.Keyring]
	keyErr     atomic.Pointer[error]
	keysLoaded atomic.Bool
	// onKeysErr is why the onKeys (the token endpoints) have not all run
	// yet: /readyz names it until keysLoaded.
	onKeysErr atomic.Pointer[error]
	trustDone atomic.Bool
	trustErr  atomic.Pointer[error]
}

func newBoot(cfg config.Config, store *sqlstore.Store, logger *slog.Logger, kr *seal.Keyring, keys *signer.Multi, rotate func()) *boot {
	b := &boot{cfg: cfg, store: store, logger: logger, keys: keys, rotate: rotate}
	b.setErr(&b.migrateErr, errWaitingForStorage)
	b.setErr(&b.keyErr, errWaitingForStorage)
	b.setErr(&b.onKeysErr, errWaitingForKeys)
	if kr != nil {
		b.keyring.Store(kr)
	}
	return b
}

func (b *boot) setErr(p *atomic.Pointer[error], err error) { p.Store(&err) }

// startStep runs one storage step of the start-up with at most
// storage.call_timeout left on its context, as every other storage call:
// Run's context has no deadline, so a database that stopped answering on
// an open connection held the start (and, before the first attempt ended,
// the listener: /livez unanswered) until TCP gave up (docs/security.md
// F-98). The migrations themselves are not a step: they may rightly take
// longer.
func startStep(ctx context.Context, cfg config.Config, step func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, cfg.Storage.CallTimeoutOrDefault())
	defer cancel()
	return step(ctx)
}

// init migrates (or, without auto_migrate, checks the schema) and then
// generates the master key if none exists and storage allows it. It is
// safe to call again after a failure.
func (b *boot) init(ctx context.Context) error {
	if !b.migrated.Load() {
		if err := b.migrate(ctx); err != nil {
			b.setErr(&b.migrateErr, err)
			return err
		}
		b.migrated.Store(true)
	}
	if err := b.applyTrustOnce(ctx); err != nil {
		return err
	}
	if b.keyring.Load() == nil {
		var kr *seal.Keyring
		err := startStep(ctx, b.cfg, func(ctx context.Context) (err error) {
			kr, err = generateKey(ctx, b.cfg, b.store, b.logger)
			return err
		})
		switch {
		case errors.Is(err, errSealed):
			b.setErr(&b.keyErr, err)
			// Stay up and sealed (retrying cannot help), but load the
			// public keys so the JWKS still serves tokens already issued.
			if err := b.keys.Init(ctx); err != nil && !errors.Is(err, signer.ErrSealed) {
				return err
			}
			return nil
		case err != nil:
			b.setErr(&b.keyErr, err)
			return err
		}
		b.keyring.Store(kr)
	}
	return b.initKeys(ctx)
}

// initKeys hands the master key to the signing-key manager and loads (on a
// fresh deployment: creates) the key set, then starts rotation once.
func (b *boot) initKeys(ctx context.Context) error {
	if b.keysLoaded.Load() {
		return nil
	}
	b.keys.SetKeyring(b.keyring.Load())
	if err := b.keys.Init(ctx); err != nil {
		if errors.Is(err, signer.ErrSealed) {
			// The master key does not open the stored keys: a wrong key.
			// Never generate new signing keys over them; stay not ready.
			b.logger.ErrorContext(ctx, "signing keys are sealed under another master key; not ready", "error", err)
			return nil
		}
		return err
	}
	for _, f := range b.onKeys {
		if err := f(ctx, b.keyring.Load()); err != nil {
			b.setErr(&b.onKeysErr, err)
			return err
		}
	}
	b.keysLoaded.Store(true)
	b.logger.InfoContext(ctx, "signing keys loaded", "active_kid", b.keys.ActiveKeyID(), "algorithm", b.cfg.Keys.Algorithm,
		"active_kids", b.keys.ActiveKeyIDs())
	b.rotate()
	return nil
}

func (b *boot) migrate(ctx context.Context) error {
	var pending bool
	err := startStep(ctx, b.cfg, func(ctx context.Context) (err error) {
		pending, err = b.store.MigrationsPending(ctx)
		return err
	})
	if err != nil {
		return lockedElsewhere(ctx, b.cfg, err)
	}
	if !pending {
		return nil
	}
	if !b.cfg.Storage.AutoMigrate {
		return errPendingNoAutoMigrate
	}
	// Not bounded: a migration may rightly take long. The listener serves
	// meanwhile and /readyz says so (docs/security.md F-102).
	b.setErr(&b.migrateErr, errMigrating)
	b.logger.InfoContext(ctx, "applying database migrations; on PostgreSQL this waits while another process migrates (up to 5 min)",
		"storage", b.cfg.Storage.Type)
	if err := b.store.Migrate(ctx); err != nil {
		return lockedElsewhere(ctx, b.cfg, err)
	}
	b.logger.InfoContext(ctx, "applied database migrations", "storage", b.cfg.Storage.Type)
	return nil
}

// retry calls init with capped exponential backoff until it succeeds or ctx
// ends. It never exits the process: a database that comes back later makes
// the server ready without a restart (no crash loop).
func (b *boot) retry(ctx context.Context) {
	delay := retryMin
	for attempt := 2; ; attempt++ {
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
		err := b.init(ctx)
		if err == nil {
			b.logger.InfoContext(ctx, "storage is ready", "attempt", attempt)
			return
		}
		if ctx.Err() != nil {
			return
		}
		if perr := permanent(err); perr != err && b.onPermanent != nil {
			b.logger.ErrorContext(ctx, "storage refused sts for a reason retrying cannot fix; stopping", "error", perr.Error())
			b.onPermanent(perr)
			return
		}
		delay = min(delay*2, retryMax)
		b.logger.WarnContext(ctx, "storage not ready; retrying", "attempt", attempt, "retry_in", delay.String(), "error", err)
	}
}

// checks are the readiness conditions boot adds to the server's built-in
// storage check.
func (b *boot) checks() []server.Check {
	return []server.Check{
		{Name: "migrations", Run: func(context.Context) error {
			if b.migrated.Load() {
				return nil
			}
			err := *b.migrateErr.Load()
			if errors.Is(err, sqlstore.ErrSchemaNewer) {
				return fmt.Errorf("%w: %w", reasonSchemaNewer, err)
			}
			return err
		}},
		{Name: "master_key", Run: func(context.Context) error {
			if b.keyring.Load() != nil {
				return nil
			}
			return *b.keyErr.Load()
		}},
		{Name: "signing_keys", Run: func(context.Context) error {
			switch err := b.keys.Ready(); {
			case err == nil:
				return nil
			case errors.Is(err, signer.ErrSealed), errors.Is(err, signer.ErrNoMasterKey):
				return fmt.Errorf("%w: %w", reasonKeysSealed, err)
			default:
				return fmt.Errorf("%w: %w", reasonKeysNotLoaded, err)
			}
		}},
		{Name: "trust_config", Run: b.trustReady},
		// The signing keys can load while what needs the master key after
		// them (the pepper, then the token endpoints) cannot be built yet:
		// ready only once they are mounted (docs/security.md F-97).
		{Name: "token_endpoints", Run: func(context.Context) error {
			if b.keysLoaded.Load() {
				return nil
			}
			if err := *b.onKeysErr.Load(); errors.Is(err, errWaitingForKeys) {
				return err
			}
			return errTokenEndpointsNotBuilt
		}},
	}
}

// errSQLiteLocked prefixes a SQLite schema check or migration that waited
// out another connection's write lock.
var errSQLiteLocked = errors.New("database is locked or busy: another process holds its write lock (a sqlite3 shell, a backup, another sts)")

// lockedElsewhere names the cause of a SQLite schema step that ran out of
// time. goose retries creating its version table behind the lock until the
// step's deadline, so the error alone read "failed to initialize: context
// deadline exceeded", which points nowhere (docs/security.md F-102). ctx
// is the start's own context: a start cancelled by shutdown is not a lock.
func lockedElsewhere(ctx context.Context, cfg config.Config, err error) error {
	if cfg.Storage.Type != sqlstore.DriverSQLite || ctx.Err() != nil {
		return err
	}
	if errors.Is(err, context.DeadlineExceeded) || sqlstore.WaitedOut(err) {
		return fmt.Errorf("%w: %w", errSQLiteLocked, err)
	}
	return err
}
