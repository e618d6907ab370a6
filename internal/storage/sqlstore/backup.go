package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"time"

	"github.com/pressly/goose/v3"

	"github.com/opensts/sts/internal/storage"
)

// ErrBackupUnsupported is returned by Backup on PostgreSQL, which is
// backed up with its own tools (pg_dump); see docs/operations.md.
var ErrBackupUnsupported = errors.New("backup is for SQLite only; back up PostgreSQL with pg_dump -Fc (docs/operations.md)")

// Backup writes a consistent copy of the SQLite database to file with
// VACUUM INTO, which reads inside one transaction, so writers may keep
// writing meanwhile. file must not exist; it is created with mode 0600
// because the copy holds everything the database does. ev, the backup's
// audit event, is appended once the copy is made, to the copy and then to
// the database, so the copy holds its own moment (docs/security.md D-20)
// and the trail says success only of a copy that exists; nothing is
// appended when file cannot be created, and a backup that fails after
// that (the copy, or either append) removes file and appends ev with
// outcome failure instead: one backup, one event, and no stored event
// edited (the trail is append-only, D-23).
func (s *Store) Backup(ctx context.Context, file string, ev storage.AuditEvent) error {
	if s.dialect != dialectSQLite {
		return ErrBackupUnsupported
	}
	// Absolute, so that VACUUM INTO never reads a name like "file:x" as a URI.
	file, err := filepath.Abs(file)
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	// Creating the file ourselves (O_EXCL) both refuses to overwrite and
	// fixes its mode; VACUUM INTO accepts an empty existing file.
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("backup: %s already exists; choose a new file", file)
		}
		return fmt.Errorf("backup: %w", err)
	}
	if err := f.Close(); err != nil {
		_ = os.Remove(file)
		return fmt.Errorf("backup: %w", err)
	}
	// A failure from here on removes the copy and records the failure.
	failed := func(err error) error {
		removeCopy(file)
		ev := ev
		ev.Outcome = "failure"
		if aerr := s.AppendAudit(context.WithoutCancel(ctx), ev); aerr != nil {
			return errors.Join(err, fmt.Errorf("backup: audit event: %w", aerr))
		}
		return err
	}
	if _, err := s.db.ExecContext(ctx, "VACUUM INTO ?", file); err != nil {
		return failed(s.fail("backup", err))
	}
	// The event goes into the copy first, then into the database: a copy
	// without its event is removed, and the database never records a
	// backup that is not there.
	if err := s.appendToCopy(ctx, file, ev); err != nil {
		return failed(fmt.Errorf("backup: audit event in the copy: %w", err))
	}
	if err := s.AppendAudit(ctx, ev); err != nil {
		return failed(fmt.Errorf("backup: audit event: %w", err))
	}
	if err := os.Chmod(file, 0o600); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	return nil
}

// sqliteURI is file as a SQLite file: URI with query: absolute and
// escaped, so a '?', '#' or '%' in its name is read as part of the name,
// not as the start of the query, a fragment or an escape.
func sqliteURI(file, query string) (string, error) {
	abs, err := filepath.Abs(file)
	if err != nil {
		return "", err
	}
	return "file:" + (&url.URL{Path: filepath.ToSlash(abs)}).EscapedPath() + "?" + query, nil
}

// appendToCopy appends ev to the audit table of the SQLite database at
// file, a copy this Store just made (same schema), on a connection of its
// own that is closed before returning, so no journal file stays beside it.
func (s *Store) appendToCopy(ctx context.Context, file string, ev storage.AuditEvent) error {
	uri, err := sqliteURI(file, "_pragma=busy_timeout(0)&_pragma=locking_mode(EXCLUSIVE)")
	if err != nil {
		return err
	}
	db, err := sql.Open("sqlite", uri)
	if err != nil {
		return err
	}
	_, err = db.ExecContext(ctx, sqliteAuditInsertRow, ev.ID, s.ts(ev.Time), ev.OrgID, ev.Actor, ev.Action, ev.Target,
		ev.RequestID, ev.Outcome, ev.Detail, ev.ClientIP, ev.UserAgent)
	return errors.Join(err, db.Close())
}

// removeCopy removes a copy and any journal SQLite left beside it.
func removeCopy(file string) {
	for _, f := range []string{file, file + "-journal", file + "-wal", file + "-shm"} {
		_ = os.Remove(f)
	}
}

// ErrDatabaseInUse is returned by CheckSQLiteUnused for a database file
// another connection (a running server, another command) has open.
var ErrDatabaseInUse = errors.New("the database is in use: stop every server (and command) that opens it first")

