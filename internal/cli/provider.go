package cli

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/opensts/sts/internal/config"
	"github.com/opensts/sts/internal/policy"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/storage/sqlstore"
)

func newProviderCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "provider",
		Short: "Manage the trusted external issuers of a pool",
		Long: `A provider is an external issuer a pool trusts: its exact issuer URL, the
audiences its tokens must carry, where its keys come from (OIDC discovery, a
jwks_uri, or an uploaded JWKS for issuers sts cannot reach) and the signature
algorithms allowed. Issuers must use https unless federation.allow_loopback is
set, which allows plain http to loopback addresses only (development).`,
	}
	cmd.AddCommand(newProviderCreateCmd(), newProviderUpdateCmd(), newProviderListCmd(), newProviderShowCmd(),
		newProviderEnableCmd(true), newProviderEnableCmd(false), newProviderDeleteCmd())
	return cmd
}

// providerFlags binds the flags that set provider fields.
type providerFlags struct {
	pool, issuer, jwksURI, jwksFile string
	audiences, algorithms           []string
	oneTimeUse, disabled            bool
}

func (f *providerFlags) bindPool(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.pool, "pool", "", "pool ID (required)")
	_ = cmd.MarkFlagRequired("pool")
}

func (f *providerFlags) bind(cmd *cobra.Command) {
	f.bindPool(cmd)
	fs := cmd.Flags()
	fs.StringVar(&f.issuer, "issuer", "", "exact iss of the issuer's tokens, e.g. https://token.actions.githubusercontent.com")
	fs.StringSliceVar(&f.audiences, "audience", nil, "accepted aud value (repeatable or comma-separated)")
	fs.StringVar(&f.jwksURI, "jwks-uri", "", "JWKS URL (default: OIDC discovery from the issuer)")
	fs.StringVar(&f.jwksFile, "jwks-file", "", "upload this JWKS file (at most 256 KiB); '' on update removes it")
	fs.StringSliceVar(&f.algorithms, "algorithm", nil, "allowed JWS algorithm (repeatable; default: the server's list)")
	fs.BoolVar(&f.oneTimeUse, "one-time-use", false, "exchange each token of this issuer at most once (by iss and jti; its tokens must carry a jti)")
	fs.BoolVar(&f.disabled, "disabled", false, "create or set the provider disabled")
}

func (f *providerFlags) apply(cmd *cobra.Command, p *storage.Provider) error {
	set := cmd.Flags().Changed
	if set("issuer") {
		p.Issuer = f.issuer
	}
	if set("audience") {
		p.Audiences = f.audiences
	}
	if set("jwks-uri") {
		p.JWKSURI = f.jwksURI
	}
	if set("jwks-file") {
		p.JWKS = nil
		if f.jwksFile != "" {
			data, err := readJWKSFile(f.jwksFile)
			if err != nil {
				return err
			}
			p.JWKS = data
		}
	}
	if set("algorithm") {
		p.Algorithms = f.algorithms
	}
	if set("one-time-use") {
		p.OneTimeUse = f.oneTimeUse
	}
	if set("disabled") {
		p.Disabled = f.disabled
	}
	return nil
}

func readJWKSFile(name string) ([]byte, error) {
	fi, err := os.Stat(name)
	if err != nil {
		return nil, fmt.Errorf("--jwks-file: %w", err)
	}
	if fi.Size() > config.DefaultJWKSFileMax {
		return nil, fmt.Errorf("--jwks-file %s is larger than %d KiB", name, config.DefaultJWKSFileMax>>10)
	}
	return os.ReadFile(name)
}

// checkProvider validates p like the file's providers, and refuses a
// shared issuer in a pool without a condition.
func checkProvider(ctx context.Context, cfg config.Config, s storage.Store, p storage.Provider) error {
	if !config.ValidRecordID(p.ID) {
		return usageError{fmt.Errorf("provider ID %q: want lower-case letters, digits, - and _ (at most 63)", p.ID)}
	}
	if msgs := providerProblems(p, cfg.Federation.AllowLoopback); len(msgs) > 0 {
		return fmt.Errorf("provider %s/%s: %s", p.PoolID, p.ID, strings.Join(msgs, "; "))
	}
	pool, err := s.GetPool(ctx, p.PoolID)
	if err != nil {
		return fmt.Errorf("pool %q: %w", p.PoolID, err)
	}
	if policy.IsSharedIssuer(p.Issuer) && strings.TrimSpace(pool.Condition) == "" {
		return fmt.Errorf("pool %q has no condition and %s signs tokens for every tenant: set one first (sts pool update %s --condition …)", pool.ID, p.Issuer, pool.ID)
	}
	return nil
}

