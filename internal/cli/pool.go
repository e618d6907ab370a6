package cli

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/opensts/sts/internal/app"
	"github.com/opensts/sts/internal/config"
	"github.com/opensts/sts/internal/pools"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/storage/sqlstore"
)

func newPoolCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "pool",
		Short: "Manage identity pools (the trust policy for external tokens)",
		Long: `An identity pool judges external tokens: its providers say which issuers are
trusted, its CEL condition which of their tokens are admitted, and its mapping
what the issued token says. Pools declared in the configuration file (pools:)
are applied when serve starts; these commands manage pools in storage directly,
with the same rules as the API (sts.v1.PoolService). A pool the file also
declares is set back to the file's version at the next start, and is not
deleted (disable it instead); pools the file does not declare are left alone.
Running servers apply a change within 5 s.

CEL expressions are compiled before anything is written: an invalid one is
refused and nothing changes.`,
	}
	cmd.AddCommand(newPoolCreateCmd(), newPoolUpdateCmd(), newPoolListCmd(), newPoolShowCmd(),
		newPoolEnableCmd(true), newPoolEnableCmd(false), newPoolDeleteCmd(), newPoolTestCmd())
	cmd.SetGlobalNormalizationFunc(flagAliases)
	return adminNoun(cmd)
}

// withPools opens storage and hands fn the pool lifecycle service over it:
// the one sts.v1.PoolService uses, so both refuse the same input with the
// same message. A running server sees the change within the trust
// registry's refresh interval (5 s).
func withPools(cmd *cobra.Command, fn func(ctx context.Context, svc *pools.Service) error) error {
	if cmd.Flags().Changed("server") { // STS_SERVER alone does not stop a database-only command
		return usageError{fmt.Errorf("%s works on the database or files only: run it without --server (sts.v1.PoolService/TestPool is its API call)", cmd.CommandPath())}
	}
	return withStore(cmd, func(ctx context.Context, cfg config.Config, s *sqlstore.Store) error {
		svc, err := pools.NewService(s, app.PoolLimits(cfg))
		if err != nil {
			return err
		}
		// The command prints what it did; the service's log lines are for
		// servers.
		svc.Logger = slog.New(slog.DiscardHandler)
		return fn(ctx, svc)
	})
}

func newPoolCreateCmd() *cobra.Command {
	var f poolFlags
	cmd := &cobra.Command{
		Use:   "create ID --org ORG [flags]",
		Short: "Create an identity pool",
		Example: `  sts pool create ci --org acme --condition 'assertion.repository_owner == "acme"' \
    --attribute repo=assertion.repository --scope read,write --max-token-lifetime 1h`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			u, err := f.update(cmd)
			if err != nil {
				return err
			}
			return withPoolAdminOrg(cmd, u.OrgID, func(ctx context.Context, svc poolAdmin) error {
				p := storage.Pool{ID: args[0]}
				u.Apply(&p)
				p, err := svc.CreatePool(ctx, cliCaller, p)
				if err != nil {
					return withFlagHint(err, poolFlagNames)
				}
				if j, _ := outputJSON(cmd); j {
					return printPoolsJSON(cmd, []storage.Pool{p}, true)
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "created pool %s in organization %s\n", printable(p.ID), printable(p.OrgID))
				return nil
			})
		},
	}
	f.bind(cmd)
	return cmd
}

func newPoolUpdateCmd() *cobra.Command {
	var f poolFlags
	cmd := &cobra.Command{
		Use:     "update ID [flags]",
		Short:   "Change the fields of a pool given as flags",
		Example: `  sts pool update ci --condition 'assertion.repository_owner == "acme" && assertion.ref == "refs/heads/main"'`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			u, err := f.update(cmd)
			if err != nil {
				return err
			}
			return updatePool(cmd, args[0], u, "updated")
		},
	}
	f.bind(cmd)
	return cmd
}

func newPoolEnableCmd(enable bool) *cobra.Command {
	use, verb := "disable", "disabled"
	if enable {
		use, verb = "enable", "enabled"
	}
	return &cobra.Command{
		Use:   use + " ID",
		Short: strings.ToUpper(use[:1]) + use[1:] + " a pool (a disabled pool refuses every exchange, and the tokens exchanged through it)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			disabled := !enable
			return updatePool(cmd, args[0], pools.PoolUpdate{Disabled: &disabled}, verb)
		},
	}
}

// updatePool applies u through the shared lifecycle: checked like a new
// pool and written atomically (the CEL is compiled again inside the
// update, on the row as it is then).
func updatePool(cmd *cobra.Command, id string, u pools.PoolUpdate, verb string) error {
	return withPoolAdminOrg(cmd, u.OrgID, func(ctx context.Context, svc poolAdmin) error {
		p, err := svc.UpdatePool(ctx, cliCaller, id, u)
		if err != nil {
			return withFlagHint(err, poolFlagNames)
		}
		if j, _ := outputJSON(cmd); j { // the pool as it now is (docs/cli.md, Output)
			return printPoolsJSON(cmd, []storage.Pool{p}, true)
		}
		fmt.Fprintf(cmd.ErrOrStderr(), "%s pool %s\n", verb, id)
		return nil
	})
}

func newPoolDeleteCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "delete ID",
		Short: "Delete a pool and its providers",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withPoolAdmin(cmd, func(ctx context.Context, svc poolAdmin) error {
				n, err := svc.DeletePool(ctx, cliCaller, args[0])
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "deleted pool %s and its %d provider(s)\n", args[0], n)
				return nil
			})
		},
	}
}

func newPoolListCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List pools",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withPoolAdmin(cmd, func(ctx context.Context, svc poolAdmin) error {
				list, err := svc.ListPools(ctx, "")
				if err != nil {
					return err
				}
				providers, err := svc.ListProviders(ctx, "")
				if err != nil {
					return err
				}
				if j, _ := outputJSON(cmd); j {
					return printPoolsJSON(cmd, list, false)
				}
				count := map[string]int{}
				for _, p := range providers {
					count[p.PoolID]++
				}
				w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
				fmt.Fprintln(w, "ID\tORGANIZATION\tSTATE\tPROVIDERS\tSCOPES\tMAX LIFETIME\tCONDITION")
				for _, p := range list {
					fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%s\t%s\t%s\n", printable(p.ID), printable(p.OrgID), state(p.Disabled), count[p.ID],
						dash(printable(strings.Join(p.Scopes, ","))), lifetime(p.MaxTokenLifetime), dash(truncate(printable(p.Condition), 60)))
				}
				return w.Flush()
			})
		},
	}
}

func state(disabled bool) string {
	if disabled {
		return "disabled"
	}
	return "enabled"
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func lifetime(d time.Duration) string {
	if d == 0 {
		return "default"
	}
	return d.String()
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-1] + "…"
}
