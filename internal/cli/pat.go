package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/opensts/sts/internal/api"
	"github.com/opensts/sts/internal/app"
	"github.com/opensts/sts/internal/config"
	gitpodv1 "github.com/opensts/sts/internal/gen/gitpod/v1"
	"github.com/opensts/sts/internal/gen/gitpod/v1/gitpodv1connect"
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

// patAdmin is what the pat commands do, remotely (gitpod.v1.UserService,
// as an administrator of the owner's organization) or in the database.
type patAdmin interface {
	create(ctx context.Context, ownerID, desc string, scopes []string, expires time.Time) (*gitpodv1.PersonalAccessToken, string, error)
	list(ctx context.Context, ownerID string) ([]*gitpodv1.PersonalAccessToken, error)
	delete(ctx context.Context, id string) error
}

func (a *admin) pats(ctx context.Context) (patAdmin, error) {
	if a.remote != nil {
		return remotePATs{gitpodv1connect.NewUserServiceClient(a.remote.http, a.remote.base, a.remote.opts()...)}, nil
	}
	svc, err := a.patService(ctx)
	if err != nil {
		return nil, err
	}
	return directPATs{a.store, svc}, nil
}

type remotePATs struct {
	c gitpodv1connect.UserServiceClient
}

func (r remotePATs) create(ctx context.Context, ownerID, desc string, scopes []string, expires time.Time) (*gitpodv1.PersonalAccessToken, string, error) {
	if len(scopes) == 0 {
		// The API gives a token without scopes full access; the CLI's
		// "none" means no access, so it is refused rather than widened.
		return nil, "", usageError{errors.New(`--scope is required with --server (use --scope '*' for full access)`)}
	}
	res, err := r.c.CreatePersonalAccessToken(ctx, &gitpodv1.CreatePersonalAccessTokenRequest{UserId: ownerID, Description: desc,
		Scopes: scopes, ExpiresAt: timestamppb.New(expires)})
	return res.GetPersonalAccessToken(), res.GetToken(), err
}

func (r remotePATs) list(ctx context.Context, ownerID string) ([]*gitpodv1.PersonalAccessToken, error) {
	var out []*gitpodv1.PersonalAccessToken
	req := &gitpodv1.ListPersonalAccessTokensRequest{Filter: &gitpodv1.ListPersonalAccessTokensRequest_Filter{UserIds: []string{ownerID}},
		Pagination: &gitpodv1.PaginationRequest{PageSize: 100}}
	for {
		res, err := r.c.ListPersonalAccessTokens(ctx, req)
		if err != nil {
			return nil, err
		}
		out = append(out, res.GetPersonalAccessTokens()...)
		next := res.GetPagination().GetNextToken()
		if next == "" {
			return out, nil
		}
		req.Pagination.Token = next
	}
}

func (r remotePATs) delete(ctx context.Context, id string) error {
	_, err := r.c.DeletePersonalAccessToken(ctx, &gitpodv1.DeletePersonalAccessTokenRequest{PersonalAccessTokenId: id})
	return err
}

type directPATs struct {
	store *sqlstore.Store
	svc   *pat.Service
}

func (d directPATs) create(ctx context.Context, ownerID, desc string, scopes []string, expires time.Time) (*gitpodv1.PersonalAccessToken, string, error) {
	p, err := d.store.GetPrincipal(ctx, ownerID)
	if err != nil {
		return nil, "", notFound(err, "principal")
	}
	t, secret, err := d.svc.Create(ctx, cliCaller, pat.CreateInput{OwnerID: ownerID, Description: desc, Scopes: scopes, ExpiresAt: expires})
	if err != nil {
		return nil, "", err
	}
	return api.PATToProto(t, p.Kind), secret, nil
}

func (d directPATs) list(ctx context.Context, ownerID string) ([]*gitpodv1.PersonalAccessToken, error) {
	p, err := d.store.GetPrincipal(ctx, ownerID)
	if err != nil {
		return nil, notFound(err, "principal")
	}
	list, err := d.store.ListPATs(ctx, ownerID)
	if err != nil {
		return nil, fmt.Errorf("storage: %w", err)
	}
	out := make([]*gitpodv1.PersonalAccessToken, 0, len(list))
	for _, t := range list {
		out = append(out, api.PATToProto(t, p.Kind))
	}
	return out, nil
}

func (d directPATs) delete(ctx context.Context, id string) error {
	return d.svc.Delete(ctx, cliCaller, "", id)
}

