package cli

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/opensts/sts/internal/app"
	"github.com/opensts/sts/internal/storage/sqlstore"
)

func newBackupCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "backup FILE",
		Short: "Write a consistent copy of the SQLite database to FILE",
		Long: `Write a consistent copy of the SQLite database to FILE while the server keeps
running (SQLite's VACUUM INTO). FILE must not exist; it is created readable by
its owner only. The copy is useless without the master key, which it does not
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
			if _, err := os.Stat(cfg.Storage.Path); err != nil {
				if errors.Is(err, os.ErrNotExist) {
					return fmt.Errorf("backup: no database at %s (check storage.path or --data-dir)", cfg.Storage.Path)
				}
				return fmt.Errorf("backup: %w", err)
			}
			store, err := app.OpenStorage(cmd.Context(), cfg, nil)
			if err != nil {
				return err
			}
			defer store.Close()
			if err := store.Backup(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "backed up %s to %s\n", cfg.Storage.Path, args[0])
			return nil
		},
	}
}
