package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/opensts/sts/internal/config"
	"github.com/opensts/sts/internal/policy"
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
are applied when serve starts; these commands manage pools in storage directly.
A pool the file also declares is set back to the file's version at the next
start; pools the file does not declare are left alone.

CEL expressions are compiled before anything is written: an invalid one is
refused and nothing changes.`,
	}
	cmd.AddCommand(newPoolCreateCmd(), newPoolUpdateCmd(), newPoolListCmd(), newPoolShowCmd(),
		newPoolEnableCmd(true), newPoolEnableCmd(false), newPoolDeleteCmd(), newPoolTestCmd())
	return cmd
}

// checkPool compiles the pool's CEL and checks what the file validation
// checks, against the pool's current providers; nothing is written when it
// fails.
func checkPool(ctx context.Context, cfg config.Config, s storage.Store, p storage.Pool) error {
	if !config.ValidRecordID(p.ID) {
		return usageError{fmt.Errorf("pool ID %q: want lower-case letters, digits, - and _ (at most 63)", p.ID)}
	}
	if p.OrgID == "" {
		return usageError{errors.New("--organization is required")}
	}
	if _, err := s.GetOrganization(ctx, p.OrgID); err != nil {
		return fmt.Errorf("organization %q: %w", p.OrgID, err)
	}
	if p.MaxTokenLifetime < 0 || p.MaxTokenLifetime > cfg.Keys.MaxTokenLifetime {
		return usageError{fmt.Errorf("--max-token-lifetime must be between 0 and keys.max_token_lifetime (%s)", cfg.Keys.MaxTokenLifetime)}
	}
	if _, err := policy.Compile(p); err != nil {
		return err
	}
	if strings.TrimSpace(p.Condition) == "" {
		providers, err := s.ListProviders(ctx, p.ID)
		if err != nil && !errors.Is(err, storage.ErrNotFound) {
			return err
		}
		for _, pr := range providers {
			if policy.IsSharedIssuer(pr.Issuer) {
				return fmt.Errorf("pool %q: a condition is required: provider %q trusts %s, which signs tokens for every tenant", p.ID, pr.ID, pr.Issuer)
			}
		}
	}
	return nil
}

func newPoolCreateCmd() *cobra.Command {
	var f poolFlags
	cmd := &cobra.Command{
		Use:   "create ID --organization ORG [flags]",
		Short: "Create an identity pool",
		Example: `  sts pool create ci --organization acme --condition 'assertion.repository_owner == "acme"' \
    --attribute repo=assertion.repository --scopes read,write --max-token-lifetime 1h`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withStore(cmd, func(ctx context.Context, cfg config.Config, s *sqlstore.Store) error {
				p := storage.Pool{ID: args[0]}
				if err := f.apply(cmd, &p); err != nil {
					return err
				}
				if err := checkPool(ctx, cfg, s, p); err != nil {
					return err
				}
				now := storage.Now(time.Now())
				p.CreatedAt, p.UpdatedAt = now, now
				if err := s.CreatePool(ctx, p); err != nil {
					return fmt.Errorf("pool %q: %w", p.ID, err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "created pool %s in organization %s\n", p.ID, p.OrgID)
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
			return updatePool(cmd, args[0], func(p *storage.Pool) error { return f.apply(cmd, p) }, "updated")
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
		Short: strings.ToUpper(use[:1]) + use[1:] + " a pool (a disabled pool refuses every exchange)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return updatePool(cmd, args[0], func(p *storage.Pool) error { p.Disabled = !enable; return nil }, verb)
		},
	}
}

// updatePool applies change to the stored pool, checks the result and
// writes it atomically (the CEL is compiled again inside the update, on
// the row as it is then).
func updatePool(cmd *cobra.Command, id string, change func(*storage.Pool) error, verb string) error {
	return withStore(cmd, func(ctx context.Context, cfg config.Config, s *sqlstore.Store) error {
		p, err := s.GetPool(ctx, id)
		if err != nil {
			return fmt.Errorf("pool %q: %w", id, err)
		}
		if err := change(&p); err != nil {
			return err
		}
		if err := checkPool(ctx, cfg, s, p); err != nil {
			return err
		}
		err = s.UpdatePool(ctx, id, func(p storage.Pool) (storage.Pool, error) {
			if err := change(&p); err != nil {
				return p, err
			}
			if _, err := policy.Compile(p); err != nil {
				return p, err
			}
			p.UpdatedAt = storage.Now(time.Now())
			return p, nil
		})
		if err != nil {
			return fmt.Errorf("pool %q: %w", id, err)
		}
		fmt.Fprintf(cmd.OutOrStdout(), "%s pool %s\n", verb, id)
		return nil
	})
}

func newPoolDeleteCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "delete ID",
		Short: "Delete a pool and its providers",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withStore(cmd, func(ctx context.Context, _ config.Config, s *sqlstore.Store) error {
				providers, err := s.ListProviders(ctx, args[0])
				if err != nil {
					return err
				}
				if err := s.DeletePool(ctx, args[0]); err != nil {
					return fmt.Errorf("pool %q: %w", args[0], err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "deleted pool %s and its %d provider(s)\n", args[0], len(providers))
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
			return withStore(cmd, func(ctx context.Context, _ config.Config, s *sqlstore.Store) error {
				pools, err := s.ListPools(ctx)
				if err != nil {
					return err
				}
				providers, err := s.ListProviders(ctx, "")
				if err != nil {
					return err
				}
				count := map[string]int{}
				for _, p := range providers {
					count[p.PoolID]++
				}
				w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
				fmt.Fprintln(w, "ID\tORGANIZATION\tSTATE\tPROVIDERS\tSCOPES\tMAX LIFETIME\tCONDITION")
				for _, p := range pools {
					fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%s\t%s\t%s\n", p.ID, p.OrgID, state(p.Disabled), count[p.ID],
						dash(strings.Join(p.Scopes, ",")), lifetime(p.MaxTokenLifetime), dash(truncate(p.Condition, 60)))
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