func newProviderCreateCmd() *cobra.Command {
	var f providerFlags
	cmd := &cobra.Command{
		Use:   "create ID --pool POOL --issuer URL --audience AUD [flags]",
		Short: "Add a trusted issuer to a pool",
		Example: `  sts provider create github --pool ci --issuer https://token.actions.githubusercontent.com --audience sts
  sts provider create cluster --pool k8s --issuer https://kubernetes.default.svc --audience sts --jwks-file jwks.json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withStore(cmd, func(ctx context.Context, cfg config.Config, s *sqlstore.Store) error {
				p := storage.Provider{PoolID: f.pool, ID: args[0]}
				if err := f.apply(cmd, &p); err != nil {
					return err
				}
				if err := checkProvider(ctx, cfg, s, p); err != nil {
					return err
				}
				now := storage.Now(time.Now())
				p.CreatedAt, p.UpdatedAt = now, now
				if err := s.CreateProvider(ctx, p); err != nil {
					return fmt.Errorf("provider %s/%s: %w", p.PoolID, p.ID, err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "created provider %s in pool %s\n", p.ID, p.PoolID)
				return nil
			})
		},
	}
	f.bind(cmd)
	return cmd
}

func newProviderUpdateCmd() *cobra.Command {
	var f providerFlags
	cmd := &cobra.Command{
		Use:   "update ID --pool POOL [flags]",
		Short: "Change the fields of a provider given as flags",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return updateProvider(cmd, f.pool, args[0], func(p *storage.Provider) error { return f.apply(cmd, p) }, "updated")
		},
	}
	f.bind(cmd)
	return cmd
}

func newProviderEnableCmd(enable bool) *cobra.Command {
	var f providerFlags
	use, verb := "disable", "disabled"
	if enable {
		use, verb = "enable", "enabled"
	}
	cmd := &cobra.Command{
		Use:   use + " ID --pool POOL",
		Short: strings.ToUpper(use[:1]) + use[1:] + " a provider (a disabled provider's tokens are refused)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return updateProvider(cmd, f.pool, args[0], func(p *storage.Provider) error { p.Disabled = !enable; return nil }, verb)
		},
	}
	f.bindPool(cmd)
	return cmd
}

func updateProvider(cmd *cobra.Command, pool, id string, change func(*storage.Provider) error, verb string) error {
	return withStore(cmd, func(ctx context.Context, cfg config.Config, s *sqlstore.Store) error {
		p, err := s.GetProvider(ctx, pool, id)
		if err != nil {
			return fmt.Errorf("provider %s/%s: %w", pool, id, err)
		}
		if err := change(&p); err != nil {
			return err
		}
		if err := checkProvider(ctx, cfg, s, p); err != nil {
			return err
		}
		err = s.UpdateProvider(ctx, pool, id, func(old storage.Provider) (storage.Provider, error) {
			p.CreatedAt, p.UpdatedAt = old.CreatedAt, storage.Now(time.Now())
			return p, nil
		})
		if err != nil {
			return fmt.Errorf("provider %s/%s: %w", pool, id, err)
		}
		fmt.Fprintf(cmd.OutOrStdout(), "%s provider %s in pool %s\n", verb, id, pool)
		return nil
	})
}

func newProviderDeleteCmd() *cobra.Command {
	var f providerFlags
	cmd := &cobra.Command{
		Use:   "delete ID --pool POOL",
		Short: "Remove a provider from a pool",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withStore(cmd, func(ctx context.Context, _ config.Config, s *sqlstore.Store) error {
				if err := s.DeleteProvider(ctx, f.pool, args[0]); err != nil {
					return fmt.Errorf("provider %s/%s: %w", f.pool, args[0], err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "deleted provider %s from pool %s\n", args[0], f.pool)
				return nil
			})
		},
	}
	f.bindPool(cmd)
	return cmd
}
