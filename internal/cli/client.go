package cli

import (
	"context"
	"errors"
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/opensts/sts/internal/api"
	"github.com/opensts/sts/internal/app"
	"github.com/opensts/sts/internal/clients"
	stsv1 "github.com/opensts/sts/internal/gen/sts/v1"
	"github.com/opensts/sts/internal/gen/sts/v1/stsv1connect"
	"github.com/opensts/sts/internal/oauth2"
)

// clientAdmin is what the client commands do, remotely or in the
// database; both go through the same lifecycle (internal/clients), so
// both refuse the same input with the same message.
type clientAdmin interface {
	create(ctx context.Context, req *stsv1.CreateClientRequest) (*stsv1.Client, string, error)
	get(ctx context.Context, id string) (*stsv1.Client, error)
	list(ctx context.Context, orgID string) ([]*stsv1.Client, error)
	update(ctx context.Context, req *stsv1.UpdateClientRequest) (*stsv1.Client, error)
	rotateSecret(ctx context.Context, id string) (*stsv1.Client, string, error)
	delete(ctx context.Context, id string) error
}

func (a *admin) clients(ctx context.Context) (clientAdmin, error) {
	if a.remote != nil {
		return remoteClients{stsv1connect.NewClientServiceClient(a.remote.http, a.remote.base, a.remote.opts()...)}, nil
	}
	pepper, err := patPepper(ctx, a.cfg, a.store)
	if err != nil {
		return nil, err
	}
	defer clear(pepper)
	svc, err := clients.NewService(a.store, pepper)
	if err != nil {
		return nil, err
	}
	svc.CheckJWKSURI = app.ClientJWKSURIRule(a.cfg)
	return directClients{svc}, nil
}

type remoteClients struct {
	c stsv1connect.ClientServiceClient
}

func (r remoteClients) create(ctx context.Context, req *stsv1.CreateClientRequest) (*stsv1.Client, string, error) {
	res, err := r.c.CreateClient(ctx, req)
	return res.GetClient(), res.GetClientSecret(), err
}

func (r remoteClients) get(ctx context.Context, id string) (*stsv1.Client, error) {
	res, err := r.c.GetClient(ctx, &stsv1.GetClientRequest{ClientId: id})
	return res.GetClient(), err
}

func (r remoteClients) list(ctx context.Context, orgID string) ([]*stsv1.Client, error) {
	res, err := r.c.ListClients(ctx, &stsv1.ListClientsRequest{OrganizationId: orgID})
	return res.GetClients(), err
}

func (r remoteClients) update(ctx context.Context, req *stsv1.UpdateClientRequest) (*stsv1.Client, error) {
	res, err := r.c.UpdateClient(ctx, req)
	return res.GetClient(), err
}

func (r remoteClients) rotateSecret(ctx context.Context, id string) (*stsv1.Client, string, error) {
	res, err := r.c.RotateClientSecret(ctx, &stsv1.RotateClientSecretRequest{ClientId: id})
	return res.GetClient(), res.GetClientSecret(), err
}

func (r remoteClients) delete(ctx context.Context, id string) error {
	_, err := r.c.DeleteClient(ctx, &stsv1.DeleteClientRequest{ClientId: id})
	return err
}

type directClients struct{ svc *clients.Service }

func (d directClients) create(ctx context.Context, req *stsv1.CreateClientRequest) (*stsv1.Client, string, error) {
	in := clients.CreateInput{OrgID: req.GetOrganizationId(), PrincipalID: req.GetPrincipalId(), Name: req.GetName(),
		AuthMethod: enumWord(req.GetAuthMethod()), GrantTypes: req.GetGrantTypes(), Pools: req.GetPools(),
		Audiences: req.GetAudiences(), Scopes: req.GetScopes(), RedirectURIs: req.GetRedirectUris(), RequirePKCE: req.RequirePkce,
		Keys: clients.Keys{JWKS: []byte(req.GetJwks()), JWKSURI: req.GetJwksUri()}}
	if req.GetJwks() == "" {
		in.Keys.JWKS = nil
	}
	c, sec, err := d.svc.Create(ctx, cliCaller, in)
	if err != nil {
		return nil, "", err
	}
	return api.ClientToProto(c), sec, nil
}

func (d directClients) get(ctx context.Context, id string) (*stsv1.Client, error) {
	c, err := d.svc.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	return api.ClientToProto(c), nil
}

func (d directClients) list(ctx context.Context, orgID string) ([]*stsv1.Client, error) {
	cs, err := d.svc.List(ctx, orgID)
	if err != nil {
		return nil, err
	}
	out := make([]*stsv1.Client, 0, len(cs))
	for _, c := range cs {
		out = append(out, api.ClientToProto(c))
	}
	return out, nil
}

