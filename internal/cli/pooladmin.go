package cli

import (
	"context"
	"log/slog"
	"maps"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/opensts/sts/internal/api"
	"github.com/opensts/sts/internal/app"
	stsv1 "github.com/opensts/sts/internal/gen/sts/v1"
	"github.com/opensts/sts/internal/gen/sts/v1/stsv1connect"
	"github.com/opensts/sts/internal/pools"
	"github.com/opensts/sts/internal/storage"
)

// poolAdmin is what the pool and provider commands do: *pools.Service in
// the database, remotePools through sts.v1.PoolService. Both speak the
// stored records, so the commands print the same YAML and tables either
// way.
type poolAdmin interface {
	CreatePool(ctx context.Context, c pools.Caller, p storage.Pool) (storage.Pool, error)
	GetPool(ctx context.Context, id string) (storage.Pool, error)
	ListPools(ctx context.Context, orgID string) ([]storage.Pool, error)
	UpdatePool(ctx context.Context, c pools.Caller, id string, u pools.PoolUpdate) (storage.Pool, error)
	DeletePool(ctx context.Context, c pools.Caller, id string) (int, error)
	CreateProvider(ctx context.Context, c pools.Caller, p storage.Provider) (storage.Provider, error)
	GetProvider(ctx context.Context, poolID, id string) (storage.Provider, error)
	ListProviders(ctx context.Context, poolID string) ([]storage.Provider, error)
	UpdateProvider(ctx context.Context, c pools.Caller, poolID, id string, u pools.ProviderUpdate) (storage.Provider, error)
	DeleteProvider(ctx context.Context, c pools.Caller, poolID, id string) error
}

var _ poolAdmin = (*pools.Service)(nil)

// withPoolAdmin runs fn with the pool lifecycle of the command's mode.
func withPoolAdmin(cmd *cobra.Command, fn func(ctx context.Context, svc poolAdmin) error) error {
	return withPoolAdminOrg(cmd, nil, fn)
}

// withPoolAdminOrg is withPoolAdmin for a command with --org: when org is
// not nil it names an organization by ID or unique name, as every noun's
// --org does (docs/cli.md), and is replaced by that organization's ID
// before fn runs.
func withPoolAdminOrg(cmd *cobra.Command, org *string, fn func(ctx context.Context, svc poolAdmin) error) error {
	return runAdmin(cmd, func(ctx context.Context, a *admin) error {
		if org != nil {
			o, err := resolveOrg(ctx, a.orgs(), *org)
			if err != nil {
				return err
			}
			*org = o.GetId()
		}
		if a.remote != nil {
			return fn(ctx, remotePools{stsv1connect.NewPoolServiceClient(a.remote.http, a.remote.base, a.remote.opts()...)})
		}
		svc, err := pools.NewService(a.store, app.PoolLimits(a.cfg))
		if err != nil {
			return err
		}
		// The command prints what it did; the service's log lines are for
		// servers.
		svc.Logger = slog.New(slog.DiscardHandler)
		return fn(ctx, svc)
	})
}

type remotePools struct {
	c stsv1connect.PoolServiceClient
}

func (r remotePools) CreatePool(ctx context.Context, _ pools.Caller, p storage.Pool) (storage.Pool, error) {
	req := &stsv1.CreatePoolRequest{PoolId: p.ID, OrganizationId: p.OrgID, DisplayName: p.DisplayName, Disabled: p.Disabled,
		IdentityClaim: p.IdentityClaim, Condition: p.Condition,
		Mapping: &stsv1.PoolMapping{Subject: p.Mapping.Subject, Groups: p.Mapping.Groups, Attributes: p.Mapping.Attributes},
		Scopes:  p.Scopes, PrincipalId: p.PrincipalID, AllowUnauthenticated: p.AllowUnauthenticated,
		Audiences: p.Audiences, GoogleDefaultScopes: p.GoogleDefaultScopes}
	if p.MaxTokenLifetime != 0 {
		req.MaxTokenLifetime = durationpb.New(p.MaxTokenLifetime)
	}
	res, err := r.c.CreatePool(ctx, req)
	if err != nil {
		return storage.Pool{}, err
	}
	return poolFromProto(res.GetPool()), nil
}

