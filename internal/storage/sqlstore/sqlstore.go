package sqlstore

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite" // registers driver "sqlite"

	"github.com/opensts/sts/internal/storage"
)

// Drivers accepted in Config.Driver.
const (
	DriverSQLite   = "sqlite"
	DriverPostgres = "postgres"
)

// Config selects and opens a backend.
type Config struct {
	// Driver is DriverSQLite or DriverPostgres.
	Driver string
	// DSN is, for SQLite, a file path or ":memory:"; for PostgreSQL, a
	// connection string pgx understands.
	DSN string
	// OnError, when set, is called for every backend error that is not
	// storage.ErrNotFound, storage.ErrAlreadyExists or context.Canceled, with
	// a short constant op name ("get pat"), so the server can count storage
	// errors without this package importing a metrics library.
	OnError func(op string, err error)
	// ConnectTimeout is PostgreSQL's connect_timeout (when the DSN does not
	// set one): opening a connection to a black-holed server fails after
	// this long even without a context deadline. 0 leaves pgx's default.
	// For SQLite it is busy_timeout, how long a statement waits behind
	// another connection's lock (5 s when 0).
	ConnectTimeout time.Duration
	// StatementTimeout is set as statement_timeout on every PostgreSQL
	// connection (when the DSN does not set it): the server ends longer
	// statements, lock waits included. 0 leaves the server's default.
	StatementTimeout time.Duration
	// MaxConns is how many requests may use storage at once, the
	// listener's concurrency: PostgreSQL keeps that many connections open
	// and idle between bursts, SQLite at most four per core of them
	// (sqliteConns), so that no burst closes and reopens connections
	// (TestSQLitePoolHoldsConcurrency). 0 means DefaultMaxConns.
	MaxConns int
	// Logger receives what the backend reports outside a call's error (a
	// PostgreSQL setting the server refused); slog.Default() when nil.
	Logger *slog.Logger
	// GCBatch is how many rows one statement of GarbageCollect deletes
	// (DefaultGCBatch when 0): smaller batches commit more often, so a
	// collection cut off by its deadline keeps more of its work.
	GCBatch int
}

// Store implements storage.Store on database/sql.
type Store struct {
	db      *sql.DB
	dialect dialect
	// migrateConfig is how migrations connect to PostgreSQL (nil for
	// SQLite): the pool's own configuration without statement_timeout.
	// That bound is for requests; a migration building an index over a
	// large table may rightly take longer (docs/reliability.md, "Bounded
	// storage calls").
	migrateConfig *pgx.ConnConfig
	onError       func(op string, err error)
	// gcBatch is how many rows one statement of GarbageCollect deletes.
	gcBatch int
	// fullAt is when a write last failed for lack of space (ErrFull:
	// SQLITE_FULL, ENOSPC, SQLSTATE 53100), probedAt when the last
	// ProbeWrite began (unix nanoseconds; 0: never). A probe fails with
	// ErrFull when a write failed so since the previous probe began,
	// though its own small commit succeeds: on a full disk the probe's
	// row, rewritten in place, still fits (in WAL space a checkpoint
	// freed, in its page's free space) while writes that need new space
	// fail. The fault harness saw /readyz answer ready for 10 s on a full
	// file system (SQLite) and a full tablespace (PostgreSQL) while every
	// create failed (docs/reliability.md#write-path-readiness).
	fullAt, probedAt atomic.Int64
	// file is the SQLite data file, dir its directory ("" for PostgreSQL
	// and ":memory:"): ProbeWrite asks its file system why a write failed
	// and checks the files against the process's file size limit.
	file, dir string
	// current is set once the schema was seen to have no pending migration;
	// the schema never goes back, so Health stops asking goose after that.
	current atomic.Bool
	// stmts holds the prepared hot queries (see prepared), by SQL text.
	stmts sync.Map
	// rollbackTimeout bounds the rollback of a failed transaction
	// whatever the caller's context allows (see inTx).
	rollbackTimeout time.Duration
}

var _ storage.Store = (*Store)(nil)

type dialect int

const (
	dialectSQLite dialect = iota
	dialectPostgres
)

