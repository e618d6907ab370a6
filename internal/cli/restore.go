package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/opensts/sts/internal/app"
	"github.com/opensts/sts/internal/config"
	"github.com/opensts/sts/internal/signer"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/storage/sqlstore"
)

// restoreActions are the audited decisions a restore cannot re-apply by
// itself: each withdrew or narrowed access after the backup was taken
// (docs/operations.md "Restore").
var restoreActions = []string{
	"pat.delete", "pat.regenerate", "pat.update",
	"client.rotate_secret", "client.secret_revoke", "client.update", "client.delete",
	"principal.disable", "principal.delete", "principal.instance_admin.revoke", "organization.delete",
	"pool.update", "pool.delete", "provider.update", "provider.delete",
	"host_token.delete", "runner_key.set", "runner_key.delete",
	"consent.revoke", "subject.revoke", "credential.revoke_leaked",
}

func newRestoreCmd() *cobra.Command {
	var after bool
	cmd := &cobra.Command{
		Use:   "restore BACKUP_FILE | restore --after [BACKUP_NAME]",
		Short: "Restore a backup; every signing key, refresh token and one-time credential of before is revoked",
		Long: `Restore the SQLite database from BACKUP_FILE (made by sts backup), with every
server stopped: restore refuses while anything has the database open. It
checks the backup, moves the current database (and its -wal and -shm files)
aside as <storage.path>.pre-restore-<time>, puts the backup in its place (mode
0600), applies pending migrations, and then, in the restored database and in
one transaction:

  - replaces every signing key with a new active and next key per algorithm,
    so that no key of the backup, revoked since or not, is published or
    trusted again, and no token signed before the restore verifies;
  - revokes every refresh token (they may have been used or revoked since);
  - deletes every exchange token, authorization code, sign-in link and web
    session (one-time or revocable: used or ended since, for all it knows);
  - records the restore's time: a one-time subject token (one_time_use
    providers) or client assertion issued before it, less the leeway, is
    refused as a replay, since the record of its use may be gone;
  - records the audit event instance.restore (the backup's name, its time
    from its instance.backup event, the time of its newest event, the kids,
    the counts; no secrets).

What the database cannot tell, restore cannot undo: PATs deleted or
regenerated, client secrets rotated, pools deleted and the like after the
backup are back. Re-apply them from the audit trail of the replaced database;
restore prints the commands (docs/operations.md "Restore").

PostgreSQL is restored with pg_restore; then run sts restore --after
[BACKUP_NAME] against the restored database, before any replica starts.`,
		Example: `  sts restore /var/backups/sts/sts-20260101T000000Z.db --config /etc/sts/sts.yaml
  sts restore --after sts-20260101T000000Z.dump --config /etc/sts/sts.yaml   # PostgreSQL, after pg_restore`,
		Args: func(cmd *cobra.Command, args []string) error {
			if after {
				return cobra.MaximumNArgs(1)(cmd, args)
			}
			return cobra.ExactArgs(1)(cmd, args)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := loadConfig(cmd)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			if after {
				name := ""
				if len(args) == 1 {
					name = args[0]
				}
				return afterRestore(ctx, cmd, cfg, name, "")
			}
			if cfg.Storage.Type != sqlstore.DriverSQLite {
				return errors.New("restore: PostgreSQL is restored with pg_restore (docs/operations.md); then run sts restore --after [BACKUP_NAME]")
			}
			return restoreSQLite(ctx, cmd, cfg, args[0])
		},
	}
	cmd.Flags().BoolVar(&after, "after", false, "only the step after a restore, in the configured database (PostgreSQL after pg_restore)")
	return cmd
}

