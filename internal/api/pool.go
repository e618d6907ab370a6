package api

import (
	"context"
	"maps"
	"strconv"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	stsv1 "github.com/opensts/sts/internal/gen/sts/v1"
	"github.com/opensts/sts/internal/gen/sts/v1/stsv1connect"
	"github.com/opensts/sts/internal/pat"
	"github.com/opensts/sts/internal/policy"
	"github.com/opensts/sts/internal/pools"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/sts"
)

// PoolService implements sts.v1.PoolService over the shared pool
// lifecycle (internal/pools), the one `sts pool …` and `sts provider …`
// use too. Every method needs sts:admin and acts within the caller's
// organization (any, for an instance administrator; a provider belongs to
// its pool's organization; docs/authorization.md). A pool bound to an
// instance administrator is created, changed or deleted, with its
// providers, by an instance administrator only (mayBind). Pools and
// providers are one service: a provider exists only inside its pool, goes
// with it, and the shared-issuer rule spans both.
type PoolService struct{ h *Handler }

var _ stsv1connect.PoolServiceHandler = (*PoolService)(nil)

var errNoPools = sts.Errorf(sts.Unavailable, "pool service unavailable")

// maxPoolMessageBytes caps a decoded PoolService message: room for an
// uploaded JWKS at its cap (256 KiB, as jwks_file) plus the other fields.
// The request body on the wire is still capped by the server
// (http.max_body_bytes, 64 KiB by default).
const maxPoolMessageBytes = pools.MaxJWKSBytes + maxMessageBytes

// admin authorizes the caller and returns the lifecycle service and the
// caller for the audit trail.
func (s *PoolService) admin(ctx context.Context) (*pools.Service, pools.Caller, *Identity, error) {
	id, err := require(ctx, pat.ScopeAdmin)
	if err != nil {
		return nil, pools.Caller{}, nil, err
	}
	if s.h.Pools == nil {
		return nil, pools.Caller{}, nil, errNoPools
	}
	c := id.caller()
	return s.h.Pools, c, id, nil
}

// pool authorizes the caller for pool poolID (and its providers): it must
// be of the caller's organization (any, for an instance administrator),
// else the pool reads as not found.
func (s *PoolService) pool(ctx context.Context, poolID string) (*pools.Service, pools.Caller, *Identity, storage.Pool, error) {
	svc, caller, id, err := s.admin(ctx)
	if err != nil {
		return nil, caller, nil, storage.Pool{}, err
	}
	p, err := svc.GetPool(ctx, poolID)
	if err != nil {
		return nil, caller, nil, storage.Pool{}, err
	}
	if err := s.h.inOrg(ctx, id, p.OrgID, "pool "+strconv.Quote(poolID)); err != nil {
		return nil, caller, nil, storage.Pool{}, err
	}
	return svc, caller, id, p, nil
}

// change authorizes a change to pool poolID or its providers: the rule of
// pool, and the pool's principal must be one the caller may act as
// (mayBind), since what the pool trusts decides who obtains its tokens.
// The context it returns, for the change itself, carries the
// authorization as a guard the pool service applies again to the pool's
// row as the change writes it (docs/security.md A-85): for anyone but an
// instance administrator, the pool must still be of the organization and
// bound to the principal it was authorized with.
func (s *PoolService) change(ctx context.Context, poolID string) (context.Context, *pools.Service, pools.Caller, *Identity, storage.Pool, error) {
	svc, caller, id, p, err := s.pool(ctx, poolID)
	if err != nil {
		return ctx, nil, caller, nil, storage.Pool{}, err
	}
	if err := s.h.mayBind(ctx, id, p.PrincipalID); err != nil {
		return ctx, nil, caller, nil, storage.Pool{}, err
	}
	root, err := s.h.isInstanceAdmin(ctx, id)
	if err != nil {
		return ctx, nil, caller, nil, storage.Pool{}, err
	}
	if !root {
		ctx = pools.WithGuard(ctx, stillAuthorized(p))
	}
	return ctx, svc, caller, id, p, nil
}