// sqlitePragmas are applied by the driver to every pooled connection.
// WAL with synchronous=FULL makes every acknowledged commit durable across a
// crash or power loss (docs/security.md D-01); _txlock=immediate makes write
// transactions take the write lock at BEGIN, so two Update* calls serialize
// instead of both reading and then failing to upgrade their lock.
//
// busy_timeout is how long a statement waits for another connection's
// lock. The driver does not end that wait when the context does, so it is
// the bound of a write behind a stuck writer: sqlitePragmas(d) sets it to
// the request's storage deadline (docs/reliability.md).
func sqlitePragmas(busy time.Duration) string {
	if busy <= 0 {
		busy = defaultBusyTimeout
	}
	return "_pragma=busy_timeout(" + strconv.FormatInt(busy.Milliseconds(), 10) + ")&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)" +
		"&_pragma=foreign_keys(1)&_txlock=immediate&_pragma=cache_size(-" + sqliteCacheKiBText + ")"
}

// defaultBusyTimeout is SQLite's busy_timeout when Config.ConnectTimeout is 0.
const defaultBusyTimeout = 5 * time.Second

// sqliteCacheKiB bounds each connection's page cache (SQLite's default is
// 2 MiB): with DefaultMaxConns connections kept open (before the pool was
// bounded, sqliteConns), the default let SQLite's caches, outside the Go
// heap and its memory limit, take the process past its RSS budget (76 MiB
// peak under load; docs/performance.md "Memory policy"). The hot rows are
// few and the OS caches the file.
const (
	sqliteCacheKiB     = 256
	sqliteCacheKiBText = "256"
)

// Open opens the backend. For PostgreSQL it does not contact the server
// (database/sql connects lazily), so the server can start, retry Migrate
// with backoff and report not-ready meanwhile. For SQLite it creates the
// data file's directory and fails at once when the file cannot be written.
// Open does not migrate; call Migrate.
func Open(ctx context.Context, c Config) (*Store, error) {
	s := &Store{onError: c.OnError, rollbackTimeout: cmp.Or(c.ConnectTimeout, defaultRollbackTimeout), gcBatch: cmp.Or(c.GCBatch, DefaultGCBatch)}
	if s.rollbackTimeout < 0 {
		s.rollbackTimeout = defaultRollbackTimeout
	}
	var err error
	switch c.Driver {
	case DriverSQLite:
		s.dialect = dialectSQLite
		s.db, err = openSQLite(ctx, c.DSN, c.ConnectTimeout, cmp.Or(c.MaxConns, DefaultMaxConns))
		if c.DSN != ":memory:" {
			if abs, aerr := filepath.Abs(c.DSN); aerr == nil {
				s.file, s.dir = abs, filepath.Dir(abs)
			}
		}
	case DriverPostgres:
		s.dialect = dialectPostgres
		s.db, s.migrateConfig, err = openPostgres(c.DSN, c.ConnectTimeout, c.StatementTimeout, cmp.Or(c.MaxConns, DefaultMaxConns), c.Logger)
	default:
		return nil, fmt.Errorf("sqlstore: unknown driver %q (want %q or %q)", c.Driver, DriverSQLite, DriverPostgres)
	}
	if err != nil {
		return nil, err
	}
	return s, nil
}

// openPostgres opens the pool, and returns with it the configuration
// migrations connect with: the same, with statement_timeout off.
func openPostgres(dsn string, connectTimeout, statementTimeout time.Duration, maxConns int, logger *slog.Logger) (*sql.DB, *pgx.ConnConfig, error) {
	if dsn == "" {
		return nil, nil, errors.New("sqlstore: postgres DSN is empty")
	}
	// ParseConfig reads the DSN (URL or keyword/value) without connecting;
	// OpenDB connects lazily. A DSN that does not parse stops start-up
	// (see Permanent).
	cc, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, nil, ErrBadDSN // not err: it may repeat the DSN, password and all
	}
	// A timeout the DSN names wins; otherwise the configured bounds apply
	// (docs/reliability.md, "Bounded storage calls").
	if connectTimeout > 0 && !dsnSets(dsn, "connect_timeout") {
		cc.ConnectTimeout = connectTimeout
	}
	mc := cc.Copy()
	mc.RuntimeParams["statement_timeout"] = "0" // even the DSN's or the role's
	if !namesParam(cc, "statement_timeout") && statementTimeout > 0 {
		cc.RuntimeParams["statement_timeout"] = strconv.FormatInt(statementTimeout.Milliseconds(), 10)
	}
	idle, check := vanishedClientBounds(connectTimeout)
	if !namesParam(cc, "idle_in_transaction_session_timeout") {
		cc.RuntimeParams["idle_in_transaction_session_timeout"] = strconv.FormatInt(idle.Milliseconds(), 10)
	}
	var opts []stdlib.OptionOpenDB
	if !namesParam(cc, "client_connection_check_interval") {
		cs := &connectionCheck{every: check, logger: cmp.Or(logger, slog.Default())}
		opts = append(opts, stdlib.OptionAfterConnect(func(ctx context.Context, conn *pgx.Conn) error {
			return cs.set(ctx, conn.PgConn().ParameterStatus("server_version"), func(ctx context.Context, sql string) error {
				_, err := conn.Exec(ctx, sql)
				return err
			})
		}))
	}
	db := stdlib.OpenDB(*cc, opts...)
	// Every open connection may stay idle: a new PostgreSQL connection is
	// a new server process, and closing the ones above an idle limit after
	// each burst took introspection under load (32 connections) from 0.77
	// to 0.45 of the bare handler's throughput and p99 from 17 to 74 ms
	// (docs/performance.md). 32 per replica (the default) stays well inside
	// the default max_connections of 100 for a few replicas.
	db.SetMaxOpenConns(maxConns)
	db.SetMaxIdleConns(maxConns)
	db.SetConnMaxIdleTime(5 * time.Minute)
	db.SetConnMaxLifetime(30 * time.Minute)
	return db, mc, nil
}

