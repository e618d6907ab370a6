package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/opensts/sts/internal/app"
)

func newMigrateCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "migrate",
		Short: "Apply pending database migrations",
		Long: `Apply every pending database migration and report the result. serve does
this on its own unless storage.auto_migrate is false; run migrate yourself when
it is, for example once per release before rolling out new replicas.`,
		Example: `  sts migrate
  STS_STORAGE_TYPE=postgres STS_STORAGE_DSN=postgres://sts@db/sts sts migrate`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(cmd)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			if app.UsesDataDir(cfg, false) {
				if err := app.PrepareDataDir(cfg.DataDir); err != nil {
					return err
				}
			}
			store, err := app.OpenStorage(ctx, cfg, nil)
			if err != nil {
				return err
			}
			defer store.Close()
			pending, err := store.MigrationsPending(ctx)
			if err != nil {
				return fmt.Errorf("storage: %w", err)
			}
			out := cmd.OutOrStdout()
			if !pending {
				fmt.Fprintf(out, "%s schema is current; nothing to apply\n", cfg.Storage.Type)
				return nil
			}
			if err := store.Migrate(ctx); err != nil {
				return fmt.Errorf("storage: %w", err)
			}
			fmt.Fprintf(out, "applied pending migrations; %s schema is current\n", cfg.Storage.Type)
			return nil
		},
	}
}