func (d directClients) update(ctx context.Context, req *stsv1.UpdateClientRequest) (*stsv1.Client, error) {
	c, err := d.svc.Update(ctx, cliCaller, req.GetClientId(), api.ClientUpdateInput(req))
	if err != nil {
		return nil, err
	}
	return api.ClientToProto(c), nil
}

func (d directClients) rotateSecret(ctx context.Context, id string) (*stsv1.Client, string, error) {
	c, sec, err := d.svc.RotateSecret(ctx, cliCaller, id)
	if err != nil {
		return nil, "", err
	}
	return api.ClientToProto(c), sec, nil
}

func (d directClients) delete(ctx context.Context, id string) error {
	return d.svc.Delete(ctx, cliCaller, id)
}

// newClientCmd is `sts client create|list|show|update|enable|disable|
// rotate-secret|delete`.
func newClientCmd() *cobra.Command {
	cmd := adminNoun(&cobra.Command{Use: "client", Short: "Manage OAuth clients (a service account's credentials)"})
	var org, principal, jwksFile, authMethod string
	var public, requirePKCE bool
	req := &stsv1.CreateClientRequest{}
	create := &cobra.Command{
		Use: "create --org ORG --principal SA", Short: "Register a client; a client secret is printed once", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if org == "" || principal == "" {
				return usageError{errors.New("--org and --principal are required")}
			}
			set := cmd.Flags().Changed
			if public {
				if set("auth-method") && authMethod != oauth2.AuthMethodNone {
					return usageError{errors.New("--public is auth method none; drop --auth-method")}
				}
				authMethod = oauth2.AuthMethodNone
			}
			if len(req.RedirectUris) > 0 && !set("grant-type") {
				// A client registered with redirect URIs is a web or
				// native application: the browser flow (and, when it can
				// keep a secret, refresh tokens).
				req.GrantTypes = []string{oauth2.GrantTypeAuthorizationCode}
				if authMethod != oauth2.AuthMethodNone {
					req.GrantTypes = append(req.GrantTypes, oauth2.GrantTypeRefreshToken)
				}
			}
			m, ok := enumFromWord(stsv1.ClientAuthMethod(0).Descriptor(), authMethod)
			if !ok {
				return usageError{fmt.Errorf("--auth-method %q: want client_secret_basic, client_secret_post, private_key_jwt or none", authMethod)}
			}
			req.AuthMethod = stsv1.ClientAuthMethod(m)
			if set("require-pkce") {
				req.RequirePkce = &requirePKCE
			}
			if jwksFile != "" {
				b, err := readJWKSFile(jwksFile)
				if err != nil {
					return err
				}
				req.Jwks = string(b)
			}
			return runAdmin(cmd, func(ctx context.Context, a *admin) error {
				o, err := resolveOrg(ctx, a.orgs(), org)
				if err != nil {
					return err
				}
				p, err := resolvePrincipal(ctx, a, principal, o.GetId())
				if err != nil {
					return err
				}
				req.OrganizationId, req.PrincipalId = o.GetId(), p.GetId()
				cs, err := a.clients(ctx)
				if err != nil {
					return err
				}
				created, sec, err := cs.create(ctx, req)
				if err != nil {
					return err
				}
				// Shown once, after the commit (docs/security.md D-02).
				note := "created client " + printable(created.GetId()) + " (first line)"
				if sec != "" {
					note += "; its secret (second line) is shown once: store it now"
				}
				return printSecret(cmd, created, true, sec, note)
			})
		},
	}
	f := create.Flags()
	f.StringVar(&org, "org", "", "organization ID or name (required)")
	f.StringVar(&principal, "principal", "", "service-account principal tokens are issued to, ID or name (required)")
	f.StringVar(&req.Name, "name", "", "display name")
	f.StringVar(&authMethod, "auth-method", oauth2.AuthMethodClientSecretBasic, "client_secret_basic, client_secret_post, private_key_jwt or none (a public client: client_id, no secret)")
	f.StringVar(&jwksFile, "jwks-file", "", "public JWKS for private_key_jwt")
	f.StringVar(&req.JwksUri, "jwks-uri", "", "JWKS URI for private_key_jwt")
	f.StringSliceVar(&req.GrantTypes, "grant-type", []string{oauth2.GrantTypeClientCredentials, oauth2.GrantTypeRefreshToken}, "grant types the client may use (repeatable)")
	f.StringSliceVar(&req.Pools, "pool", nil, "pools the client may exchange against (repeatable)")
	f.StringSliceVar(&req.Audiences, "audience", nil, "audiences the client may obtain (repeatable)")
	scopesVar(f, &req.Scopes, "scope", "scopes the client may obtain (repeatable)")
	f.StringSliceVar(&req.RedirectUris, "redirect-uri", nil, "exact redirect URI of the authorization_code grant (https, or http to 127.0.0.1/localhost; repeatable); without --grant-type the client gets authorization_code (and refresh_token unless --public)")
	f.BoolVar(&public, "public", false, "a public client (auth method none): no secret, PKCE only")
	f.BoolVar(&requirePKCE, "require-pkce", true, requirePKCEUsage)
	cmd.AddCommand(create, clientListCmd(), clientShowCmd(), clientUpdateCmd(), clientEnableCmd(true), clientEnableCmd(false),
		clientRotateCmd(), clientDeleteCmd())
	return cmd
}

