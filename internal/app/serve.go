package app

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/opensts/sts/internal/authorize"
	"github.com/opensts/sts/internal/clientip"
	"github.com/opensts/sts/internal/config"
	"github.com/opensts/sts/internal/discovery"
	"github.com/opensts/sts/internal/hosttoken"
	"github.com/opensts/sts/internal/pepper"
	"github.com/opensts/sts/internal/seal"
	"github.com/opensts/sts/internal/server"
	"github.com/opensts/sts/internal/signer"
	"github.com/opensts/sts/internal/storage/cache"
	"github.com/opensts/sts/internal/storage/sqlstore"
	"github.com/opensts/sts/internal/web"
)

// Options are the parts of New tests replace.
type Options struct {
	// Logger receives every log line; required.
	Logger *slog.Logger
	// Listener, when set, is served instead of listening on cfg.Listen.
	Listener net.Listener
	// Version is the binary's version for sts_build_info and traces;
	// empty: the module version from the build info.
	Version string
	// MemoryPolicy applies cfg.Runtime to the process (memory.go); sts
	// serve sets it, test servers sharing one process do not.
	MemoryPolicy bool
	// OpsListener, when set, is served instead of listening on
	// cfg.Ops.Listen.
	OpsListener net.Listener
	// SignedIn replaces the browser sign-in of the web pages (web.go) as
	// the sign-in /oauth2/authorize asks for (authcode.go); tests use it
	// to sign in without a browser. nil: the web pages' sessions.
	SignedIn authorize.SignOuter
}

// App is one sts server process: storage, every service and the HTTP
// server, assembled by New from the configuration and run by Run.
type App struct {
	cfg    config.Config
	logger *slog.Logger
	ln     listeners
	store  *sqlstore.Store
	srv    *server.Server
	b      *boot
	// tracing is nil when tracing is off (observability.go).
	tracing *tracing

	// wg holds every background loop; ctx is Run's context, which the
	// loops started while storage comes up (possibly from the retry loop)
	// run under.
	wg  sync.WaitGroup
	ctx context.Context
	// fatal is the permanent storage error that ended Run, if any.
	fatal atomic.Pointer[error]
	// madeDirs are the directories New created for data_dir, deepest
	// first; a start that fails removes those still empty.
	madeDirs []string
}

