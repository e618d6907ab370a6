package cli

import (
	"context"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/opensts/sts/internal/api"
	"github.com/opensts/sts/internal/config"
	"github.com/opensts/sts/internal/storage/sqlstore"
)

func newOrgCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "org", Short: "Manage organizations (directly in storage)"}
	var name, tier string
	create := &cobra.Command{
		Use:     "create",
		Short:   "Create an organization and print its ID",
		Example: `  sts org create --name acme --tier enterprise`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withStore(cmd, func(_ context.Context, _ config.Config, store *sqlstore.Store) error {
				o, err := api.CreateOrganization(cmd.Context(), store, cliCaller, name, tier, time.Now())
				if err != nil {
					return err
				}
				fmt.Fprintln(cmd.OutOrStdout(), o.ID)
				return nil
			})
		},
	}
	create.Flags().StringVar(&name, "name", "", "name (required)")
	create.Flags().StringVar(&tier, "tier", api.DefaultTier, "tier, reported as organizationTier")
	_ = create.MarkFlagRequired("name")
	list := &cobra.Command{
		Use:   "list",
		Short: "List organizations",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withStore(cmd, func(_ context.Context, _ config.Config, store *sqlstore.Store) error {
				orgs, err := store.ListOrganizations(cmd.Context())
				if err != nil {
					return fmt.Errorf("storage: %w", err)
				}
				w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
				fmt.Fprintln(w, "ID\tNAME\tTIER")
				for _, o := range orgs {
					fmt.Fprintf(w, "%s\t%s\t%s\n", o.ID, o.Name, o.Tier)
				}
				return w.Flush()
			})
		},
	}
	cmd.AddCommand(create, list)
	return cmd
}