// requirePKCEUsage is the help of --require-pkce (docs/security.md T-90).
const requirePKCEUsage = "authorization requests must carry an S256 code_challenge; --require-pkce=false lets a confidential client omit PKCE (then a nonce is required with openid), refused for a public client"

// printSecret prints a client with its new secret: in JSON the client
// object with the secret beside it ({"client": …, "clientSecret": …}); in
// text bare values a line each, to be captured (docs/cli.md "Output"): the
// client ID when withID (as every create prints its ID), then the secret
// (as `pat create` prints its token). The note for the person goes to
// stderr.
func printSecret(cmd *cobra.Command, c *stsv1.Client, withID bool, secret, note string) error {
	w := cmd.OutOrStdout()
	if j, _ := outputJSON(cmd); j {
		v, err := apiJSON(c)
		if err != nil {
			return err
		}
		out := map[string]any{"client": v}
		if secret != "" {
			out["clientSecret"] = secret
		}
		return printJSON(w, out)
	}
	if withID {
		fmt.Fprintln(w, printable(c.GetId()))
	}
	if secret != "" {
		fmt.Fprintln(w, printable(secret))
	}
	fmt.Fprintln(cmd.ErrOrStderr(), note)
	return nil
}

func clientListCmd() *cobra.Command {
	var org string
	cmd := &cobra.Command{Use: "list [--org ORG]", Short: "List clients", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runAdmin(cmd, func(ctx context.Context, a *admin) error {
				orgID := ""
				if org != "" {
					o, err := resolveOrg(ctx, a.orgs(), org)
					if err != nil {
						return err
					}
					orgID = o.GetId()
				}
				cs, err := a.clients(ctx)
				if err != nil {
					return err
				}
				list, err := cs.list(ctx, orgID)
				if err != nil {
					return err
				}
				if j, _ := outputJSON(cmd); j {
					return printObjects(cmd.OutOrStdout(), list, false)
				}
				tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "ID\tORG\tNAME\tAUTH\tDISABLED")
				for _, c := range list {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%v\n", printable(c.GetId()), printable(c.GetOrganizationId()), printable(c.GetName()), enumWord(c.GetAuthMethod()), c.GetDisabled())
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
			return runAdmin(cmd, func(ctx context.Context, a *admin) error {
				cs, err := a.clients(ctx)
				if err != nil {
					return err
				}
				c, err := cs.get(ctx, args[0])
				if err != nil {
					return err
				}
				return printClient(cmd, c)
			})
		}}
}

// printClient prints one client: its JSON object, or one field a line.
func printClient(cmd *cobra.Command, c *stsv1.Client) error {
	if j, _ := outputJSON(cmd); j {
		return printObjects(cmd.OutOrStdout(), []*stsv1.Client{c}, true)
	}
	fmt.Fprintf(cmd.OutOrStdout(), "id: %s\norg: %s\nprincipal: %s\nname: %s\nauth_method: %s\nhas_secret: %v\njwks_uri: %s\ngrant_types: %v\npools: %v\naudiences: %v\nscopes: %v\nredirect_uris: %v\nrequire_pkce: %v\ndisabled: %v\n",
		printable(c.GetId()), printable(c.GetOrganizationId()), printable(c.GetPrincipalId()), printable(c.GetName()), enumWord(c.GetAuthMethod()), c.GetHasSecret(),
		printable(c.GetJwksUri()), printables(c.GetGrantTypes()), printables(c.GetPools()), printables(c.GetAudiences()), printables(c.GetScopes()),
		printables(c.GetRedirectUris()), c.GetRequirePkce(), c.GetDisabled())
	return nil
}