// namesParam reports whether the DSN sets the session parameter name,
// as a keyword or in options ("-c name=value", "-cname=value",
// "--name=value"; a dash in the name stands for an underscore, as the
// server reads it). A value set in options would be replaced by the
// pool's own, sent as a startup parameter (which the server applies after
// options) or SET after connect: the DSN's wins (docs/configuration.md).
func namesParam(cc *pgx.ConnConfig, name string) bool {
	if _, ok := cc.RuntimeParams[name]; ok {
		return true
	}
	args := optionArgs(cc.RuntimeParams["options"])
	for i := 0; i < len(args); i++ {
		var setting string
		switch a := args[i]; {
		case a == "-c" && i+1 < len(args):
			i++
			setting = args[i]
		case strings.HasPrefix(a, "--"):
			setting = a[2:]
		case strings.HasPrefix(a, "-c"):
			setting = a[2:]
		default:
			continue
		}
		k, _, _ := strings.Cut(setting, "=")
		if strings.EqualFold(strings.ReplaceAll(k, "-", "_"), name) {
			return true
		}
	}
	return false
}

// optionArgs splits options as the server does: at whitespace, a
// backslash taking the next character as it is.
func optionArgs(options string) []string {
	var args []string
	var cur strings.Builder
	in, escaped := false, false
	for _, r := range options {
		switch {
		case escaped:
			cur.WriteRune(r)
			escaped = false
		case r == '\\':
			escaped, in = true, true
		case r == ' ' || r == '\t' || r == '\n' || r == '\r' || r == '\f' || r == '\v':
			if in {
				args = append(args, cur.String())
				cur.Reset()
				in = false
			}
		default:
			cur.WriteRune(r)
			in = true
		}
	}
	if in {
		args = append(args, cur.String())
	}
	return args
}

// vanishedClientBounds returns how long a PostgreSQL session may stay idle
// in a transaction (idle_in_transaction_session_timeout) and how often the
// server checks, while a statement runs, that its client is still
// connected (client_connection_check_interval), from storage.call_timeout
// (5 s when 0). A client that vanished mid-transaction (a partition, a
// crashed replica, a rollback cut off by inTx) otherwise left its session
// holding its row locks until TCP noticed, and every request needing those
// rows failed meanwhile (docs/security.md F-91). No request of sts keeps a
// transaction open past its deadline, the call timeout, so twice that
// never ends a live one; a background job's transaction runs its
// statements back to back.
func vanishedClientBounds(callTimeout time.Duration) (idle, check time.Duration) {
	if callTimeout <= 0 {
		callTimeout = defaultRollbackTimeout
	}
	return 2 * callTimeout, max(callTimeout/5, 100*time.Millisecond)
}

// connectionCheck sets client_connection_check_interval on each new
// connection, on PostgreSQL 14 and later: an older server refuses the
// parameter, and would refuse the connection if it came in the startup
// message, as statement_timeout does.
type connectionCheck struct {
	every  time.Duration
	logger *slog.Logger
	warned atomic.Bool
}

