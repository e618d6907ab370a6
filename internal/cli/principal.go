package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/opensts/sts/internal/api"
	"github.com/opensts/sts/internal/app"
	"github.com/opensts/sts/internal/config"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/storage/sqlstore"
)

// newPrincipalCmd is "sts principal"; "sts user" is the same command with
// --kind defaulting to user.
func newPrincipalCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "principal", Aliases: []string{"user"}, Short: "Manage principals: users, service accounts, runners, … (directly in storage)"}
	var org, kind, name, email, pubKey string
	create := &cobra.Command{
		Use:     "create",
		Short:   "Create a principal and print its ID",
		Example: `  sts principal create --org acme --kind user --name ada --email ada@example.com`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withStore(cmd, func(_ context.Context, _ config.Config, store *sqlstore.Store) error {
				o, err := findOrg(cmd, store, org)
				if err != nil {
					return err
				}
				k := storage.PrincipalKind(strings.ToUpper(strings.ReplaceAll(kind, "-", "_")))
				var pub []byte
				if pubKey != "" {
					if k != storage.PrincipalRunner {
						return usageError{errors.New("--public-key is only for --kind runner")}
					}
					if pub, err = decodePublicKey(pubKey); err != nil {
						return err
					}
				}
				p, err := api.CreatePrincipal(cmd.Context(), store, cliCaller, o.ID, k, name, email, time.Now())
				if err != nil {
					return err
				}
				if pub != nil {
					if _, err := setRunnerKey(cmd.Context(), store, p.ID, pub); err != nil {
						return fmt.Errorf("runner %s created, but its key was not stored: %w", p.ID, err)
					}
				}
				fmt.Fprintln(cmd.OutOrStdout(), p.ID)
				return nil
			})
		},
	}
	create.Flags().StringVar(&org, "org", "", "organization ID or name (required)")
	create.Flags().StringVar(&kind, "kind", "user", "user, service-account, runner, environment, account or runner-manager")
	create.Flags().StringVar(&name, "name", "", "name (required)")
	create.Flags().StringVar(&email, "email", "", "email")
	create.Flags().StringVar(&pubKey, "public-key", "", "runners: X25519 public key (base64) host-token values are sealed to (see sts runner)")
	_ = create.MarkFlagRequired("org")
	_ = create.MarkFlagRequired("name")
	var listOrg string
	list := &cobra.Command{
		Use:   "list",
		Short: "List the principals of an organization",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withStore(cmd, func(_ context.Context, _ config.Config, store *sqlstore.Store) error {
				o, err := findOrg(cmd, store, listOrg)
				if err != nil {
					return err
				}
				ps, err := store.ListPrincipals(cmd.Context(), o.ID)
				if err != nil {
					return fmt.Errorf("storage: %w", err)
				}
				w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
				fmt.Fprintln(w, "ID\tKIND\tNAME\tEMAIL\tDISABLED\tINSTANCE_ADMIN")
				for _, p := range ps {
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%t\t%t\n", p.ID, p.Kind, p.Name, p.Email, p.Disabled, p.InstanceAdmin)
				}
				return w.Flush()
			})
		},
	}
	list.Flags().StringVar(&listOrg, "org", "", "organization ID or name (required)")
	_ = list.MarkFlagRequired("org")
	grant := &cobra.Command{
		Use:   "grant-instance-admin PRINCIPAL_ID",
		Short: "Make a principal an instance administrator (with an sts:admin credential: every organization, signing keys)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withStore(cmd, func(ctx context.Context, _ config.Config, store *sqlstore.Store) error {
				return app.SetInstanceAdmin(ctx, store, cliCaller, args[0], true)
			})
		},
	}
	revoke := &cobra.Command{
		Use:   "revoke-instance-admin PRINCIPAL_ID",
		Short: "Take the instance administrator role from a principal (sts:admin then covers its own organization only)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withStore(cmd, func(ctx context.Context, _ config.Config, store *sqlstore.Store) error {
				return app.SetInstanceAdmin(ctx, store, cliCaller, args[0], false)
			})
		},
	}
	cmd.AddCommand(create, list, grant, revoke)
	return cmd
}

// Audit actions of the instance administrator role.
// findOrg resolves an organization ID or unique name.
func findOrg(cmd *cobra.Command, s storage.Store, ref string) (storage.Organization, error) {
	if o, err := s.GetOrganization(cmd.Context(), ref); err == nil {
		return o, nil
	}
	orgs, err := s.ListOrganizations(cmd.Context())
	if err != nil {
		return storage.Organization{}, fmt.Errorf("storage: %w", err)
	}
	var found []storage.Organization
	for _, o := range orgs {
		if o.Name == ref {
			found = append(found, o)
		}
	}
	if len(found) != 1 {
		return storage.Organization{}, fmt.Errorf("%d organizations match %q; pass its ID", len(found), ref)
	}
	return found[0], nil
}