func (r remotePools) GetPool(ctx context.Context, id string) (storage.Pool, error) {
	res, err := r.c.GetPool(ctx, &stsv1.GetPoolRequest{PoolId: id})
	if err != nil {
		return storage.Pool{}, err
	}
	return poolFromProto(res.GetPool()), nil
}

func (r remotePools) ListPools(ctx context.Context, orgID string) ([]storage.Pool, error) {
	res, err := r.c.ListPools(ctx, &stsv1.ListPoolsRequest{OrganizationId: orgID})
	if err != nil {
		return nil, err
	}
	out := make([]storage.Pool, 0, len(res.GetPools()))
	for _, p := range res.GetPools() {
		out = append(out, poolFromProto(p))
	}
	return out, nil
}

func (r remotePools) UpdatePool(ctx context.Context, _ pools.Caller, id string, u pools.PoolUpdate) (storage.Pool, error) {
	req := &stsv1.UpdatePoolRequest{PoolId: id, OrganizationId: u.OrgID, DisplayName: u.DisplayName, Disabled: u.Disabled,
		IdentityClaim: u.IdentityClaim, Condition: u.Condition, PrincipalId: u.PrincipalID, AllowUnauthenticated: u.AllowUnauthenticated,
		Scopes: stringList(u.Scopes), Audiences: stringList(u.Audiences), GoogleDefaultScopes: stringList(u.GoogleDefaultScopes)}
	if u.MaxTokenLifetime != nil {
		req.MaxTokenLifetime = durationpb.New(*u.MaxTokenLifetime)
	}
	if u.Subject != nil || u.Groups != nil || u.Attributes != nil || u.AttributeEdits != nil {
		req.Mapping = &stsv1.PoolMappingUpdate{Subject: u.Subject, Groups: u.Groups}
		attrs := u.Attributes
		if u.AttributeEdits != nil {
			// The API replaces the attribute map: the edits (NAME=CEL,
			// NAME= removes) apply to the pool as read now.
			cur, err := r.GetPool(ctx, id)
			if err != nil {
				return storage.Pool{}, err
			}
			m := maps.Clone(cur.Mapping.Attributes)
			if attrs != nil {
				m = maps.Clone(*attrs)
			}
			if m == nil {
				m = map[string]string{}
			}
			for k, v := range u.AttributeEdits {
				if v == "" {
					delete(m, k)
				} else {
					m[k] = v
				}
			}
			attrs = &m
		}
		if attrs != nil {
			req.Mapping.Attributes = &stsv1.StringMap{Values: *attrs}
		}
	}
	res, err := r.c.UpdatePool(ctx, req)
	if err != nil {
		return storage.Pool{}, err
	}
	return poolFromProto(res.GetPool()), nil
}

func (r remotePools) DeletePool(ctx context.Context, _ pools.Caller, id string) (int, error) {
	res, err := r.c.DeletePool(ctx, &stsv1.DeletePoolRequest{PoolId: id})
	return int(res.GetDeletedProviders()), err
}

func (r remotePools) CreateProvider(ctx context.Context, _ pools.Caller, p storage.Provider) (storage.Provider, error) {
	res, err := r.c.CreateProvider(ctx, &stsv1.CreateProviderRequest{PoolId: p.PoolID, ProviderId: p.ID, Issuer: p.Issuer,
		Audiences: p.Audiences, JwksUri: p.JWKSURI, Jwks: string(p.JWKS), Algorithms: p.Algorithms, OneTimeUse: p.OneTimeUse, Disabled: p.Disabled,
		AllowMissingKid: p.AllowMissingKID, AllowMultipleAudiences: p.AllowMultipleAudiences})
	if err != nil {
		return storage.Provider{}, err
	}
	return providerFromProto(res.GetProvider()), nil
}

func (r remotePools) GetProvider(ctx context.Context, poolID, id string) (storage.Provider, error) {
	res, err := r.c.GetProvider(ctx, &stsv1.GetProviderRequest{PoolId: poolID, ProviderId: id})
	if err != nil {
		return storage.Provider{}, err
	}
	return providerFromProto(res.GetProvider()), nil
}

func (r remotePools) ListProviders(ctx context.Context, poolID string) ([]storage.Provider, error) {
	res, err := r.c.ListProviders(ctx, &stsv1.ListProvidersRequest{PoolId: poolID})
	if err != nil {
		return nil, err
	}
	out := make([]storage.Provider, 0, len(res.GetProviders()))
	for _, p := range res.GetProviders() {
		out = append(out, providerFromProto(p))
	}
	return out, nil
}