// New assembles the server described by cfg (already loaded and valid):
// it checks the trust configuration and host-token integrations, binds the
// listeners (before anything is written, docs/security.md F-30), prepares
// data_dir, opens storage and builds every service and the HTTP server.
// It fails fast on problems a restart cannot fix (a bad pool, an
// unwritable data_dir, a bad master key). Nothing is migrated or written
// to storage until Run; Run must be called once and closes storage when it
// returns.
func New(ctx context.Context, cfg config.Config, o Options) (_ *App, err error) {
	// Tracing first, so every component logs through the handler that
	// adds trace ids; off (the default) starts nothing.
	tr, err := newTracing(ctx, cfg.Tracing, o.Version, o.Logger)
	if err != nil {
		return nil, fmt.Errorf("tracing: %w", err)
	}
	defer func() {
		if err != nil {
			_ = tr.shutdown(context.WithoutCancel(ctx))
		}
	}()
	logger := tr.logger(o.Logger)
	a := &App{cfg: cfg, logger: logger, tracing: tr}
	if o.MemoryPolicy {
		applyMemoryPolicy(cfg.Runtime, logger)
		heapProfiling(cfg.Ops.Pprof)
	}
	source := cfg.File
	if source == "" {
		source = "defaults (no " + config.DefaultFile + ")"
	}
	trust, err := planTrust(cfg) // CEL and issuers: a bad pool stops start-up (exit 2)
	if err != nil {
		return nil, err
	}
	integrations, err := hostTokenIntegrations(cfg)
	if err != nil {
		return nil, err
	}
	if err := checkDeployment(cfg); err != nil {
		return nil, err
	}
	tlsConf, err := tlsConfig(cfg, logger) // a certificate that does not load stops start-up
	if err != nil {
		return nil, err
	}
	// Bind before writing anything: a port in use must leave no data dir,
	// master key or database behind (docs/security.md F-30).
	if a.ln, err = bind(cfg, o); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			a.ln.closeOwned()
		}
	}()
	if UsesDataDir(cfg, true) {
		// A start that fails leaves no data directory it made behind
		// (docs/security.md F-78): New's failures here, Run's at start.
		a.madeDirs = missingDirs(cfg.DataDir)
		defer func() {
			if err != nil {
				removeEmptyDirs(a.madeDirs)
			}
		}()
		if err := PrepareDataDir(cfg.DataDir); err != nil {
			return nil, err // before any log line: the error is the only output
		}
	}
	if err := checkKeyFiles(cfg); err != nil {
		return nil, err // likewise
	}
	logger.InfoContext(ctx, fmt.Sprintf("sts is starting; once it logs \"listening\", open %s/readyz to check it is ready (sts --help lists the commands)", a.localURL()),
		"config", source, "storage", cfg.Storage.Type, "data_dir", cfg.DataDir)

	metrics := server.NewMetrics()
	store, err := openStorage(ctx, cfg, metrics.StorageError, logger)
	if err != nil {
		return nil, permanent(err)
	}
	defer func() {
		if err != nil {
			store.Close()
		}
	}()
	a.store = store
	// Every component of this process reads and writes through one record
	// cache, so its own changes to clients and principals are seen at once;
	// changes by other replicas or the CLI within cache.DefaultTTL
	// (docs/architecture.md, "Record cache").
	records := cache.New(store)
	kr, err := LoadConfiguredKey(cfg)
	if err != nil {
		return nil, err
	}

	// One active key per algorithm: keys.algorithm's signs access tokens
	// (and ID tokens by default), each of keys.extra_algorithms' is
	// published and rotated beside it (docs/configuration.md).
	keys, err := signer.NewMulti(store, kr, SignerConfig(cfg), cfg.Keys.ExtraAlgorithms...)
	if err != nil {
		return nil, err
	}
	keys.SetLogger(logger)
	// Scheduled rotations are audited like `sts keys rotate`, by the
	// scheduler actor, each in the transaction of its change.
	keys.SetScheduledEvent(signer.ScheduledEvents(time.Now))
	// One trust registry for the node: the exchange selects pools with it
	// and every verifier judges a token's pool by it.
	registry, err := newTrustRegistry(records, logger)
	if err != nil {
		return nil, err
	}
	connect, err := newConnectAPI(cfg, records, keys, registry, logger)
	if err != nil {
		return nil, err
	}
	obs := newObservability(cfg, o.Version, metrics, store, keys, tr)
	if cfg.Storage.Type == "sqlite" {
		registerRevocationViewAge(metrics.Registry(), records)
	}
	if err := obs.instrumentAPI(connect.handler); err != nil {
		return nil, err
	}

	wg := &a.wg
	var rotation sync.Once
	b := newBoot(cfg, store, logger, kr, keys, func() {
		rotation.Do(func() {
			ctx := a.ctx
			wg.Go(func() { keys.Run(ctx) })
			wg.Go(func() { connect.pats.Run(ctx) })
			if cfg.Storage.Type == "sqlite" {
				// One node: token checks answer revocations from memory
				// (docs/design.md#revocations-on-one-node).
				wg.Go(func() { records.RunRevocations(ctx, logger) })
			}
		})
	})
	b.trust = trust
	// The token endpoints are built once storage and the master key are
	// ready; until then their paths answer 503 with Retry-After.
	late := &server.Deferred{JSONAPIErrors: confluentPath}
	// Validate has already accepted these CIDRs.
	trustedProxies, err := clientip.ParsePrefixes(cfg.HTTP.TrustedProxies)
	if err != nil {
		return nil, fmt.Errorf("http.trusted_proxies: %w", err)
	}
	clientIPHeader, err := clientip.ParseHeader(cfg.HTTP.ClientIPHeader)
	if err != nil {
		return nil, fmt.Errorf("http.client_ip_header: %w", err)
	}
	so := server.Options{
		Store:             store,
		Logger:            logger,
		Metrics:           metrics,
		MaxBodyBytes:      cfg.HTTP.MaxBodyBytes,
		MaxHeaderBytes:    cfg.HTTP.MaxHeaderBytes,
		ReadHeaderTimeout: cfg.HTTP.ReadHeaderTimeout,
		ReadTimeout:       cfg.HTTP.ReadTimeout,
		WriteTimeout:      cfg.HTTP.WriteTimeout,
		IdleTimeout:       cfg.HTTP.IdleTimeout,
		ShutdownTimeout:   cfg.HTTP.ShutdownTimeout,
		TrustedProxies:    trustedProxies,
		ClientIPHeader:    clientIPHeader,
		TLS:               tlsConf,
		OpsListener:       a.ln.ops,
		Pprof:             cfg.Ops.Pprof,
		Checks:            b.checks(),
		GCInterval:        cfg.GC.Interval,
		Trace:             tr.middleware(),
		AuditRetention:    cfg.Audit.Retention,
		IssuerPath:        discovery.IssuerPath(cfg.Issuer),
		// Every answer, not only the pages': docs/security.md T-106, T-207.
		StrictTransportSecurity: strictTransport(cfg.Issuer),
		Mounters: []server.Mounter{
			&discovery.Handler{Issuer: cfg.Issuer, Keys: keys, Logger: logger, Supported: supported(true)},
			connect.handler,
			late,
		},
	}
	boundOptions(cfg, &so) // reliability.go
	srv := server.New(so)
	// The token endpoints need the digest pepper, which exists only once
	// storage and the master key are ready: they are built and mounted
	// then (at once on SQLite; when PostgreSQL comes up otherwise), behind
	// late.
	// What the first attempt built stays built: a retry after a later
	// step failed (the web pages' read of the organizations) does not
	// register the token endpoints' metrics again, which panicked and
	// ended the process, nor start a second host-token refresh loop
	// (docs/security.md F-99).
	var (
		built *tokenEndpoints
		ht    *hosttoken.Service
	)
	b.onKeys = append(b.onKeys, func(ctx context.Context, kr *seal.Keyring) error {
		// The pepper keys every bearer-secret digest (PATs, client
		// secrets, refresh tokens); it is read (on first start: created)
		// once and shared.
		var pep []byte
		err := startStep(ctx, cfg, func(ctx context.Context) (err error) {
			pep, err = pepper.Load(ctx, store, kr, time.Now())
			return err
		})
		if err != nil {
			return err
		}
		err = startStep(ctx, cfg, func(ctx context.Context) error {
			return connect.ready(ctx, records, store, pep, firstConfiguredOrg(cfg), logger)
		})
		if err != nil {
			return err
		}
		if built == nil {
			warnConfiguredInstanceAdmins(ctx, records, cfg.InstanceAdmins, logger)
			ep, err := newTokenEndpoints(cfg, records, keys, registry, logger, metrics.Registry(), connect.pats, pep)
			if err != nil {
				return err
			}
			built = ep
			obs.tokenEndpointsReady(ctx, ep)
			// gitpod.v1 ExchangeToken and GetIDToken audit through the token
			// endpoints' writer, in the same mode (docs/security.md D-18, D-11),
			// and GetIDToken and CreateExchangeToken take from the token
			// endpoints' buckets, in memory or in Redis; the API
			// answers only once both are in place.
			connect.handler.SetTokenAudit(ep.audit, cfg.Audit.Mode == config.AuditModeRequired)
			connect.handler.SetTokenLimits(ep.limits.token)
			if ep.limits.redis != nil {
				// ExchangeToken's per-IP bucket moves to Redis, one for every
				// replica (docs/security.md T-155).
				connect.handler.SetPublicLimit(ep.limits.public)
			}
			// A bearer failing at UserInfo or introspection takes the
			// same bucket, and is refused with the Connect API's
			// failures (docs/security.md T-248).
			ep.setFailedAuth(connect.handler.FailedAuth())
			connect.handler.Ready()
			ht = startHostTokens(ctx, wg, cfg, records, kr, connect.handler, ep.audit, integrations, logger, metrics.Registry())
		}
		ep := built
		var pages *web.Handler
		err = startStep(ctx, cfg, func(ctx context.Context) (err error) {
			pages, err = newWebPages(ctx, cfg, records, connect.pats, ht, newConsents(records, cfg.Keys.RevocationKeep()), pep, logger)
			return err
		})
		if err != nil {
			return err
		}
		var signedIn authorize.SignOuter = pages.SignedIn()
		if o.SignedIn != nil {
			signedIn = o.SignedIn
		}
		ep.addAuthCode(cfg, records, keys, pep, signedIn, logger)
		if err := ep.mount(late, pages); err != nil {
			return err
		}
		// A pool or provider changed through the API applies to this
		// node's token endpoint before the call returns; other replicas
		// and the CLI are seen at the registry's next refresh (5 s).
		connect.pools.SetOnChange(ep.registry.Refresh)
		wg.Go(func() { ep.run(ctx) })
		return nil
	})
	a.srv, a.b = srv, b
	return a, nil
}

