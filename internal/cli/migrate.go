package cli

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/opensts/sts/internal/app"
	"github.com/opensts/sts/internal/storage/sqlstore"
)

func newMigrateCmd() *cobra.Command {
	cmd := &cobra.Command{
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
			out := cmd.ErrOrStderr()
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
	cmd.AddCommand(newMigrateStatusCmd())
	return cmd
}

func newMigrateStatusCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "List applied and pending database migrations",
		Long: `List every migration this binary carries and whether the configured storage
has applied it. Nothing is applied; the migration table is created if missing.`,
		Example: `  sts migrate status --config /etc/sts/sts.yaml`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(cmd)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			if err := requireDatabase(cfg); err != nil {
				return fmt.Errorf("storage: %w", err)
			}
			store, err := app.OpenStorage(ctx, cfg, nil)
			if err != nil {
				return err
			}
			defer store.Close()
			ms, err := store.MigrationStatus(ctx)
			if err != nil && !errors.Is(err, sqlstore.ErrSchemaNewer) {
				return fmt.Errorf("storage: %w", err)
			}
			// A newer release's schema: the list, then the refusal
			// (docs/security.md F-85).
			newer := err
			out := cmd.OutOrStdout()
			pending := 0
			fmt.Fprintf(out, "%-8s %-8s %-20s %s\n", "VERSION", "STATE", "APPLIED AT", "NAME")
			for _, m := range ms {
				state, at := "pending", "-"
				if m.Applied {
					state, at = "applied", m.AppliedAt.UTC().Format(time.RFC3339)
				} else {
					pending++
				}
				fmt.Fprintf(out, "%-8d %-8s %-20s %s\n", m.Version, state, at, m.Name)
			}
			fmt.Fprintf(out, "%s: %d applied, %d pending\n", cfg.Storage.Type, len(ms)-pending, pending)
			if newer != nil {
				return fmt.Errorf("storage: %w", newer)
			}
			return nil
		},
	}
}
