package api

import (
	"context"

	clientsvc "github.com/opensts/sts/internal/clients"
	stsv1 "github.com/opensts/sts/internal/gen/sts/v1"
	"github.com/opensts/sts/internal/gen/sts/v1/stsv1connect"
	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/pat"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/sts"
)

// ClientService implements sts.v1.ClientService over the shared client
// lifecycle (internal/clients), the one the CLI uses too. Every method
// needs sts:admin and acts within the caller's organization (any, for an
// instance administrator; docs/authorization.md). A client bound to an
// instance administrator is created, changed, rotated or deleted by an
// instance administrator only (mayBind, change); reading it stays open.
// Client secrets leave only in the responses of CreateClient and
// RotateClientSecret; no response carries a digest.
type ClientService struct{ h *Handler }

var _ stsv1connect.ClientServiceHandler = (*ClientService)(nil)

var errNoClients = sts.Errorf(sts.Unavailable, "client service unavailable")

// admin authorizes the caller and returns the lifecycle service and the
// caller for the audit trail.
func (s *ClientService) admin(ctx context.Context) (*clientsvc.Service, clientsvc.Caller, *Identity, error) {
	id, err := require(ctx, pat.ScopeAdmin)
	if err != nil {
		return nil, clientsvc.Caller{}, nil, err
	}
	if s.h.Clients == nil {
		return nil, clientsvc.Caller{}, nil, errNoClients
	}
	c := id.caller()
	return s.h.Clients, c, id, nil
}

// client authorizes the caller for client id: it must be of the caller's
// organization (any, for an instance administrator), else not_found.
func (s *ClientService) client(ctx context.Context, clientID string) (*clientsvc.Service, clientsvc.Caller, *Identity, storage.Client, error) {
	svc, caller, id, err := s.admin(ctx)
	if err != nil {
		return nil, caller, nil, storage.Client{}, err
	}
	c, err := svc.Get(ctx, clientID)
	if err != nil {
		return nil, caller, nil, storage.Client{}, err
	}
	if err := s.h.inOrg(ctx, id, c.OrgID, "client"); err != nil {
		return nil, caller, nil, storage.Client{}, err
	}
	return svc, caller, id, c, nil
}

// change authorizes a write to client clientID: the rule of client, and
// the client's principal must be one the caller may act as (mayBind).
// client_credentials issues the principal's tokens to whoever holds the
// client's secret or keys, so a new secret, a wider scope list or new
// keys would hand an organization administrator an instance
// administrator's token; disabling and deleting follow, as for pools
// (docs/authorization.md, Roles).
func (s *ClientService) change(ctx context.Context, clientID string) (*clientsvc.Service, clientsvc.Caller, storage.Client, error) {
	svc, caller, id, c, err := s.client(ctx, clientID)
	if err != nil {
		return nil, caller, storage.Client{}, err
	}
	if err := s.h.mayBind(ctx, id, c.PrincipalID); err != nil {
		return nil, caller, storage.Client{}, err
	}
	return svc, caller, c, nil
}

// CreateClient registers a client; the secret (secret methods only) is in
// this response only.
func (s *ClientService) CreateClient(ctx context.Context, req *stsv1.CreateClientRequest) (*stsv1.CreateClientResponse, error) {
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
	root, err := s.h.isInstanceAdmin(ctx, id)
	if err != nil {
		return nil, err
	}
	if !root {
		// mayBind again on the principal's row as the client is written: a
		// grant of the instance role since would hand whoever holds the
		// client's secret that role (docs/security.md A-96).
		ctx = clientsvc.WithPrincipalGuard(ctx, s.h.notInstanceAdmin)
	}
	method, err := authMethodFromProto(req.GetAuthMethod())
	if err != nil {
		return nil, err
	}
	c, sec, err := svc.Create(ctx, caller, clientsvc.CreateInput{
		OrgID: req.GetOrganizationId(), PrincipalID: req.GetPrincipalId(), Name: req.GetName(), AuthMethod: method,
		Keys:       clientsvc.Keys{JWKS: []byte(req.GetJwks()), JWKSURI: req.GetJwksUri()},
		GrantTypes: req.GetGrantTypes(), Pools: req.GetPools(), Audiences: req.GetAudiences(), Scopes: req.GetScopes(),
		RedirectURIs: req.GetRedirectUris(), RequirePKCE: req.RequirePkce,
	})
	if err != nil {
		return nil, err
	}
	return &stsv1.CreateClientResponse{Client: clientToProto(c), ClientSecret: sec}, nil
}

// GetClient returns one client, never its secret.
func (s *ClientService) GetClient(ctx context.Context, req *stsv1.GetClientRequest) (*stsv1.GetClientResponse, error) {
	_, _, _, c, err := s.client(ctx, req.GetClientId())
	if err != nil {
		return nil, err
	}
	return &stsv1.GetClientResponse{Client: clientToProto(c)}, nil
}

// ListClients lists the clients of one organization, or all.
func (s *ClientService) ListClients(ctx context.Context, req *stsv1.ListClientsRequest) (*stsv1.ListClientsResponse, error) {
	svc, _, id, err := s.admin(ctx)
	if err != nil {
		return nil, err
	}
	org, err := s.h.listOrg(ctx, id, req.GetOrganizationId())
	if err != nil {
		return nil, err
	}
	list, err := svc.List(ctx, org)
	if err != nil {
		return nil, err
	}
	out := &stsv1.ListClientsResponse{Clients: make([]*stsv1.Client, 0, len(list))}
	for _, c := range list {
		out.Clients = append(out.Clients, clientToProto(c))
	}
	return out, nil
}

