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
	"github.com/opensts/sts/internal/pat"
	"github.com/opensts/sts/internal/pepper"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/storage/sqlstore"
)

// patPepper returns the server pepper of PAT, exchange-token and other
// bearer-secret digests: a random secret stored sealed under the master key
// (created on first use), so a master-key rotation re-wraps it instead of
// invalidating every digest.
func patPepper(ctx context.Context, cfg config.Config, store storage.ServerSecretStore) ([]byte, error) {
	kr, err := app.LoadConfiguredKey(cfg)
	if err != nil {
		return nil, err
	}
	if kr == nil {
		return nil, fmt.Errorf("master key: none configured and %s does not exist (start sts serve once to create one)", cfg.MasterKeyPath())
	}
	return pepper.Load(ctx, store, kr, time.Now())
}

// tokenEnv is what the token commands open: storage and the PAT service.
type tokenEnv struct {
	store *sqlstore.Store
	pats  *pat.Service
}

func openTokenEnv(cmd *cobra.Command) (*tokenEnv, error) {
	cfg, err := loadConfig(cmd)
	if err != nil {
		return nil, err
	}
	store, err := app.OpenStorage(cmd.Context(), cfg, nil)
	if err != nil {
		return nil, err
	}
	p, err := patPepper(cmd.Context(), cfg, store)
	if err != nil {
		store.Close()
		return nil, err
	}
	svc, err := pat.NewService(store, p)
	clear(p)
	if err != nil {
		store.Close()
		return nil, err
	}
	svc.Logger = slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	return &tokenEnv{store: store, pats: svc}, nil
}

// openTokenEnvFor is openTokenEnv plus the principal named by ref (an ID,
// or a name unique within org when set); the caller closes env.store.
func openTokenEnvFor(cmd *cobra.Command, ref, org string) (*tokenEnv, storage.Principal, error) {
	env, err := openTokenEnv(cmd)
	if err != nil {
		return nil, storage.Principal{}, err
	}
	p, err := findPrincipal(cmd.Context(), env.store, ref, org)
	if err != nil {
		env.store.Close()
		return nil, storage.Principal{}, err
	}
	return env, p, nil
}

// cliCaller is the audit actor of CLI changes: whoever can read the
// database and master key.
var cliCaller = pat.Caller{Actor: "cli"}

// findPrincipal resolves an ID, or a name unique across organizations
// (within org when set).
func findPrincipal(ctx context.Context, s storage.Store, ref, org string) (storage.Principal, error) {
	if p, err := s.GetPrincipal(ctx, ref); err == nil {
		return p, nil
	}
	orgs, err := s.ListOrganizations(ctx)
	if err != nil {
		return storage.Principal{}, fmt.Errorf("storage: %w", err)
	}
	var found []storage.Principal
	for _, o := range orgs {
		if org != "" && o.ID != org && o.Name != org {
			continue
		}
		ps, err := s.ListPrincipals(ctx, o.ID)
		if err != nil {
			return storage.Principal{}, fmt.Errorf("storage: %w", err)
		}
		for _, p := range ps {
			if p.Name == ref {
				found = append(found, p)
			}
		}
	}
	switch len(found) {
	case 0:
		return storage.Principal{}, fmt.Errorf("no principal %q", ref)
	case 1:
		return found[0], nil
	}
	return storage.Principal{}, fmt.Errorf("%d principals are named %q; pass an ID or --org", len(found), ref)
}

// parseLifetime accepts the configuration's durations (config.ParseDuration:
// Go's plus d, "30d").
func parseLifetime(s string) (time.Duration, error) { return config.ParseDuration(s) }

func newPATCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "pat", Short: "Manage personal access tokens (directly in storage)"}
	cmd.AddCommand(newPATCreateCmd(), newPATListCmd(), newPATRevokeCmd())
	return cmd
}

func newPATCreateCmd() *cobra.Command {
	var user, org, desc, expires string
	var scopes []string
	c := &cobra.Command{
		Use:   "create",
		Short: "Create a personal access token and print its secret once",
		Long: `Create a personal access token for a principal and print the secret on
stdout, once: only its digest is stored. Scopes: "*" (full access),
identity:read, identity:id_token, tokens:read, tokens:write, sts:admin;
none means "No Access".`,
		Example: `  sts pat create --user admin --expires-in 30d --scope '*' --scope sts:admin
  export STS_TOKEN=$(sts pat create --user ada --expires-in 7d --scope identity:read)`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			life, err := parseLifetime(expires)
			if err != nil {
				return usageError{err}
			}
			env, p, err := openTokenEnvFor(cmd, user, org)
			if err != nil {
				return err
			}
			defer env.store.Close()
			t, secret, err := env.pats.Create(cmd.Context(), cliCaller, pat.CreateInput{
				OwnerID: p.ID, Description: desc, Scopes: scopes, ExpiresAt: time.Now().Add(life),
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "created personal access token %s for %s, expires %s; store the secret now, it is not shown again\n",
				t.ID, p.Name, t.ExpiresAt.Format(time.RFC3339))
			fmt.Fprintln(cmd.OutOrStdout(), secret)
			return nil
		},
	}
	c.Flags().StringVar(&user, "user", "", "owner: principal ID or unique name (required)")
	c.Flags().StringVar(&org, "org", "", "organization ID or name, to disambiguate --user")
	c.Flags().StringVar(&desc, "description", "", "description")
	c.Flags().StringVar(&expires, "expires-in", "30d", "lifetime, 1d to 366d (e.g. 30d, 48h)")
	c.Flags().StringArrayVar(&scopes, "scope", nil, "scope to grant (repeatable)")
	_ = c.MarkFlagRequired("user")
	return c
}

func newPATListCmd() *cobra.Command {
	var user, org string
	c := &cobra.Command{
		Use:   "list",
		Short: "List a principal's personal access tokens",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			env, p, err := openTokenEnvFor(cmd, user, org)
			if err != nil {
				return err
			}
			defer env.store.Close()
			list, err := env.store.ListPATs(cmd.Context(), p.ID)
			if err != nil {
				return fmt.Errorf("storage: %w", err)
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "ID\tDESCRIPTION\tSCOPES\tEXPIRES\tLAST USED")
			for _, t := range list {
				last := "never"
				if !t.LastUsedAt.IsZero() {
					last = t.LastUsedAt.Format(time.RFC3339)
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", t.ID, t.Description, strings.Join(t.Scopes, " "), t.ExpiresAt.Format(time.RFC3339), last)
			}
			return w.Flush()
		},
	}
	c.Flags().StringVar(&user, "user", "", "owner: principal ID or unique name (required)")
	c.Flags().StringVar(&org, "org", "", "organization ID or name, to disambiguate --user")
	_ = c.MarkFlagRequired("user")
	return c
}

func newPATRevokeCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "revoke <token-id>",
		Short: "Delete a personal access token; it stops working at once",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			env, err := openTokenEnv(cmd)
			if err != nil {
				return err
			}
			defer env.store.Close()
			if err := env.pats.Delete(cmd.Context(), cliCaller, "", args[0]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "revoked personal access token %s\n", args[0])
			return nil
		},
	}
}