// CheckSQLiteUnused returns ErrDatabaseInUse when some connection, in
// this process or another, has the SQLite database at file open: it asks
// for SQLite's exclusive lock of the file without waiting, which every
// open WAL-mode connection (a server's idle pool included) holds off. A
// missing file is unused. It is a check, not a lock: a server started
// after it returns is not kept out (docs/operations.md "Restore").
func CheckSQLiteUnused(ctx context.Context, file string) error {
	if _, err := os.Stat(file); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	uri, err := sqliteURI(file, "_pragma=busy_timeout(0)&_pragma=locking_mode(EXCLUSIVE)")
	if err != nil {
		return fmt.Errorf("check %s: %w", file, err)
	}
	db, err := sql.Open("sqlite", uri)
	if err != nil {
		return fmt.Errorf("check %s: %w", file, err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, "BEGIN EXCLUSIVE; COMMIT"); err != nil {
		if waitedOut(err) {
			return fmt.Errorf("%s: %w", file, ErrDatabaseInUse)
		}
		return fmt.Errorf("check %s: %w", file, err)
	}
	return nil
}

// openBackup opens the SQLite backup at file read-only in truth:
// mode=ro alone still creates a -wal and -shm beside a WAL-mode file (a
// copy of a live database), and immutable=1 makes SQLite read the file
// as it is, with no locks and nothing written beside it. A restore's
// checks leave the backup as they found it.
func openBackup(file string) (*sql.DB, error) {
	uri, err := sqliteURI(file, "mode=ro&immutable=1")
	if err != nil {
		return nil, fmt.Errorf("backup %s: %w", file, err)
	}
	db, err := sql.Open("sqlite", uri)
	if err != nil {
		return nil, fmt.Errorf("backup %s: %w", file, err)
	}
	return db, nil
}

// CheckSQLiteBackup opens the SQLite file read-only and returns an error
// unless it passes SQLite's integrity check and holds an sts key set: a
// restore puts nothing else in place of the database.
func CheckSQLiteBackup(ctx context.Context, file string) error {
	if _, err := os.Stat(file); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	db, err := openBackup(file)
	if err != nil {
		return err
	}
	defer db.Close()
	var check string
	if err := db.QueryRowContext(ctx, "PRAGMA integrity_check").Scan(&check); err != nil {
		return fmt.Errorf("backup %s: not a readable SQLite database: %w", file, err)
	}
	if check != "ok" {
		return fmt.Errorf("backup %s: integrity check failed: %s", file, check)
	}
	var n int
	if err := db.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'signing_keys'").Scan(&n); err != nil || n != 1 {
		return fmt.Errorf("backup %s: not an sts database (no signing_keys table)", file)
	}
	// A backup of a newer release's schema is refused here, before the
	// current database moves, as Migrate would refuse it after
	// (docs/security.md F-85). The newest version the way goose reads
	// it: max(version_id) of every row.
	var version int64
	if err := db.QueryRowContext(ctx, "SELECT coalesce(max(version_id), 0) FROM "+migrationsTable).Scan(&version); err != nil {
		return fmt.Errorf("backup %s: not an sts database (schema version: %w)", file, err)
	}
	binary, err := binarySchemaVersion("migrations/sqlite")
	if err != nil {
		return fmt.Errorf("backup %s: %w", file, err)
	}
	if version > binary {
		return fmt.Errorf("backup %s: %w", file, &SchemaNewerError{Database: version, Binary: binary})
	}
	return nil
}

// SQLiteBackupSigningKeys reads the signing keys of the SQLite backup at
// file, read-only, with their IDs, states and the IDs of the master keys
// they are sealed under (no key material), so that sts restore can tell
// before it moves anything whether the configured master key opens the
// backup (docs/security.md F-84). Call [CheckSQLiteBackup] first.
func SQLiteBackupSigningKeys(ctx context.Context, file string) ([]storage.SigningKey, error) {
	db, err := openBackup(file)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	rows, err := db.QueryContext(ctx, "SELECT id, state, master_key_id FROM signing_keys ORDER BY id")
	if err != nil {
		return nil, fmt.Errorf("backup %s: signing keys: %w", file, err)
	}
	defer rows.Close()
	var out []storage.SigningKey
	for rows.Next() {
		var k storage.SigningKey
		var state string
		if err := rows.Scan(&k.ID, &state, &k.MasterKeyID); err != nil {
			return nil, fmt.Errorf("backup %s: signing keys: %w", file, err)
		}
		k.State = storage.KeyState(state)
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("backup %s: signing keys: %w", file, err)
	}
	return out, nil
}

// BackupSealing is which master keys a SQLite backup's secrets other than
// its signing keys are sealed under, by ID: Secrets for the server secrets
// (the digest pepper), HostTokens the number of host-token rows under
// each key.
type BackupSealing struct {
	Secrets    []string
	HostTokens map[string]int
}