// restoreSQLite puts the SQLite backup file in place of storage.path and
// runs afterRestore on it.
func restoreSQLite(ctx context.Context, cmd *cobra.Command, cfg config.Config, file string) error {
	// Nothing is touched unless the master key, the backup and the
	// stopped server all check out.
	kr, err := app.LoadConfiguredKey(cfg)
	if err != nil {
		return err
	} else if kr == nil {
		return errors.New("restore: master key: none configured and " + cfg.MasterKeyPath() + " does not exist; configure the key the backup was sealed under")
	}
	if err := sqlstore.CheckSQLiteBackup(ctx, file); err != nil {
		return err
	}
	// The key must open the backup before the current database moves: a
	// backup in place that nothing opens leaves the server sealed and the
	// operator putting the old files back by hand (docs/security.md F-84).
	if old, err := sqlstore.SQLiteBackupSigningKeys(ctx, file); err != nil {
		return err
	} else if err := signer.CheckRestoredKeys(old, kr); err != nil {
		return fmt.Errorf("restore: %w; nothing was changed: configure the master key the backup was sealed under (master_key_file, STS_MASTER_KEY, or previous_master_key_files if it was rotated since)", err)
	}
	// The digest pepper too: a server whose keyring does not open it
	// exits on start, as it would without its signing keys. Host tokens
	// under a key not configured only warn: sts keys rotate-master may
	// leave such rows behind on purpose, and each fails alone
	// (docs/security.md F-84).
	sealing, err := sqlstore.SQLiteBackupSealing(ctx, file)
	if err != nil {
		return err
	}
	for _, id := range sealing.Secrets {
		if !kr.Has(id) {
			return fmt.Errorf("restore: the backup's digest pepper is sealed under master key %s, which is not configured; nothing was changed: configure it (master_key_file, STS_MASTER_KEY, or previous_master_key_files if it was rotated since)", id)
		}
	}
	var unknown []string
	for id, n := range sealing.HostTokens {
		if !kr.Has(id) {
			unknown = append(unknown, fmt.Sprintf("%d under %s", n, id))
		}
	}
	if len(unknown) > 0 {
		slices.Sort(unknown)
		fmt.Fprintf(cmd.ErrOrStderr(), "warning: host tokens of the backup sealed under a master key that is not configured cannot be read until it is (previous_master_key_files): %s\n", strings.Join(unknown, ", "))
	}
	path := cfg.Storage.Path
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	if err := sqlstore.CheckSQLiteUnused(ctx, path); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	tmp := path + ".restoring"
	if err := copyFile0600(file, tmp); errors.Is(err, fs.ErrExist) {
		// Left by a restore that did not finish, or made by one running
		// now: never the live database, which moves only once the copy
		// is whole. It is not removed here, since it may be that other
		// restore's.
		return fmt.Errorf("restore: %s exists: it is the copy of a backup made by an sts restore that did not finish (or by another sts restore running now), never the live database; nothing was changed: if no other sts restore is running, delete it and run sts restore again", tmp)
	} else if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	aside := path + ".pre-restore-" + time.Now().UTC().Format("20060102T150405Z")
	var moved []string
	for _, suffix := range []string{"", "-wal", "-shm"} {
		if _, err := os.Stat(path + suffix); err != nil {
			continue
		}
		if err := os.Rename(path+suffix, aside+suffix); err != nil {
			_ = os.Remove(tmp)
			return fmt.Errorf("restore: move the current database aside: %w (moved so far: %v)", err, moved)
		}
		moved = append(moved, aside+suffix)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("restore: %w (the current database is at %s)", err, aside)
	}
	syncDir(filepath.Dir(path))
	w := cmd.ErrOrStderr()
	fmt.Fprintf(w, "restored %s to %s\n", file, path)
	if len(moved) > 0 {
		fmt.Fprintf(w, "the replaced database is kept as %s\n", aside)
	} else {
		aside = ""
	}
	if err := afterRestore(ctx, cmd, cfg, filepath.Base(file), aside); err != nil {
		return fmt.Errorf("%w\nthe backup is in place but its keys, refresh tokens and one-time credentials were NOT revoked: do not start the server; fix this, then run sts restore --after %s", err, filepath.Base(file))
	}
	return nil
}