func (r remotePools) UpdateProvider(ctx context.Context, _ pools.Caller, poolID, id string, u pools.ProviderUpdate) (storage.Provider, error) {
	req := &stsv1.UpdateProviderRequest{PoolId: poolID, ProviderId: id, Issuer: u.Issuer, JwksUri: u.JWKSURI,
		Audiences: stringList(u.Audiences), Algorithms: stringList(u.Algorithms), OneTimeUse: u.OneTimeUse, Disabled: u.Disabled,
		AllowMissingKid: u.AllowMissingKID, AllowMultipleAudiences: u.AllowMultipleAudiences}
	if u.JWKS != nil {
		s := string(*u.JWKS)
		req.Jwks = &s
	}
	res, err := r.c.UpdateProvider(ctx, req)
	if err != nil {
		return storage.Provider{}, err
	}
	return providerFromProto(res.GetProvider()), nil
}

func (r remotePools) DeleteProvider(ctx context.Context, _ pools.Caller, poolID, id string) error {
	_, err := r.c.DeleteProvider(ctx, &stsv1.DeleteProviderRequest{PoolId: poolID, ProviderId: id})
	return err
}

func stringList(v *[]string) *stsv1.StringList {
	if v == nil {
		return nil
	}
	return &stsv1.StringList{Values: *v}
}

// poolFromProto is the record view of an API pool (the commands print
// records); api.PoolToProto is its inverse.
func poolFromProto(p *stsv1.Pool) storage.Pool {
	out := storage.Pool{ID: p.GetId(), OrgID: p.GetOrganizationId(), DisplayName: p.GetDisplayName(), Disabled: p.GetDisabled(),
		IdentityClaim: p.GetIdentityClaim(), Condition: p.GetCondition(), Scopes: p.GetScopes(),
		MaxTokenLifetime: p.GetMaxTokenLifetime().AsDuration(), PrincipalID: p.GetPrincipalId(), AllowUnauthenticated: p.GetAllowUnauthenticated(),
		Audiences: p.GetAudiences(), GoogleDefaultScopes: p.GetGoogleDefaultScopes()}
	out.Mapping.Subject, out.Mapping.Groups, out.Mapping.Attributes = p.GetMapping().GetSubject(), p.GetMapping().GetGroups(), p.GetMapping().GetAttributes()
	if p.GetCreatedAt() != nil {
		out.CreatedAt = p.GetCreatedAt().AsTime()
	}
	if p.GetUpdatedAt() != nil {
		out.UpdatedAt = p.GetUpdatedAt().AsTime()
	}
	return out
}

// providerFromProto is the record view of an API provider.
func providerFromProto(p *stsv1.Provider) storage.Provider {
	out := storage.Provider{PoolID: p.GetPoolId(), ID: p.GetId(), Issuer: p.GetIssuer(), Audiences: p.GetAudiences(),
		JWKSURI: p.GetJwksUri(), Algorithms: p.GetAlgorithms(), OneTimeUse: p.GetOneTimeUse(), Disabled: p.GetDisabled(),
		AllowMissingKID: p.GetAllowMissingKid(), AllowMultipleAudiences: p.GetAllowMultipleAudiences()}
	if p.GetJwks() != "" {
		out.JWKS = []byte(p.GetJwks())
	}
	if p.GetCreatedAt() != nil {
		out.CreatedAt = p.GetCreatedAt().AsTime()
	}
	if p.GetUpdatedAt() != nil {
		out.UpdatedAt = p.GetUpdatedAt().AsTime()
	}
	return out
}

// printPoolsJSON prints pools as the API's objects.
func printPoolsJSON(cmd *cobra.Command, list []storage.Pool, one bool) error {
	out := make([]*stsv1.Pool, 0, len(list))
	for _, p := range list {
		out = append(out, api.PoolToProto(p))
	}
	return printObjects(cmd.OutOrStdout(), out, one)
}

// printProvidersJSON prints providers as the API's objects.
func printProvidersJSON(cmd *cobra.Command, list []storage.Provider, one bool) error {
	out := make([]*stsv1.Provider, 0, len(list))
	for _, p := range list {
		out = append(out, api.ProviderToProto(p))
	}
	return printObjects(cmd.OutOrStdout(), out, one)
}