// stillAuthorized is the guard of a change authorized on pool p: the pool
// the change writes must be of p's organization (else it reads as
// missing, as another organization's pool does) and bound to p's
// principal (else the caller's mayBind no longer speaks for it).
func stillAuthorized(p storage.Pool) pools.Guard {
	return func(cur storage.Pool) error {
		switch {
		case cur.OrgID != p.OrgID:
			return sts.Errorf(sts.NotFound, "pool %s not found", strconv.Quote(p.ID))
		case cur.PrincipalID != p.PrincipalID:
			return sts.Errorf(sts.FailedPrecondition, "pool %s was bound to another principal while this request was checked; read it again and retry", strconv.Quote(p.ID))
		}
		return nil
	}
}

// bindGuard returns ctx carrying, for a caller that is not an instance
// administrator, mayBind again on the principal's row as the pool that
// binds it is written: the instance role granted to the principal since
// the call's read would let the pool's tokens act as an instance
// administrator (docs/security.md A-97).
func (s *PoolService) bindGuard(ctx context.Context, id *Identity) (context.Context, error) {
	root, err := s.h.isInstanceAdmin(ctx, id)
	if err != nil || root {
		return ctx, err
	}
	return pools.WithPrincipalGuard(ctx, s.h.notInstanceAdmin), nil
}