// UpdateClient changes the fields set in the request.
func (s *ClientService) UpdateClient(ctx context.Context, req *stsv1.UpdateClientRequest) (*stsv1.UpdateClientResponse, error) {
	svc, caller, _, err := s.change(ctx, req.GetClientId())
	if err != nil {
		return nil, err
	}
	c, err := svc.Update(ctx, caller, req.GetClientId(), ClientUpdateInput(req))
	if err != nil {
		return nil, err
	}
	return &stsv1.UpdateClientResponse{Client: clientToProto(c)}, nil
}

// ClientUpdateInput is what req asks the client lifecycle to change (a
// nil field, or an absent list, leaves it as it is); the CLI's direct mode
// uses it too.
func ClientUpdateInput(req *stsv1.UpdateClientRequest) clientsvc.UpdateInput {
	in := clientsvc.UpdateInput{Name: req.Name, Disabled: req.Disabled}
	list := func(l *stsv1.StringList) *[]string {
		if l == nil {
			return nil
		}
		v := l.GetValues()
		return &v
	}
	in.GrantTypes, in.Pools, in.Audiences, in.Scopes = list(req.GetGrantTypes()), list(req.GetPools()), list(req.GetAudiences()), list(req.GetScopes())
	in.RedirectURIs = list(req.GetRedirectUris())
	in.RequirePKCE = req.RequirePkce
	switch k := req.GetKeys().(type) {
	case *stsv1.UpdateClientRequest_Jwks:
		in.Keys = &clientsvc.Keys{JWKS: []byte(k.Jwks)}
	case *stsv1.UpdateClientRequest_JwksUri:
		in.Keys = &clientsvc.Keys{JWKSURI: k.JwksUri}
	}
	return in
}

// RotateClientSecret replaces a client's secret; the new one is in this
// response only.
func (s *ClientService) RotateClientSecret(ctx context.Context, req *stsv1.RotateClientSecretRequest) (*stsv1.RotateClientSecretResponse, error) {
	svc, caller, _, err := s.change(ctx, req.GetClientId())
	if err != nil {
		return nil, err
	}
	c, sec, err := svc.RotateSecret(ctx, caller, req.GetClientId())
	if err != nil {
		return nil, err
	}
	return &stsv1.RotateClientSecretResponse{Client: clientToProto(c), ClientSecret: sec}, nil
}

// DeleteClient removes a client.
func (s *ClientService) DeleteClient(ctx context.Context, req *stsv1.DeleteClientRequest) (*stsv1.DeleteClientResponse, error) {
	svc, caller, _, err := s.change(ctx, req.GetClientId())
	if err != nil {
		return nil, err
	}
	if err := svc.Delete(ctx, caller, req.GetClientId()); err != nil {
		return nil, err
	}
	return &stsv1.DeleteClientResponse{}, nil
}

var authMethodToProto = map[string]stsv1.ClientAuthMethod{
	oauth2.AuthMethodClientSecretBasic: stsv1.ClientAuthMethod_CLIENT_AUTH_METHOD_CLIENT_SECRET_BASIC,
	oauth2.AuthMethodClientSecretPost:  stsv1.ClientAuthMethod_CLIENT_AUTH_METHOD_CLIENT_SECRET_POST,
	oauth2.AuthMethodPrivateKeyJWT:     stsv1.ClientAuthMethod_CLIENT_AUTH_METHOD_PRIVATE_KEY_JWT,
	oauth2.AuthMethodNone:              stsv1.ClientAuthMethod_CLIENT_AUTH_METHOD_NONE,
}

// authMethodFromProto maps UNSPECIFIED to "" (the lifecycle's default)
// and refuses numbers the enum does not define.
func authMethodFromProto(m stsv1.ClientAuthMethod) (string, error) {
	if m == stsv1.ClientAuthMethod_CLIENT_AUTH_METHOD_UNSPECIFIED {
		return "", nil
	}
	for s, p := range authMethodToProto {
		if p == m {
			return s, nil
		}
	}
	return "", sts.Errorf(sts.Invalid, "auth_method: unknown value %d", int32(m))
}

// clientToProto is the read model of a client: has_secret, never the
// secret digest.
func clientToProto(c storage.Client) *stsv1.Client {
	return &stsv1.Client{
		Id: c.ID, OrganizationId: c.OrgID, PrincipalId: c.PrincipalID, Name: c.Name,
		AuthMethod: authMethodToProto[c.AuthMethod], HasSecret: len(c.SecretDigest) > 0,
		Jwks: string(c.JWKS), JwksUri: c.JWKSURI,
		GrantTypes: c.GrantTypes, Pools: c.Pools, Audiences: c.Audiences, Scopes: c.Scopes, RedirectUris: c.RedirectURIs,
		Disabled: c.Disabled, CreatedAt: ts(c.CreatedAt), UpdatedAt: ts(c.UpdatedAt), RequirePkce: !c.PKCEOptional,
	}
}
