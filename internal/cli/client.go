package cli

import (
	"context"
	"errors"
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/opensts/sts/internal/clients"
	"github.com/opensts/sts/internal/config"
	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/storage/sqlstore"
)

// newClientCmd is `sts client create|list|show|update|enable|disable|
// rotate-secret|delete`. Every command goes through internal/clients, the
// lifecycle sts.v1.ClientService uses too, so both refuse the same input
// with the same message.
func newClientCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "client", Short: "Manage OAuth clients (a service account's credentials)"}
	var org, principal, jwksFile string
	var public bool
	var in clients.CreateInput
	create := &cobra.Command{
		Use: "create", Short: "Register a client; a client secret is printed once", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if org == "" || principal == "" {
				return errors.New("--org and --principal are required")
			}
			set := cmd.Flags().Changed
			if public {
				if set("auth-method") && in.AuthMethod != oauth2.AuthMethodNone {
					return errors.New("--public is auth method none; drop --auth-method")
				}
				in.AuthMethod = oauth2.AuthMethodNone
			}
			if len(in.RedirectURIs) > 0 && !set("grant-type") {
				// A client registered with redirect URIs is a web or
				// native application: the browser flow (and, when it can
				// keep a secret, refresh tokens).
				in.GrantTypes = []string{oauth2.GrantTypeAuthorizationCode}
				if in.AuthMethod != oauth2.AuthMethodNone {
					in.GrantTypes = append(in.GrantTypes, oauth2.GrantTypeRefreshToken)
				}
			}
			return withClients(cmd, func(ctx context.Context, store *sqlstore.Store, svc *clients.Service) error {
				o, err := findOrg(cmd, store, org)
				if err != nil {
					return err
				}
				p, err := findPrincipal(ctx, store, principal, o.ID)
				if err != nil {
					return err
				}
				in.OrgID, in.PrincipalID = o.ID, p.ID
				if jwksFile != "" {
					if in.Keys.JWKS, err = readJWKSFile(jwksFile); err != nil {
						return err
					}
				}
				created, sec, err := svc.Create(ctx, cliCaller, in)
				if err != nil {
					return err
				}
				// Shown once, after the commit (docs/security.md D-02).
				fmt.Fprintf(cmd.OutOrStdout(), "client_id: %s\n", created.ID)
				if sec != "" {
					fmt.Fprintf(cmd.OutOrStdout(), "client_secret: %s\n(shown once; store it now)\n", sec)
				}
				return nil
			})
		},
	}
	f := create.Flags()
	f.StringVar(&org, "org", "", "organization ID or name (required)")
	f.StringVar(&principal, "principal", "", "service-account principal tokens are issued to, ID or name (required)")
	f.StringVar(&in.Name, "name", "", "display name")
	f.StringVar(&in.AuthMethod, "auth-method", oauth2.AuthMethodClientSecretBasic, "client_secret_basic, client_secret_post, private_key_jwt or none (a public client: client_id, no secret)")
	f.StringVar(&jwksFile, "jwks-file", "", "public JWKS for private_key_jwt")
	f.StringVar(&in.Keys.JWKSURI, "jwks-uri", "", "JWKS URI for private_key_jwt")
	f.StringSliceVar(&in.GrantTypes, "grant-type", []string{oauth2.GrantTypeClientCredentials, oauth2.GrantTypeRefreshToken}, "grant types the client may use")
	f.StringSliceVar(&in.Pools, "pool", nil, "pools the client may exchange against")
	f.StringSliceVar(&in.Audiences, "audience", nil, "audiences the client may obtain")
	f.StringSliceVar(&in.Scopes, "scope", nil, "scopes the client may obtain")
	f.StringSliceVar(&in.RedirectURIs, "redirect-uri", nil, "exact redirect URI of the authorization_code grant (https, or http to 127.0.0.1/localhost); without --grant-type the client gets authorization_code (and refresh_token unless --public)")
	f.BoolVar(&public, "public", false, "a public client (auth method none): no secret, PKCE only")
	cmd.AddCommand(create, clientListCmd(), clientShowCmd(), clientUpdateCmd(), clientEnableCmd(true), clientEnableCmd(false),
		clientRotateCmd(), clientDeleteCmd())
	return cmd
}

// withClients opens storage, derives the digest pepper (the same as
// PATs') and hands fn the client lifecycle service over that storage.
func withClients(cmd *cobra.Command, fn func(ctx context.Context, store *sqlstore.Store, svc *clients.Service) error) error {
	return withClientStore(cmd, func(ctx context.Context, store *sqlstore.Store, pepper []byte) error {
		svc, err := clients.NewService(store, pepper)
		if err != nil {
			return err
		}
		return fn(ctx, store, svc)
	})
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
			return withClients(cmd, func(ctx context.Context, store *sqlstore.Store, svc *clients.Service) error {
				orgID := ""
				if org != "" {
					o, err := findOrg(cmd, store, org)
					if err != nil {
						return err
					}
					orgID = o.ID
				}
				cs, err := svc.List(ctx, orgID)
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
	cmd.Flags().StringVar(&org, "org", "", "only this organization (ID or name)")
	return cmd
}

func clientShowCmd() *cobra.Command {
	return &cobra.Command{Use: "show ID", Short: "Show a client (never its secret)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withClients(cmd, func(ctx context.Context, _ *sqlstore.Store, svc *clients.Service) error {
				c, err := svc.Get(ctx, args[0])
				if err != nil {
					return err
				}
				w := cmd.OutOrStdout()
				fmt.Fprintf(w, "id: %s\norg: %s\nprincipal: %s\nname: %s\nauth_method: %s\nhas_secret: %v\njwks_uri: %s\ngrant_types: %v\npools: %v\naudiences: %v\nscopes: %v\nredirect_uris: %v\ndisabled: %v\n",
					c.ID, c.OrgID, c.PrincipalID, c.Name, c.AuthMethod, len(c.SecretDigest) > 0, c.JWKSURI, c.GrantTypes, c.Pools, c.Audiences, c.Scopes, c.RedirectURIs, c.Disabled)
				return nil
			})
		}}
}