// set runs the SET through exec on a server of serverVersion. A server
// that refuses the value keeps the connection, without the check: where
// it cannot tell that a socket closed (Windows; 14 without POLLRDHUP) it
// accepts only 0, and failing the connection there failed every one of
// them. The first refusal is logged (docs/security.md F-91). Any other
// error (the connection failed) fails the connection.
func (c *connectionCheck) set(ctx context.Context, serverVersion string, exec func(context.Context, string) error) error {
	major, _, _ := strings.Cut(serverVersion, ".")
	if n, err := strconv.Atoi(strings.TrimSpace(major)); err != nil || n < 14 {
		return nil
	}
	err := exec(ctx, "SET client_connection_check_interval = "+strconv.FormatInt(c.every.Milliseconds(), 10))
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return err
	}
	if !c.warned.Swap(true) {
		c.logger.WarnContext(ctx, "PostgreSQL refused client_connection_check_interval; connections go without it, so a statement whose client vanished runs until it ends (docs/security.md F-91)",
			"error", pgErr.Error(), "detail", pgErr.Detail)
	}
	return nil
}

// DefaultMaxConns is the concurrency the connection pool is sized for when
// Config.MaxConns is 0: the load generator's and the listener's 32
// concurrent requests (docs/performance.md).
const DefaultMaxConns = 32

// sqliteConns is how many connections the SQLite pool holds: four per
// core, at most maxConns. Reads run concurrently under WAL, but each is
// CPU work in this process, so connections beyond what the cores can run
// buy no throughput; and every connection keeps memory outside the Go heap
// and the runtime's memory limit: 0.2 MiB once open, about 0.6 MiB once it
// has read enough to fill its page cache (TestSQLitePoolMemory, with
// modernc's allocator counters; docs/performance.md "Memory policy"). A
// pool without a bound kept one connection per concurrent storage call, up
// to maxConns, and 45 MiB for 32 of them in that test.
//
// A bounded pool needs every storage call to hold at most one connection
// at a time (no query inside a transaction or a rows loop asks the pool for
// another), or calls waiting for a second connection could take them all;
// TestSQLiteOneConnection runs the conformance suites on one connection.
func sqliteConns(maxConns int) int {
	return max(1, min(maxConns, 4*runtime.GOMAXPROCS(0)))
}

func openSQLite(ctx context.Context, path string, busy time.Duration, maxConns int) (*sql.DB, error) {
	if path == "" {
		return nil, errors.New("sqlstore: sqlite path is empty")
	}
	var dsn string
	if path == ":memory:" {
		dsn = ":memory:?" + sqlitePragmas(busy)
	} else {
		abs, err := filepath.Abs(path)
		if err != nil {
			return nil, fmt.Errorf("sqlstore: sqlite path %q: %w", path, err)
		}
		if err := prepareSQLiteFile(abs); err != nil {
			return nil, err
		}
		if dsn, err = sqliteURI(abs, sqlitePragmas(busy)); err != nil {
			return nil, fmt.Errorf("sqlstore: sqlite path %q: %w", path, err)
		}
	}
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: open sqlite %s: %w", path, err)
	}
	if path == ":memory:" {
		// Every connection to ":memory:" is its own empty database.
		db.SetMaxOpenConns(1)
		db.SetConnMaxIdleTime(0)
		db.SetConnMaxLifetime(0)
	} else {
		// Opening a connection runs the pragmas and parses the schema:
		// with database/sql's default of 2 idle connections, concurrent
		// requests opened and closed one each, which cost a seventh of the
		// CPU of an introspection under load (docs/performance.md). So
		// every connection the pool may open may also stay idle (with
		// fewer idle than open, every burst closed the difference and
		// reopened it on the next), and the pool is bounded (sqliteConns).
		n := sqliteConns(maxConns)
		db.SetMaxOpenConns(n)
		db.SetMaxIdleConns(n)
		db.SetConnMaxIdleTime(5 * time.Minute)
	}
	if err := checkSQLite(ctx, db, path == ":memory:"); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlstore: open sqlite %s: %w", path, err)
	}
	return db, nil
}

// prepareSQLiteFile creates the data directory (0700) and the data file
// (0600; SQLite gives the -wal and -shm files the same mode), and checks that
// the directory is writable: SQLite creates the WAL beside the file, and a
// read-only directory would otherwise fail only at the first write.
func prepareSQLiteFile(abs string) error {
	dir := filepath.Dir(abs)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("sqlstore: create data directory: %w", err)
	}
	probe, err := os.CreateTemp(dir, ".sts-write-probe-*")
	if err != nil {
		return fmt.Errorf("sqlstore: data directory %s is not writable: %w", dir, err)
	}
	probe.Close()
	os.Remove(probe.Name())
	f, err := os.OpenFile(abs, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("sqlstore: data file %s is not writable: %w", abs, err)
	}
	return f.Close()
}