func newPATCmd() *cobra.Command {
	cmd := adminNoun(&cobra.Command{Use: "pat", Short: "Manage personal access tokens"})
	cmd.AddCommand(newPATCreateCmd(), newPATListCmd(), newPATRevokeCmd())
	return cmd
}

func newPATCreateCmd() *cobra.Command {
	var user, org, desc, expires string
	var scopes []string
	c := &cobra.Command{
		Use:   "create --user PRINCIPAL --scope SCOPE…",
		Short: "Create a personal access token and print its secret once",
		Long: `Create a personal access token for a principal and print the secret on
stdout, once: only its digest is stored. Scopes: "*" (full access),
identity:read, identity:id_token, tokens:read, tokens:write, sts:admin;
none means "No Access" (with --server at least one --scope is required).`,
		Example: `  sts pat create --user admin --expires-in 30d --scope '*' --scope sts:admin
  export STS_TOKEN=$(sts pat create --user ada --expires-in 7d --scope identity:read)`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			life, err := parseLifetime(expires)
			if err != nil {
				return usageError{err}
			}
			return runAdmin(cmd, func(ctx context.Context, a *admin) error {
				p, err := resolvePrincipal(ctx, a, user, org)
				if err != nil {
					return err
				}
				pats, err := a.pats(ctx)
				if err != nil {
					return err
				}
				t, secret, err := pats.create(ctx, p.GetId(), desc, scopes, time.Now().Add(life))
				if err != nil {
					return err
				}
				if j, _ := outputJSON(cmd); j {
					v, err := apiJSON(t)
					if err != nil {
						return err
					}
					return printJSON(cmd.OutOrStdout(), map[string]any{"personalAccessToken": v, "token": secret})
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "created personal access token %s for %s, expires %s; store the secret now, it is not shown again\n",
					printable(t.GetId()), printable(p.GetName()), t.GetExpiresAt().AsTime().Format(time.RFC3339))
				fmt.Fprintln(cmd.OutOrStdout(), printable(secret))
				return nil
			})
		},
	}
	c.Flags().StringVar(&user, "user", "", "owner: principal ID or unique name (required)")
	c.Flags().StringVar(&org, "org", "", "organization ID or name, to disambiguate --user")
	c.Flags().StringVar(&desc, "description", "", "description")
	c.Flags().StringVar(&expires, "expires-in", "30d", "lifetime, 1d to 366d (e.g. 30d, 48h)")
	scopesVar(c.Flags(), &scopes, "scope", "scope to grant (repeatable or comma-separated)")
	_ = c.MarkFlagRequired("user")
	return c
}

func newPATListCmd() *cobra.Command {
	var user, org string
	c := &cobra.Command{
		Use:   "list --user PRINCIPAL",
		Short: "List a principal's personal access tokens",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runAdmin(cmd, func(ctx context.Context, a *admin) error {
				p, err := resolvePrincipal(ctx, a, user, org)
				if err != nil {
					return err
				}
				pats, err := a.pats(ctx)
				if err != nil {
					return err
				}
				list, err := pats.list(ctx, p.GetId())
				if err != nil {
					return err
				}
				if j, _ := outputJSON(cmd); j {
					return printObjects(cmd.OutOrStdout(), list, false)
				}
				w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
				fmt.Fprintln(w, "ID\tDESCRIPTION\tSCOPES\tEXPIRES\tLAST USED")
				for _, t := range list {
					last := "never"
					if t.GetLastUsed() != nil {
						last = stampPB(t.GetLastUsed())
					}
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", printable(t.GetId()), printable(t.GetDescription()), printable(strings.Join(t.GetScopes(), " ")), stampPB(t.GetExpiresAt()), last)
				}
				return w.Flush()
			})
		},
	}
	c.Flags().StringVar(&user, "user", "", "owner: principal ID or unique name (required)")
	c.Flags().StringVar(&org, "org", "", "organization ID or name, to disambiguate --user")
	_ = c.MarkFlagRequired("user")
	return c
}

func newPATRevokeCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "revoke <token-id>",
		Aliases: []string{"delete"},
		Short:   "Delete a personal access token; it stops working at once",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runAdmin(cmd, func(ctx context.Context, a *admin) error {
				pats, err := a.pats(ctx)
				if err != nil {
					return err
				}
				if err := pats.delete(ctx, args[0]); err != nil {
					return err
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "revoked personal access token %s\n", args[0])
				return nil
			})
		},
	}
}