// SQLiteBackupSealing reads, read-only, the master key IDs the SQLite
// backup at file seals its server secrets and host tokens under (no key
// material), so that sts restore can refuse before it moves anything a
// backup whose digest pepper the configured keyring cannot open
// (docs/security.md F-84). Call [CheckSQLiteBackup] first.
func SQLiteBackupSealing(ctx context.Context, file string) (BackupSealing, error) {
	db, err := openBackup(file)
	if err != nil {
		return BackupSealing{}, err
	}
	defer db.Close()
	out := BackupSealing{HostTokens: map[string]int{}}
	rows, err := db.QueryContext(ctx, "SELECT DISTINCT master_key_id FROM server_secrets ORDER BY 1")
	if err != nil {
		return BackupSealing{}, fmt.Errorf("backup %s: server secrets: %w", file, err)
	}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return BackupSealing{}, fmt.Errorf("backup %s: server secrets: %w", file, err)
		}
		out.Secrets = append(out.Secrets, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return BackupSealing{}, fmt.Errorf("backup %s: server secrets: %w", file, err)
	}
	rows, err = db.QueryContext(ctx, "SELECT master_key_id, count(*) FROM host_tokens GROUP BY master_key_id")
	if err != nil {
		return BackupSealing{}, fmt.Errorf("backup %s: host tokens: %w", file, err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var n int
		if err := rows.Scan(&id, &n); err != nil {
			return BackupSealing{}, fmt.Errorf("backup %s: host tokens: %w", file, err)
		}
		out.HostTokens[id] = n
	}
	if err := rows.Err(); err != nil {
		return BackupSealing{}, fmt.Errorf("backup %s: host tokens: %w", file, err)
	}
	return out, nil
}

// RestoreReset is the step after a restore from a backup
// (docs/operations.md "Restore", docs/security.md F-61, F-62). In one
// transaction it replaces the whole signing-key set with keys (the old
// set, as read inside the transaction, goes to check first, which may
// refuse), marks every refresh token not yet revoked as revoked, deletes
// every exchange token, authorization code, sign-in link and web session
// (one-time or revocable, their use or end after the backup is unknown),
// records the restore at now (MarkUsed refuses what may have been
// presented before it), and appends the audit event ev builds from the
// old set and those counts. Nothing changes unless all of it commits.
func (s *Store) RestoreReset(ctx context.Context, keys []storage.SigningKey, now time.Time, check func(old []storage.SigningKey) error,
	ev func(old []storage.SigningKey, n storage.RestoreCounts) storage.AuditEvent) error {
	const op = "restore reset"
	return s.inTx(ctx, op, func(tx *sql.Tx) error {
		var old []storage.SigningKey
		if err := s.updateSigningKeys(ctx, tx, func(o []storage.SigningKey) ([]storage.SigningKey, error) {
			if err := check(o); err != nil {
				return nil, err
			}
			old = o
			return keys, nil
		}); err != nil {
			return err
		}
		var n storage.RestoreCounts
		for _, st := range []struct {
			query string
			args  []any
			n     *int64
		}{
			{`UPDATE refresh_tokens SET revoked = $1 WHERE revoked = $2`, []any{true, false}, &n.RefreshTokens},
			{`DELETE FROM exchange_tokens`, nil, &n.ExchangeTokens},
			{`DELETE FROM auth_codes`, nil, &n.AuthCodes},
			{`DELETE FROM login_links`, nil, &n.LoginLinks},
			{`DELETE FROM web_sessions`, nil, &n.WebSessions},
			{`INSERT INTO restores (id, restored_at) VALUES ($1, $2)`, []any{storage.NewID(), s.ts(now)}, nil},
		} {
			res, err := tx.ExecContext(ctx, st.query, st.args...)
			if err != nil {
				return s.fail(op, err)
			}
			if st.n == nil {
				continue
			}
			if *st.n, err = res.RowsAffected(); err != nil {
				return s.fail(op, err)
			}
		}
		if err := s.appendAudit(ctx, tx, []storage.AuditEvent{ev(old, n)}); err != nil {
			return storage.EventNotStored{Err: s.fail(op, err)}
		}
		return nil
	})
}

// Migration is one embedded migration and whether the database has it.
type Migration struct {
	Version   int64
	Name      string // the file name, e.g. 00001_init.sql
	Applied   bool
	AppliedAt time.Time // zero when pending
}

// MigrationStatus lists every migration this binary embeds, oldest first,
// with whether the database has applied it. On a database whose schema is
// newer than this binary's it returns the list and a *SchemaNewerError.
// Like every goose call it creates the (empty) version table if it is
// missing.
func (s *Store) MigrationStatus(ctx context.Context) ([]Migration, error) {
	p, done, err := s.provider()
	if err != nil {
		return nil, fmt.Errorf("migration status: %w", err)
	}
	defer done()
	st, err := p.Status(ctx)
	if err != nil {
		return nil, s.fail("migration status", err)
	}
	out := make([]Migration, 0, len(st))
	for _, m := range st {
		out = append(out, Migration{
			Version:   m.Source.Version,
			Name:      path.Base(m.Source.Path),
			Applied:   m.State == goose.StateApplied,
			AppliedAt: m.AppliedAt,
		})
	}
	return out, s.checkNotNewer(ctx, p, "migration status")
}
