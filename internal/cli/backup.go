package cli

import (
	"fmt"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/opensts/sts/internal/app"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/storage/sqlstore"
)

// actionBackup is the audit event sts backup records once the copy is
// made, in the copy and then in the database, so that a backup holds its
// own moment and sts restore knows it (docs/security.md D-20, D-23).
const actionBackup = "instance.backup"

// backupEvent is the instance.backup event of a backup to file: the
// actor, the time and the file's name, without its directory.
func backupEvent(file string, now time.Time) storage.AuditEvent {
	return storage.AuditEvent{
		ID: storage.NewID(), Time: storage.Now(now), Actor: cliCaller.Actor, Action: actionBackup,
		Target: "instance", Outcome: "success", Detail: "file=" + filepath.Base(file),
	}
}

func newBackupCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "backup FILE",
		Short: "Write a consistent copy of the SQLite database to FILE",
		Long: `Write a consistent copy of the SQLite database to FILE while the server keeps
running (SQLite's VACUUM INTO). FILE must not exist; it is created readable by
its owner only. The audit event instance.backup (FILE's name, not its
directory) is recorded in the copy and then in the database, so the backup
holds the time it was taken and sts restore can print it; a backup that fails
records it with outcome failure and leaves no file. The copy is useless without the master key, which it does not
contain: keep the key apart from the backups (docs/operations.md). Restore
it with sts restore, never by copying the file back.

PostgreSQL is backed up with pg_dump; see docs/operations.md.`,
		Example: `  sts backup /var/backups/sts/sts-$(date +%F).db --config /etc/sts/sts.yaml`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := loadConfig(cmd)
			if err != nil {
				return err
			}
			if cfg.Storage.Type != sqlstore.DriverSQLite {
				return sqlstore.ErrBackupUnsupported
			}
			// Opening a missing database would create an empty one and
			// back that up; say so instead.
			if err := requireDatabase(cfg); err != nil {
				return fmt.Errorf("backup: %w", err)
			}
			store, err := app.OpenStorage(cmd.Context(), cfg, nil)
			if err != nil {
				return err
			}
			defer store.Close()
			// Backup writes its event into the database: not into a newer
			// release's schema, which this binary does not write to; that
			// release takes the backup (docs/security.md F-85). An older
			// schema, with migrations pending, is backed up as it is.
			if _, err := store.MigrationsPending(cmd.Context()); err != nil {
				return fmt.Errorf("backup: %w", err)
			}
			if err := store.Backup(cmd.Context(), args[0], backupEvent(args[0], time.Now())); err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "backed up %s to %s\n", cfg.Storage.Path, args[0])
			return nil
		},
	}
}
