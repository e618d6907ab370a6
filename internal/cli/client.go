package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/opensts/sts/internal/clientauth"
	"github.com/opensts/sts/internal/config"
	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/secret"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/storage/sqlstore"
)

// newClientCmd is `sts client create|list|show|rotate-secret|disable|delete`.
func newClientCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "client", Short: "Manage OAuth clients (a service account's credentials)"}
	var c storage.Client
	var jwksFile string
	create := &cobra.Command{
		Use: "create", Short: "Register a client; a client secret is printed once", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withClientStore(cmd, func(ctx context.Context, store *sqlstore.Store, pepper []byte) error {
				if jwksFile != "" {
					b, err := os.ReadFile(jwksFile)
					if err != nil {
						return err
					}
					c.JWKS = b
				}
				sec, created, err := createClient(ctx, store, pepper, c, time.Now())
				if err != nil {
					return err
				}
				// Shown once, after the commit (SECURITY.md c.1 item 2).
				fmt.Fprintf(cmd.OutOrStdout(), "client_id: %s\n", created.ID)
				if sec != "" {
					fmt.Fprintf(cmd.OutOrStdout(), "client_secret: %s\n(shown once; store it now)\n", sec)
				}
				return nil
			})
		},
	}
	f := create.Flags()
	f.StringVar(&c.OrgID, "org", "", "organization ID (required)")
	f.StringVar(&c.PrincipalID, "principal", "", "service-account principal tokens are issued to (required)")
	f.StringVar(&c.Name, "name", "", "display name")
	f.StringVar(&c.AuthMethod, "auth-method", oauth2.AuthMethodClientSecretBasic, "client_secret_basic, client_secret_post or private_key_jwt")
	f.StringVar(&jwksFile, "jwks-file", "", "public JWKS for private_key_jwt")
	f.StringVar(&c.JWKSURI, "jwks-uri", "", "JWKS URI for private_key_jwt")
	f.StringSliceVar(&c.GrantTypes, "grant-type", []string{oauth2.GrantTypeClientCredentials, oauth2.GrantTypeRefreshToken}, "grant types the client may use")
	f.StringSliceVar(&c.Pools, "pool", nil, "pools the client may exchange against")
	f.StringSliceVar(&c.Audiences, "audience", nil, "audiences the client may obtain")
	f.StringSliceVar(&c.Scopes, "scope", nil, "scopes the client may obtain")
	cmd.AddCommand(create, clientListCmd(), clientShowCmd(), clientRotateCmd(), clientDisableCmd(), clientDeleteCmd())
	return cmd
}

// createClient validates c, stores it and returns the secret (empty for
// private_key_jwt). The secret exists only in memory until the commit
// returns; only its digest is stored.
func createClient(ctx context.Context, store storage.ClientStore, pepper []byte, c storage.Client, now time.Time) (string, storage.Client, error) {
	if c.OrgID == "" || c.PrincipalID == "" {
		return "", c, errors.New("--org and --principal are required")
	}
	var sec string
	switch c.AuthMethod {
	case oauth2.AuthMethodClientSecretBasic, oauth2.AuthMethodClientSecretPost:
		sec = secret.PrefixClientSecret.Generate()
		c.SecretDigest = secret.Digest(pepper, sec)
	case oauth2.AuthMethodPrivateKeyJWT:
		if (len(c.JWKS) == 0) == (c.JWKSURI == "") {
			return "", c, errors.New("private_key_jwt needs exactly one of --jwks-file and --jwks-uri")
		}
		if len(c.JWKS) > 0 {
			if err := clientauth.ValidateJWKS(c.JWKS); err != nil {
				return "", c, fmt.Errorf("jwks: %w", err)
			}
		}
	default:
		return "", c, fmt.Errorf("unknown --auth-method %q", c.AuthMethod)
	}
	c.ID = storage.NewID()
	c.CreatedAt, c.UpdatedAt = storage.Now(now), storage.Now(now)
	if err := store.CreateClient(ctx, c); err != nil {
		return "", c, fmt.Errorf("create client: %w", err)
	}
	return sec, c, nil
}

// withClientStore opens storage and derives the digest pepper (the same
// as PATs').
func withClientStore(cmd *cobra.Command, fn func(ctx context.Context, store *sqlstore.Store, pepper []byte) error) error {
	return withStore(cmd, func(ctx context.Context, cfg config.Config, store *sqlstore.Store) error {
		pepper, err := patPepper(ctx, cfg, store)
		if err != nil {
			return err
		}
		defer clear(pepper)
		return fn(ctx, store, pepper)
	})
}

func clientListCmd() *cobra.Command {
	var org string
	cmd := &cobra.Command{Use: "list", Short: "List clients", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withClientStore(cmd, func(ctx context.Context, store *sqlstore.Store, _ []byte) error {
				cs, err := store.ListClients(ctx, org)
				if err != nil {
					return err
				}
				tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "ID\tORG\tNAME\tAUTH\tDISABLED")
				for _, c := range cs {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%v\n", c.ID, c.OrgID, c.Name, c.AuthMethod, c.Disabled)
				}
				return tw.Flush()
			})
		}}
	cmd.Flags().StringVar(&org, "org", "", "only this organization")
	return cmd
}

func clientShowCmd() *cobra.Command {
	return &cobra.Command{Use: "show ID", Short: "Show a client (never its secret)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withClientStore(cmd, func(ctx context.Context, store *sqlstore.Store, _ []byte) error {
				c, err := store.GetClient(ctx, args[0])
				if err != nil {
					return err
				}
				w := cmd.OutOrStdout()
				fmt.Fprintf(w, "id: %s\norg: %s\nprincipal: %s\nname: %s\nauth_method: %s\nhas_secret: %v\njwks_uri: %s\ngrant_types: %v\npools: %v\naudiences: %v\nscopes: %v\ndisabled: %v\n",
					c.ID, c.OrgID, c.PrincipalID, c.Name, c.AuthMethod, len(c.SecretDigest) > 0, c.JWKSURI, c.GrantTypes, c.Pools, c.Audiences, c.Scopes, c.Disabled)
				return nil
			})
		}}
}
