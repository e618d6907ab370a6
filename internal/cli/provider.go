package cli

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/opensts/sts/internal/pools"
	"github.com/opensts/sts/internal/storage"
)

func newProviderCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "provider",
		Short: "Manage the trusted external issuers of a pool",
		Long: `A provider is an external issuer a pool trusts: its exact issuer URL, the
audiences its tokens must carry, where its keys come from (OIDC discovery, a
jwks_uri, or an uploaded JWKS for issuers sts cannot reach) and the signature
algorithms allowed. Issuers must use https unless federation.allow_loopback is
set, which allows plain http to loopback addresses only (development). The
rules are those of the API (sts.v1.PoolService); running servers apply a
change within 5 s.`,
	}
	cmd.AddCommand(newProviderCreateCmd(), newProviderUpdateCmd(), newProviderListCmd(), newProviderShowCmd(),
		newProviderEnableCmd(true), newProviderEnableCmd(false), newProviderDeleteCmd())
	return adminNoun(cmd)
}

// providerFlags binds the flags that set provider fields.
type providerFlags struct {
	pool, issuer, jwksURI, jwksFile string
	audiences, algorithms           []string
	oneTimeUse, disabled            bool
	allowMissingKID, allowMultiAud  bool
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
	fs.BoolVar(&f.allowMissingKID, "allow-missing-kid", false, "accept tokens without a kid header when the key set has exactly one key (default: refused)")
	fs.BoolVar(&f.allowMultiAud, "allow-multiple-audiences", false, "accept tokens whose aud names several audiences (default: refused)")
	fs.BoolVar(&f.disabled, "disabled", false, "create or set the provider disabled")
}

// update turns the flags the user set into a change of the shared
// provider lifecycle; the flags not set keep their field.
func (f *providerFlags) update(cmd *cobra.Command) (pools.ProviderUpdate, error) {
	set := cmd.Flags().Changed
	var u pools.ProviderUpdate
	if set("issuer") {
		u.Issuer = &f.issuer
	}
	if set("audience") {
		u.Audiences = &f.audiences
	}
	if set("jwks-uri") {
		u.JWKSURI = &f.jwksURI
	}
	if set("jwks-file") {
		var data []byte
		if f.jwksFile != "" {
			var err error
			if data, err = readJWKSFile(f.jwksFile); err != nil {
				return u, err
			}
		}
		u.JWKS = &data
	}
	if set("algorithm") {
		u.Algorithms = &f.algorithms
	}
	if set("one-time-use") {
		u.OneTimeUse = &f.oneTimeUse
	}
	if set("allow-missing-kid") {
		u.AllowMissingKID = &f.allowMissingKID
	}
	if set("allow-multiple-audiences") {
		u.AllowMultipleAudiences = &f.allowMultiAud
	}
	if set("disabled") {
		u.Disabled = &f.disabled
	}
	return u, nil
}

// readJWKSFile reads an uploaded JWKS, at most pools.MaxJWKSBytes (the
// file's jwks_file cap).
func readJWKSFile(name string) ([]byte, error) {
	fi, err := os.Stat(name)
	if err != nil {
		return nil, fmt.Errorf("--jwks-file: %w", err)
	}
	if fi.Size() > pools.MaxJWKSBytes {
		return nil, fmt.Errorf("--jwks-file %s is larger than %d KiB", name, pools.MaxJWKSBytes>>10)
	}
	return os.ReadFile(name)
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
			u, err := f.update(cmd)
			if err != nil {
				return err
			}
			return withPoolAdmin(cmd, func(ctx context.Context, svc poolAdmin) error {
				p := storage.Provider{PoolID: f.pool, ID: args[0]}
				u.Apply(&p)
				p, err := svc.CreateProvider(ctx, cliCaller, p)
				if err != nil {
					return withFlagHint(err, providerFlagNames)
				}
				if j, _ := outputJSON(cmd); j {
					return printProvidersJSON(cmd, []storage.Provider{p}, true)
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "created provider %s in pool %s\n", printable(p.ID), printable(p.PoolID))
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
			u, err := f.update(cmd)
			if err != nil {
				return err
			}
			return updateProvider(cmd, f.pool, args[0], u, "updated")
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
		Short: strings.ToUpper(use[:1]) + use[1:] + " a provider (a disabled provider refuses its issuer's tokens, and the tokens exchanged through it)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			disabled := !enable
			return updateProvider(cmd, f.pool, args[0], pools.ProviderUpdate{Disabled: &disabled}, verb)
		},
	}
	f.bindPool(cmd)
	return cmd
}

// updateProvider applies u through the shared lifecycle, atomically on
// the row as it is at the update.
func updateProvider(cmd *cobra.Command, pool, id string, u pools.ProviderUpdate, verb string) error {
	return withPoolAdmin(cmd, func(ctx context.Context, svc poolAdmin) error {
		p, err := svc.UpdateProvider(ctx, cliCaller, pool, id, u)
		if err != nil {
			return withFlagHint(err, providerFlagNames)
		}
		if j, _ := outputJSON(cmd); j { // the provider as it now is (docs/cli.md, Output)
			return printProvidersJSON(cmd, []storage.Provider{p}, true)
		}
		fmt.Fprintf(cmd.ErrOrStderr(), "%s provider %s in pool %s\n", verb, id, pool)
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
			return withPoolAdmin(cmd, func(ctx context.Context, svc poolAdmin) error {
				if err := svc.DeleteProvider(ctx, cliCaller, f.pool, args[0]); err != nil {
					return err
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "deleted provider %s from pool %s\n", args[0], f.pool)
				return nil
			})
		},
	}
	f.bindPool(cmd)
	return cmd
}