// Run brings storage and the master key up (migrations, the trust
// configuration, on first start the master key and the first organization),
// listens and serves until ctx ends, then shuts down gracefully, closes
// storage and returns nil. It fails fast when SQLite cannot be brought up
// and keeps serving, not ready, while PostgreSQL is unreachable.
func (a *App) Run(ctx context.Context) (runErr error) {
	cfg, logger, b, wg := a.cfg, a.logger, a.b, &a.wg
	defer func() {
		// After storage is closed: a data directory this start made and
		// nothing was written to goes when the start fails (docs/security.md
		// F-78); one holding a database or a master key stays.
		if runErr != nil {
			removeEmptyDirs(a.madeDirs)
		}
	}()
	defer a.closeStore()     // reliability.go: bounded like the background loops
	defer a.flushTraces(ctx) // after the background loops stopped
	defer a.waitBackground() // reliability.go: bounded, then storage closes
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	a.ctx = ctx

	// Serve before the first attempt, not after it: its migrations may
	// rightly take long (a large table) or wait (another replica or `sts
	// migrate` holds the migration lock, up to 5 min), and /livez must
	// answer meanwhile, or a liveness probe restarts the process into the
	// same wait (docs/security.md F-102). /readyz says why it is not ready
	// and the token endpoints answer 503 with Retry-After until it is.
	ln := a.ln.public
	logger.InfoContext(ctx, "listening", "url", a.localURL(), "issuer", cfg.Issuer)
	if a.ln.ops != nil {
		logger.InfoContext(ctx, "ops listening", "url", "http://"+a.ln.ops.Addr().String(), "pprof", cfg.Ops.Pprof)
	}
	served := make(chan error, 1)
	go func() {
		served <- a.srv.Serve(ctx, ln)
		cancel() // a listener that failed ends the start too
	}()

	if err := b.init(ctx); err != nil && ctx.Err() == nil {
		var fatal error
		if perr := permanent(err); perr != err {
			fatal = perr
		} else if cfg.Storage.Type == sqlstore.DriverSQLite {
			fatal = fmt.Errorf("storage: %w", err)
		}
		if fatal != nil {
			// What retrying cannot fix, and any failure on SQLite, ends the
			// start: stop serving and return it.
			a.fatal.Store(&fatal)
			cancel()
		} else {
			logger.WarnContext(ctx, "storage not ready; serving anyway and retrying in the background", "error", err)
			// A permanent error met while retrying (the database dropped, the
			// role's password changed) ends Run with it.
			b.onPermanent = func(err error) {
				a.fatal.Store(&err)
				cancel()
			}
			wg.Go(func() { b.retry(ctx) })
		}
	}
	err := <-served
	cancel()
	a.ln.closeOwned()
	if p := a.fatal.Load(); p != nil {
		return *p
	}
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	logger.Info("stopped")
	return nil
}