// checkSQLite opens a connection (running the pragmas) and verifies the
// durability settings took effect (docs/security.md D-01): journal_mode silently
// stays at its old value on file systems where WAL is impossible.
func checkSQLite(ctx context.Context, db *sql.DB, memory bool) error {
	var mode string
	if err := db.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		return err
	}
	if !memory && !strings.EqualFold(mode, "wal") {
		return fmt.Errorf("journal_mode is %q, want wal", mode)
	}
	var sync int
	if err := db.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&sync); err != nil {
		return err
	}
	if sync != 2 { // FULL
		return fmt.Errorf("synchronous is %d, want 2 (FULL)", sync)
	}
	return nil
}

// Close closes the database.
func (s *Store) Close() error {
	s.stmts.Range(func(_, st any) bool {
		_ = st.(*sql.Stmt).Close()
		return true
	})
	return s.db.Close()
}

// DB returns the underlying handle, for tests and operational tooling.
func (s *Store) DB() *sql.DB { return s.db }

// Health reports nil when the database answers a ping and no migration is
// pending.
func (s *Store) Health(ctx context.Context) error {
	if err := s.db.PingContext(ctx); err != nil {
		return s.fail("health ping", err)
	}
	if s.current.Load() {
		return nil
	}
	pending, err := s.MigrationsPending(ctx)
	if err != nil {
		return err
	}
	if pending {
		return errors.New("health: database schema has pending migrations")
	}
	return nil
}

// forUpdate ends the SELECT of an Update*: PostgreSQL locks the row until
// commit; SQLite has no row locks and needs none, because its write
// transactions begin IMMEDIATE and so already hold the database write lock.
func (s *Store) forUpdate() string {
	if s.dialect == dialectPostgres {
		return " FOR UPDATE"
	}
	return ""
}

// forShare ends the SELECT of a Tx.Lock*: PostgreSQL holds the row
// against UPDATE and DELETE until commit, but not against another
// share; SQLite needs none, as for forUpdate.
func (s *Store) forShare() string {
	if s.dialect == dialectPostgres {
		return " FOR SHARE"
	}
	return ""
}

// inTx runs f in a transaction and commits unless f fails. Errors from f are
// returned as they are: f translates backend errors itself (with s.fail) and
// must pass updater errors through untouched.
//
// On PostgreSQL the transaction is READ COMMITTED whatever the server's,
// database's or role's default_transaction_isolation: the writes here
// rely on each statement reading what committed before it (a disable's
// DELETE of the sessions a sign-in stored after the transaction's first
// statement, docs/security.md A-74; UpdateSigningKeys' waiter), which a repeatable
// read snapshot taken earlier would not see. Set on the BEGIN, it holds
// through a connection pooler that drops startup parameters.
func (s *Store) inTx(ctx context.Context, op string, f func(tx *sql.Tx) error) error {
	var opts *sql.TxOptions
	if s.dialect == dialectPostgres {
		opts = &sql.TxOptions{Isolation: sql.LevelReadCommitted}
	}
	// The driver runs COMMIT and ROLLBACK under the context BeginTx was
	// given: txCtx, which rollback may end early.
	txCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	tx, err := s.db.BeginTx(txCtx, opts)
	if err != nil {
		return s.fail(op, err)
	}
	if err := f(tx); err != nil {
		s.rollback(tx, cancel)
		return err
	}
	if err := tx.Commit(); err != nil {
		return s.fail(op, err)
	}
	return nil
}

// defaultRollbackTimeout bounds a rollback when Config.ConnectTimeout is 0.
const defaultRollbackTimeout = 5 * time.Second

// rollback rolls tx back, giving up after s.rollbackTimeout by ending the
// context tx began with (cancel) even when the caller's has no deadline,
// as a background job's has none (docs/security.md F-90). On a database
// that stopped answering between the transaction's last statement and its
// rollback, the ROLLBACK otherwise waited until TCP gave up, holding the
// goroutine and a pool connection. A rollback cut off leaves the
// connection closed (pgx closes it), so the pool drops it; the server ends
// the transaction itself (idle_in_transaction_session_timeout).
func (s *Store) rollback(tx *sql.Tx, cancel context.CancelFunc) {
	t := time.AfterFunc(s.rollbackTimeout, cancel)
	defer t.Stop()
	_ = tx.Rollback()
}

// dsnSets reports whether a PostgreSQL DSN (URL or keyword/value) names
// the parameter key.
func dsnSets(dsn, key string) bool {
	if u, err := url.Parse(dsn); err == nil && u.Scheme != "" {
		return u.Query().Has(key)
	}
	for _, f := range strings.Fields(dsn) {
		if k, _, ok := strings.Cut(f, "="); ok && strings.TrimSpace(k) == key {
			return true
		}
	}
	return false
}