// afterRestore is the step after a restore (docs/security.md F-61, F-62),
// in the configured database: every signing key replaced, every refresh
// token revoked, every one-time credential ended and the restore's time
// recorded, one audit event, one transaction. aside names the
// replaced SQLite database ("" if none) for the printed runbook.
func afterRestore(ctx context.Context, cmd *cobra.Command, cfg config.Config, backup, aside string) error {
	kr, err := app.LoadConfiguredKey(cfg)
	if err != nil {
		return err
	}
	if kr == nil {
		return errors.New("master key: none configured and " + cfg.MasterKeyPath() + " does not exist")
	}
	// --after works on a restored database; it must not create one.
	if err := requireDatabase(cfg); err != nil {
		return fmt.Errorf("storage: %w", err)
	}
	store, err := app.OpenStorage(ctx, cfg, nil)
	if err != nil {
		return err
	}
	defer store.Close()
	if cfg.Storage.AutoMigrate {
		if err := store.Migrate(ctx); err != nil {
			return err
		}
	} else if err := store.Health(ctx); err != nil {
		return fmt.Errorf("storage: %w (storage.auto_migrate is false: run sts migrate first)", err)
	}
	// The backup's moment: its own instance.backup event when sts backup
	// wrote one (docs/security.md D-20), and the newest event it holds.
	var taken, newest time.Time
	if evs, err := store.ListAudit(ctx, storage.AuditFilter{Action: actionBackup, Outcome: "success", Limit: 1}); err != nil {
		return err
	} else if len(evs) == 1 {
		taken = evs[0].Time
	}
	if evs, err := store.ListAudit(ctx, storage.AuditFilter{Limit: 1}); err != nil {
		return err
	} else if len(evs) == 1 {
		newest = evs[0].Time
	}
	now := time.Now()
	fresh, err := signer.FreshKeySet(app.SignerConfig(cfg), kr, now, cfg.Keys.ExtraAlgorithms...)
	if err != nil {
		return err
	}
	var old []storage.SigningKey
	var ended storage.RestoreCounts
	err = store.RestoreReset(ctx, fresh, now,
		func(o []storage.SigningKey) error { return signer.CheckRestoredKeys(o, kr) },
		func(o []storage.SigningKey, n storage.RestoreCounts) storage.AuditEvent {
			old, ended = o, n
			return signer.RestoreEvent(cliCaller.Actor, backup, taken, newest, o, fresh, n, now)
		})
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	w := cmd.ErrOrStderr()
	kids := func(ks []storage.SigningKey, state storage.KeyState) string {
		var s []string
		for _, k := range ks {
			if state == "" || k.State == state {
				s = append(s, k.ID)
			}
		}
		return strings.Join(s, ", ")
	}
	fmt.Fprintf(w, "revoked every signing key of the backup (%d: %s); every token signed before the restore fails verification\n", len(old), kids(old, ""))
	fmt.Fprintf(w, "new active key(s): %s\n", kids(fresh, storage.KeyActive))
	fmt.Fprintf(w, "revoked %d refresh token(s): their holders sign in again\n", ended.RefreshTokens)
	fmt.Fprintf(w, "ended %d exchange token(s), %d authorization code(s), %d sign-in link(s) and %d web session(s): people sign in again\n",
		ended.ExchangeTokens, ended.AuthCodes, ended.LoginLinks, ended.WebSessions)
	fmt.Fprintf(w, "one-time subject tokens and client assertions issued before the restore (less %s of leeway) are refused as replays: workloads fetch fresh ones\n",
		cfg.Keys.Leeway)
	printRestoreRunbook(w, taken, newest, aside)
	return nil
}

// printRestoreRunbook prints how to find the decisions made after the
// backup, which the restore undid and the operator must re-apply: from
// the later of the backup's own time (taken) and its newest event, both
// zero when unknown.
func printRestoreRunbook(w io.Writer, taken, newest time.Time, aside string) {
	since := "<the backup's time>"
	if !taken.IsZero() {
		fmt.Fprintf(w, "backup taken at %s\n", taken.UTC().Format(time.RFC3339))
	}
	if !newest.IsZero() {
		fmt.Fprintf(w, "newest audit event in the backup: %s\n", newest.UTC().Format(time.RFC3339))
	}
	from := taken
	if newest.After(from) {
		from = newest
	}
	if !from.IsZero() {
		// A minute of margin: an event is timed before its transaction
		// commits, so one committed after the backup's copy may be a
		// little older than the backup's moment.
		since = from.Add(-time.Minute).UTC().Format(time.RFC3339)
	}
	fmt.Fprintln(w, "undone by the restore, to re-apply by hand (docs/operations.md \"Restore\"); list them with:")
	env := ""
	if aside != "" {
		env = "STS_STORAGE_PATH=" + aside + " "
	} else {
		fmt.Fprintln(w, "  (in the audit trail of the replaced database or its export)")
	}
	fmt.Fprintf(w, "  for a in %s; do\n    %ssts audit list --since %s --action \"$a\"\n  done\n",
		strings.Join(restoreActions, " "), env, since)
}

// copyFile0600 copies src to a new file dst (which must not exist) with
// mode 0600, synced to disk.
func copyFile0600(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		_ = os.Remove(dst)
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		_ = os.Remove(dst)
		return err
	}
	if err := out.Close(); err != nil {
		_ = os.Remove(dst)
		return err
	}
	return os.Chmod(dst, 0o600)
}

// syncDir makes the renames in dir durable (best effort).
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}
