package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/opensts/sts/internal/pat"
)

func newExchangeTokenCmd() *cobra.Command {
	cmd := adminNoun(&cobra.Command{Use: "exchange-token", Short: "Mint one-time exchange tokens"})
	var principal, org string
	var validFor time.Duration
	create := &cobra.Command{
		Use:   "create --principal PRINCIPAL",
		Short: "Mint a one-time exchange token for a principal and print it once",
		Long: `Mint a one-time exchange token (at most 5 minutes) that the principal trades
for an access token with gitpod.v1.IdentityService/ExchangeToken.`,
		Example: `  sts exchange-token create --principal runner-1 --valid-for 2m`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runAdmin(cmd, func(ctx context.Context, a *admin) error {
				p, err := resolvePrincipal(ctx, a, principal, org)
				if err != nil {
					return err
				}
				secret, exp, err := a.principals().exchangeToken(ctx, p.GetId(), validFor)
				if err != nil {
					return err
				}
				if j, _ := outputJSON(cmd); j {
					return printJSON(cmd.OutOrStdout(), map[string]any{"exchangeToken": secret, "expiresAt": exp.UTC().Format(time.RFC3339)})
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "exchange token for %s expires %s\n", printable(p.GetName()), exp.Format(time.RFC3339))
				fmt.Fprintln(cmd.OutOrStdout(), printable(secret))
				return nil
			})
		},
	}
	create.Flags().StringVar(&principal, "principal", "", "principal ID or unique name (required)")
	create.Flags().StringVar(&org, "org", "", "organization ID or name, to disambiguate --principal")
	durationVar(create.Flags(), &validFor, "valid-for", pat.MaxExchangeLifetime, "lifetime, at most 5m")
	_ = create.MarkFlagRequired("principal")
	cmd.AddCommand(create)
	return cmd
}