// CreatePool creates a pool.
func (s *PoolService) CreatePool(ctx context.Context, req *stsv1.CreatePoolRequest) (*stsv1.CreatePoolResponse, error) {
	svc, caller, id, err := s.admin(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.h.inOrg(ctx, id, req.GetOrganizationId(), "organization"); err != nil {
		return nil, err
	}
	if err := s.h.mayBind(ctx, id, req.GetPrincipalId()); err != nil {
		return nil, err
	}
	if ctx, err = s.bindGuard(ctx, id); err != nil {
		return nil, err
	}
	lifetime, err := durationFromProto(req.GetMaxTokenLifetime())
	if err != nil {
		return nil, err
	}
	m := req.GetMapping()
	p, err := svc.CreatePool(ctx, caller, storage.Pool{
		ID: req.GetPoolId(), OrgID: req.GetOrganizationId(), DisplayName: req.GetDisplayName(), Disabled: req.GetDisabled(),
		IdentityClaim: req.GetIdentityClaim(), Condition: req.GetCondition(),
		Mapping:          storage.Mapping{Subject: m.GetSubject(), Groups: m.GetGroups(), Attributes: nonEmptyMap(m.GetAttributes())},
		Scopes:           req.GetScopes(),
		MaxTokenLifetime: lifetime, PrincipalID: req.GetPrincipalId(), AllowUnauthenticated: req.GetAllowUnauthenticated(),
		Audiences: nonEmpty(req.GetAudiences()), GoogleDefaultScopes: nonEmpty(req.GetGoogleDefaultScopes()),
	})
	if err != nil {
		return nil, err
	}
	return &stsv1.CreatePoolResponse{Pool: poolToProto(p)}, nil
}

// GetPool returns a pool and its providers.
func (s *PoolService) GetPool(ctx context.Context, req *stsv1.GetPoolRequest) (*stsv1.GetPoolResponse, error) {
	svc, _, _, p, err := s.pool(ctx, req.GetPoolId())
	if err != nil {
		return nil, err
	}
	providers, err := svc.ListProviders(ctx, p.ID)
	if err != nil {
		return nil, err
	}
	return &stsv1.GetPoolResponse{Pool: poolToProto(p), Providers: providersToProto(providers)}, nil
}

// ListPools lists the pools of one organization, or all.
func (s *PoolService) ListPools(ctx context.Context, req *stsv1.ListPoolsRequest) (*stsv1.ListPoolsResponse, error) {
	svc, _, id, err := s.admin(ctx)
	if err != nil {
		return nil, err
	}
	org, err := s.h.listOrg(ctx, id, req.GetOrganizationId())
	if err != nil {
		return nil, err
	}
	list, err := svc.ListPools(ctx, org)
	if err != nil {
		return nil, err
	}
	out := &stsv1.ListPoolsResponse{Pools: make([]*stsv1.Pool, 0, len(list))}
	for _, p := range list {
		out.Pools = append(out.Pools, poolToProto(p))
	}
	return out, nil
}

// UpdatePool changes the fields set in the request.
func (s *PoolService) UpdatePool(ctx context.Context, req *stsv1.UpdatePoolRequest) (*stsv1.UpdatePoolResponse, error) {
	ctx, svc, caller, id, _, err := s.change(ctx, req.GetPoolId())
	if err != nil {
		return nil, err
	}
	if req.OrganizationId != nil {
		// Moving a pool needs the target organization too.
		if err := s.h.inOrg(ctx, id, req.GetOrganizationId(), "organization"); err != nil {
			return nil, err
		}
	}
	if req.PrincipalId != nil {
		if err := s.h.mayBind(ctx, id, req.GetPrincipalId()); err != nil {
			return nil, err
		}
		if ctx, err = s.bindGuard(ctx, id); err != nil {
			return nil, err
		}
	}
	u := pools.PoolUpdate{
		OrgID: req.OrganizationId, DisplayName: req.DisplayName, Disabled: req.Disabled,
		IdentityClaim: req.IdentityClaim, Condition: req.Condition, Scopes: stringList(req.GetScopes()),
		PrincipalID: req.PrincipalId, AllowUnauthenticated: req.AllowUnauthenticated,
		Audiences: stringList(req.GetAudiences()), GoogleDefaultScopes: stringList(req.GetGoogleDefaultScopes()),
	}
	if m := req.GetMapping(); m != nil {
		u.Subject, u.Groups = m.Subject, m.Groups
		if a := m.GetAttributes(); a != nil {
			v := maps.Clone(a.GetValues())
			u.Attributes = &v
		}
	}
	if req.GetMaxTokenLifetime() != nil {
		d, err := durationFromProto(req.GetMaxTokenLifetime())
		if err != nil {
			return nil, err
		}
		u.MaxTokenLifetime = &d
	}
	p, err := svc.UpdatePool(ctx, caller, req.GetPoolId(), u)
	if err != nil {
		return nil, err
	}
	return &stsv1.UpdatePoolResponse{Pool: poolToProto(p)}, nil
}

// DeletePool removes a pool and its providers.
func (s *PoolService) DeletePool(ctx context.Context, req *stsv1.DeletePoolRequest) (*stsv1.DeletePoolResponse, error) {
	ctx, svc, caller, _, _, err := s.change(ctx, req.GetPoolId())
	if err != nil {
		return nil, err
	}
	n, err := svc.DeletePool(ctx, caller, req.GetPoolId())
	if err != nil {
		return nil, err
	}
	return &stsv1.DeletePoolResponse{DeletedProviders: int32(min(n, 1<<30))}, nil
}

// CreateProvider adds a trusted issuer to a pool.
func (s *PoolService) CreateProvider(ctx context.Context, req *stsv1.CreateProviderRequest) (*stsv1.CreateProviderResponse, error) {
	ctx, svc, caller, _, _, err := s.change(ctx, req.GetPoolId())
	if err != nil {
		return nil, err
	}
	p, err := svc.CreateProvider(ctx, caller, storage.Provider{
		PoolID: req.GetPoolId(), ID: req.GetProviderId(), Issuer: req.GetIssuer(), Audiences: req.GetAudiences(),
		JWKSURI: req.GetJwksUri(), JWKS: jwksBytes(req.GetJwks()), Algorithms: req.GetAlgorithms(),
		OneTimeUse: req.GetOneTimeUse(), Disabled: req.GetDisabled(),
		AllowMissingKID: req.GetAllowMissingKid(), AllowMultipleAudiences: req.GetAllowMultipleAudiences(),
	})
	if err != nil {
		return nil, err
	}
	return &stsv1.CreateProviderResponse{Provider: providerToProto(p)}, nil
}

// GetProvider returns one provider.
func (s *PoolService) GetProvider(ctx context.Context, req *stsv1.GetProviderRequest) (*stsv1.GetProviderResponse, error) {
	svc, _, _, _, err := s.pool(ctx, req.GetPoolId())
	if err != nil {
		return nil, err
	}
	p, err := svc.GetProvider(ctx, req.GetPoolId(), req.GetProviderId())
	if err != nil {
		return nil, err
	}
	return &stsv1.GetProviderResponse{Provider: providerToProto(p)}, nil
}

// ListProviders lists the providers of one pool, or all.
func (s *PoolService) ListProviders(ctx context.Context, req *stsv1.ListProvidersRequest) (*stsv1.ListProvidersResponse, error) {
	svc, _, id, err := s.admin(ctx)
	if err != nil {
		return nil, err
	}
	if req.GetPoolId() != "" {
		if _, _, _, _, err := s.pool(ctx, req.GetPoolId()); err != nil {
			return nil, err
		}
	}
	list, err := svc.ListProviders(ctx, req.GetPoolId())
	if err != nil {
		return nil, err
	}
	if req.GetPoolId() == "" {
		if list, err = s.ownProviders(ctx, svc, id, list); err != nil {
			return nil, err
		}
	}
	return &stsv1.ListProvidersResponse{Providers: providersToProto(list)}, nil
}

// UpdateProvider changes the fields set in the request.
func (s *PoolService) UpdateProvider(ctx context.Context, req *stsv1.UpdateProviderRequest) (*stsv1.UpdateProviderResponse, error) {
	ctx, svc, caller, _, _, err := s.change(ctx, req.GetPoolId())
	if err != nil {
		return nil, err
	}
	u := pools.ProviderUpdate{
		Issuer: req.Issuer, Audiences: stringList(req.GetAudiences()), JWKSURI: req.JwksUri,
		Algorithms: stringList(req.GetAlgorithms()), OneTimeUse: req.OneTimeUse, Disabled: req.Disabled,
		AllowMissingKID: req.AllowMissingKid, AllowMultipleAudiences: req.AllowMultipleAudiences,
	}
	if req.Jwks != nil {
		b := jwksBytes(*req.Jwks)
		u.JWKS = &b
	}
	p, err := svc.UpdateProvider(ctx, caller, req.GetPoolId(), req.GetProviderId(), u)
	if err != nil {
		return nil, err
	}
	return &stsv1.UpdateProviderResponse{Provider: providerToProto(p)}, nil
}

// DeleteProvider removes a provider from its pool.
func (s *PoolService) DeleteProvider(ctx context.Context, req *stsv1.DeleteProviderRequest) (*stsv1.DeleteProviderResponse, error) {
	ctx, svc, caller, _, _, err := s.change(ctx, req.GetPoolId())
	if err != nil {
		return nil, err
	}
	if err := svc.DeleteProvider(ctx, caller, req.GetPoolId(), req.GetProviderId()); err != nil {
		return nil, err
	}
	return &stsv1.DeleteProviderResponse{}, nil
}

// TestPool is the dry run: the trace of one evaluation, nothing minted.
func (s *PoolService) TestPool(ctx context.Context, req *stsv1.TestPoolRequest) (*stsv1.TestPoolResponse, error) {
	svc, _, _, _, err := s.pool(ctx, req.GetPoolId())
	if err != nil {
		return nil, err
	}
	res, err := svc.TestPool(ctx, pools.TestInput{
		PoolID: req.GetPoolId(), ProviderID: req.GetProviderId(), SubjectToken: req.GetSubjectToken(),
		Request: policy.Request{Audiences: req.GetAudiences(), Resources: req.GetResources(), Scopes: req.GetScopes(), ClientID: req.GetClientId()},
	})
	if err != nil {
		return nil, err
	}
	out := &stsv1.TestPoolResponse{
		Allowed: res.Allowed, Reason: res.Reason, ProviderId: res.ProviderID,
		Identity: res.Identity, Subject: res.Subject, Groups: res.Groups, Attributes: res.Attributes,
		Steps: make([]*stsv1.TestPoolStep, 0, len(res.Steps)),
	}
	for _, st := range res.Steps {
		out.Steps = append(out.Steps, &stsv1.TestPoolStep{Name: st.Name, Ok: st.OK, Expression: st.Expression, Detail: st.Detail})
	}
	return out, nil
}

// ownProviders keeps the providers of pools the caller may see: all for
// an instance administrator, its organization's for anyone else.
func (s *PoolService) ownProviders(ctx context.Context, svc *pools.Service, id *Identity, list []storage.Provider) ([]storage.Provider, error) {
	org, err := s.h.listOrg(ctx, id, "")
	if err != nil || org == "" {
		return list, err
	}
	own, err := svc.ListPools(ctx, org)
	if err != nil {
		return nil, err
	}
	ids := make(map[string]bool, len(own))
	for _, p := range own {
		ids[p.ID] = true
	}
	out := list[:0]
	for _, p := range list {
		if ids[p.PoolID] {
			out = append(out, p)
		}
	}
	return out, nil
}

// stringList is a presence-carrying list: nil keeps, set (even empty)
// replaces.
// nonEmpty is nil for an empty list, as storage keeps "none".
func nonEmpty(l []string) []string {
	if len(l) == 0 {
		return nil
	}
	return l
}

func stringList(l *stsv1.StringList) *[]string {
	if l == nil {
		return nil
	}
	v := l.GetValues()
	return &v
}

// durationFromProto is nil → 0; an invalid Duration is bad input.
func durationFromProto(d *durationpb.Duration) (time.Duration, error) {
	if d == nil {
		return 0, nil
	}
	if err := d.CheckValid(); err != nil {
		return 0, sts.Errorf(sts.Invalid, "max_token_lifetime: %v", err)
	}
	return d.AsDuration(), nil
}

func nonEmptyMap(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	return maps.Clone(m)
}

func jwksBytes(s string) []byte {
	if s == "" {
		return nil
	}
	return []byte(s)
}

// poolToProto is the read model of a pool; a zero max_token_lifetime
// (the server default) is left unset.
func poolToProto(p storage.Pool) *stsv1.Pool {
	out := &stsv1.Pool{
		Id: p.ID, OrganizationId: p.OrgID, DisplayName: p.DisplayName, Disabled: p.Disabled,
		IdentityClaim: p.IdentityClaim, Condition: p.Condition,
		Mapping: &stsv1.PoolMapping{Subject: p.Mapping.Subject, Groups: p.Mapping.Groups, Attributes: maps.Clone(p.Mapping.Attributes)},
		Scopes:  p.Scopes, PrincipalId: p.PrincipalID, AllowUnauthenticated: p.AllowUnauthenticated,
		CreatedAt: ts(p.CreatedAt), UpdatedAt: ts(p.UpdatedAt),
		Audiences: p.Audiences, GoogleDefaultScopes: p.GoogleDefaultScopes,
	}
	if p.MaxTokenLifetime != 0 {
		out.MaxTokenLifetime = durationpb.New(p.MaxTokenLifetime)
	}
	return out
}

func providerToProto(p storage.Provider) *stsv1.Provider {
	return &stsv1.Provider{
		PoolId: p.PoolID, Id: p.ID, Issuer: p.Issuer, Audiences: p.Audiences, JwksUri: p.JWKSURI, Jwks: string(p.JWKS),
		Algorithms: p.Algorithms, OneTimeUse: p.OneTimeUse, Disabled: p.Disabled,
		AllowMissingKid: p.AllowMissingKID, AllowMultipleAudiences: p.AllowMultipleAudiences,
		CreatedAt: ts(p.CreatedAt), UpdatedAt: ts(p.UpdatedAt),
	}
}

func providersToProto(list []storage.Provider) []*stsv1.Provider {
	out := make([]*stsv1.Provider, 0, len(list))
	for _, p := range list {
		out = append(out, providerToProto(p))
	}
	return out
}