// UsesDataDir reports whether anything lives in data_dir: the SQLite file
// (unless storage.path puts it elsewhere), or, when withKey, the default
// master key. A data directory nothing uses is not created.
func UsesDataDir(cfg config.Config, withKey bool) bool {
	defaultKey := withKey && cfg.MasterKey == "" && cfg.MasterKeyFile == ""
	return (cfg.Storage.Type == sqlstore.DriverSQLite && within(cfg.DataDir, cfg.Storage.Path)) || defaultKey
}

// within reports whether path is dir or lies below it.
func within(dir, path string) bool {
	d, err1 := filepath.Abs(dir)
	p, err2 := filepath.Abs(path)
	if err1 != nil || err2 != nil {
		return true // cannot tell: prepare the directory as before
	}
	rel, err := filepath.Rel(d, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

// OpenStorage opens the backend; for PostgreSQL it does not connect yet.
// What the backend reports outside a call's error goes to slog.Default().
func OpenStorage(ctx context.Context, cfg config.Config, onError func(string, error)) (*sqlstore.Store, error) {
	return openStorage(ctx, cfg, onError, nil)
}

func openStorage(ctx context.Context, cfg config.Config, onError func(string, error), logger *slog.Logger) (*sqlstore.Store, error) {
	dsn := cfg.Storage.DSN
	if cfg.Storage.Type == sqlstore.DriverSQLite {
		dsn = cfg.Storage.Path
	}
	store, err := sqlstore.Open(ctx, sqlstore.Config{Driver: cfg.Storage.Type, DSN: dsn, OnError: onError, Logger: logger,
		ConnectTimeout: cfg.Storage.CallTimeoutOrDefault(), StatementTimeout: cfg.Storage.StatementTimeoutOrDefault()})
	if err != nil {
		return nil, fmt.Errorf("storage: %w", err)
	}
	return store, nil
}

// LocalURL is a URL a person on this machine can open for a listen
// address; a wildcard host (":8080", "0.0.0.0:8080") becomes localhost.
func LocalURL(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "http://" + listen
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, port)
}
