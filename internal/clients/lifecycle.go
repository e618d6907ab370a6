package clients

import (
	"context"
	"errors"
	"strings"

	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/secret"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/sts"
)

// CreateInput describes a new client.
type CreateInput struct {
	OrgID       string
	PrincipalID string
	Name        string
	// AuthMethod is one of [AuthMethods]; empty means client_secret_basic.
	AuthMethod string
	// Keys are required for private_key_jwt and refused otherwise.
	Keys       Keys
	GrantTypes []string
	Pools      []string
	Audiences  []string
	Scopes     []string
	// RedirectURIs are required with the authorization_code grant and
	// matched exactly (checkRedirectURIs).
	RedirectURIs []string
	// RequirePKCE false lets a confidential client use the
	// authorization_code grant without PKCE; nil means true. A public
	// client cannot set it false (checkRequirePKCE).
	RequirePKCE *bool
}

// Create validates in, stores the client and returns it with its secret
// (empty for private_key_jwt). The secret is returned only after the row
// and its audit event have both committed (docs/security.md D-02, D-08); if
// the audit append fails the row is deleted again and no secret is
// disclosed. Errors: [sts.Invalid] (naming the field), [sts.NotFound]
// (organization or principal), [sts.FailedPrecondition] (principal
// disabled), [sts.Unavailable].
func (s *Service) Create(ctx context.Context, c Caller, in CreateInput) (storage.Client, string, error) {
	cl, err := s.checkCreate(in)
	if err != nil {
		return storage.Client{}, "", err
	}
	if _, err := checkPrincipal(ctx, s.store, cl.OrgID, cl.PrincipalID); err != nil {
		return storage.Client{}, "", err
	}
	var sec string
	if UsesSecret(cl.AuthMethod) {
		if sec, cl.SecretDigest, err = s.newSecret(); err != nil {
			return storage.Client{}, "", err
		}
	}
	now := s.now()
	cl.ID, cl.CreatedAt, cl.UpdatedAt = storage.NewID(), now, now
	// The row and its audit event commit together (docs/design.md#audit),
	// with its organization and principal held: a deletion of either
	// comes after the client, and refuses it, or leaves nothing here to
	// store it for (docs/design.md#owners-held-while-their-rows-are-written, docs/security.md A-87).
	err = s.store.WithTx(ctx, func(tx storage.Tx) error {
		p, err := checkPrincipal(ctx, storage.Held(tx), cl.OrgID, cl.PrincipalID)
		if err != nil {
			return err
		}
		if g, ok := ctx.Value(principalGuardKey{}).(PrincipalGuard); ok {
			// The caller's authorization of the principal, judged again on
			// the row held here (docs/security.md A-96).
			if err := g(p); err != nil {
				return err
			}
		}
		if err := tx.CreateClient(ctx, cl); err != nil {
			return storageErr(err, "client")
		}
		if err := tx.AppendAudit(ctx, c.Event(s.now(), cl.OrgID, ActionCreate, "client:"+cl.ID, "success", createDetail(cl))); err != nil {
			return sts.Wrap(sts.Unavailable, err, "storage unavailable")
		}
		return nil
	})
	if err != nil {
		if _, ok := errors.AsType[*sts.Error](err); !ok {
			err = sts.Wrap(sts.Unavailable, err, "storage unavailable") // the commit failed
		}
		return storage.Client{}, "", err
	}
	s.logger().InfoContext(ctx, "client created", "client_id", cl.ID, "org", cl.OrgID, "principal", cl.PrincipalID,
		"auth_method", cl.AuthMethod)
	return cl, sec, nil
}

// checkCreate validates everything in that needs no storage read and
// returns the normalized record without ID, times or secret.
func (s *Service) checkCreate(in CreateInput) (storage.Client, error) {
	switch {
	case in.OrgID == "":
		return storage.Client{}, invalid("organization_id required")
	case in.PrincipalID == "":
		return storage.Client{}, invalid("principal_id required")
	case len(in.OrgID) > maxIDLen:
		return storage.Client{}, sts.Errorf(sts.NotFound, "organization not found")
	case len(in.PrincipalID) > maxIDLen:
		return storage.Client{}, sts.Errorf(sts.NotFound, "principal not found")
	}
	cl := storage.Client{OrgID: in.OrgID, PrincipalID: in.PrincipalID}
	var err error
	if cl.Name, err = checkName(in.Name); err != nil {
		return cl, err
	}
	if cl.AuthMethod, err = checkAuthMethod(in.AuthMethod); err != nil {
		return cl, err
	}
	if err := checkKeys(cl.AuthMethod, in.Keys); err != nil {
		return cl, err
	}
	if err := s.checkFetch(in.Keys); err != nil {
		return cl, err
	}
	cl.JWKS, cl.JWKSURI = in.Keys.JWKS, in.Keys.JWKSURI
	if cl.GrantTypes, err = checkGrantTypes(in.GrantTypes); err != nil {
		return cl, err
	}
	if err := checkPublicGrants(cl.AuthMethod, cl.GrantTypes); err != nil {
		return cl, err
	}
	if cl.Pools, err = checkPools(in.Pools); err != nil {
		return cl, err
	}
	if cl.Audiences, err = checkAudiences(in.Audiences); err != nil {
		return cl, err
	}
	if cl.Scopes, err = checkScopes(in.Scopes); err != nil {
		return cl, err
	}
	if cl.RedirectURIs, err = checkRedirectURIs(in.RedirectURIs, cl.GrantTypes, cl.AuthMethod); err != nil {
		return cl, err
	}
	if in.RequirePKCE != nil {
		if err := checkRequirePKCE(cl.AuthMethod, *in.RequirePKCE); err != nil {
			return cl, err
		}
		cl.PKCEOptional = !*in.RequirePKCE
	}
	return cl, nil
}

// createDetail is the audit detail of a creation: the auth method, and
// the PKCE opt-out when there is one (docs/security.md T-90).
func createDetail(cl storage.Client) string {
	d := "auth_method=" + cl.AuthMethod
	if cl.PKCEOptional {
		d += " require_pkce=false"
	}
	return d
}

// checkPrincipal: the organization exists and the principal is an enabled
// service account in it; it returns the principal as r read it.
func checkPrincipal(ctx context.Context, r storage.OwnerReader, orgID, principalID string) (storage.Principal, error) {
	if _, err := r.GetOrganization(ctx, orgID); err != nil {
		return storage.Principal{}, storageErr(err, "organization")
	}
	p, err := r.GetPrincipal(ctx, principalID)
	if err == nil && p.OrgID != orgID {
		// Another organization's principal answers as a missing one does,
		// so its ID cannot be probed (docs/authorization.md, Roles).
		err = storage.ErrNotFound
	}
	switch {
	case err != nil:
		return storage.Principal{}, storageErr(err, "principal")
	case p.Kind != storage.PrincipalServiceAccount:
		return storage.Principal{}, invalid("principal_id: a client's principal must be a SERVICE_ACCOUNT, not %s", p.Kind)
	case p.Disabled:
		return storage.Principal{}, sts.Errorf(sts.FailedPrecondition, "principal %s is disabled", p.ID)
	}
	return p, nil
}

// Get returns client id. Errors: [sts.Invalid], [sts.NotFound],
// [sts.Unavailable].
func (s *Service) Get(ctx context.Context, id string) (storage.Client, error) {
	if err := checkID(id); err != nil {
		return storage.Client{}, err
	}
	cl, err := s.store.GetClient(ctx, id)
	if err != nil {
		return storage.Client{}, storageErr(err, "client")
	}
	return cl, nil
}

// List returns the clients of organization orgID ordered by ID, or every
// client when orgID is empty. Errors: [sts.NotFound] (organization),
// [sts.Unavailable].
func (s *Service) List(ctx context.Context, orgID string) ([]storage.Client, error) {
	if orgID != "" {
		if len(orgID) > maxIDLen {
			return nil, sts.Errorf(sts.NotFound, "organization not found")
		}
		if _, err := s.store.GetOrganization(ctx, orgID); err != nil {
			return nil, storageErr(err, "organization")
		}
	}
	list, err := s.store.ListClients(ctx, orgID)
	if err != nil {
		return nil, storageErr(err, "clients")
	}
	return list, nil
}

// UpdateInput changes the fields that are set; nil keeps the current
// value. A set list replaces the current one. Keys replaces both the
// JWKS and the JWKS URI of a private_key_jwt client.
type UpdateInput struct {
	Name       *string
	Disabled   *bool
	GrantTypes *[]string
	Pools      *[]string
	Audiences  *[]string
	Scopes     *[]string
	Keys       *Keys
	// RedirectURIs replaces the redirect URIs.
	RedirectURIs *[]string
	// RequirePKCE sets whether the authorization_code grant needs PKCE;
	// false is refused for a public client (checkRequirePKCE).
	RequirePKCE *bool
}

// fields names the fields in sets, for messages and the audit trail.
func (in UpdateInput) fields() []string {
	var out []string
	for _, f := range []struct {
		name string
		set  bool
	}{
		{"name", in.Name != nil}, {"disabled", in.Disabled != nil}, {"grant_types", in.GrantTypes != nil},
		{"pools", in.Pools != nil}, {"audiences", in.Audiences != nil}, {"scopes", in.Scopes != nil},
		{"keys", in.Keys != nil}, {"redirect_uris", in.RedirectURIs != nil}, {"require_pkce", in.RequirePKCE != nil},
	} {
		if f.set {
			out = append(out, f.name)
		}
	}
	return out
}

// Update applies in to client id in one UpdateClient: either every field
// changes or none does. Disabling takes effect at once through this
// service's store (the node's record cache). Errors: [sts.Invalid]
// (naming the field, or no field set), [sts.NotFound],
// [sts.FailedPrecondition] (keys for a client that does not use
// private_key_jwt), [sts.Unavailable].
func (s *Service) Update(ctx context.Context, c Caller, id string, in UpdateInput) (storage.Client, error) {
	if err := checkID(id); err != nil {
		return storage.Client{}, err
	}
	fields := in.fields()
	if len(fields) == 0 {
		return storage.Client{}, invalid("nothing to update: set at least one field")
	}
	var name string
	var grants, pools, auds, scopes []string
	var err error
	if in.Name != nil {
		if name, err = checkName(*in.Name); err != nil {
			return storage.Client{}, err
		}
	}
	if in.GrantTypes != nil {
		if grants, err = checkGrantTypes(*in.GrantTypes); err != nil {
			return storage.Client{}, err
		}
	}
	if in.Pools != nil {
		if pools, err = checkPools(*in.Pools); err != nil {
			return storage.Client{}, err
		}
	}
	if in.Audiences != nil {
		if auds, err = checkAudiences(*in.Audiences); err != nil {
			return storage.Client{}, err
		}
	}
	if in.Scopes != nil {
		if scopes, err = checkScopes(*in.Scopes); err != nil {
			return storage.Client{}, err
		}
	}
	if in.Keys != nil {
		if err := checkKeys(oauth2.AuthMethodPrivateKeyJWT, *in.Keys); err != nil {
			return storage.Client{}, err
		}
		if err := s.checkFetch(*in.Keys); err != nil {
			return storage.Client{}, err
		}
	}
	var redirects []string
	if in.RedirectURIs != nil {
		// The form, as for a public client; the client's own method
		// judges them below.
		if redirects, err = checkRedirectURIs(*in.RedirectURIs, nil, oauth2.AuthMethodNone); err != nil {
			return storage.Client{}, err
		}
	}
	now := s.now()
	detail := "changed " + strings.Join(fields, ",")
	if in.Disabled != nil {
		detail += map[bool]string{true: "; disabled", false: "; enabled"}[*in.Disabled]
	}
	if in.RequirePKCE != nil {
		detail += map[bool]string{true: "; require_pkce=true", false: "; require_pkce=false"}[*in.RequirePKCE]
	}
	var out storage.Client
	err = s.changeAudited(ctx, id, ActionUpdate, detail, &out, func(cl storage.Client) (storage.Client, error) {
		if in.Keys != nil && cl.AuthMethod != oauth2.AuthMethodPrivateKeyJWT {
			return cl, sts.Errorf(sts.FailedPrecondition, "jwks and jwks_uri apply only to private_key_jwt clients; this one uses %s", cl.AuthMethod)
		}
		if in.Name != nil {
			cl.Name = name
		}
		if in.Disabled != nil {
			cl.Disabled = *in.Disabled
		}
		if in.GrantTypes != nil {
			if err := checkPublicGrants(cl.AuthMethod, grants); err != nil {
				return cl, err
			}
			cl.GrantTypes = grants
		}
		if in.Pools != nil {
			cl.Pools = pools
		}
		if in.Audiences != nil {
			cl.Audiences = auds
		}
		if in.Scopes != nil {
			cl.Scopes = scopes
		}
		if in.Keys != nil {
			cl.JWKS, cl.JWKSURI = in.Keys.JWKS, in.Keys.JWKSURI
		}
		if in.RedirectURIs != nil {
			cl.RedirectURIs = redirects
		}
		if in.RequirePKCE != nil {
			// The auth method never changes, so a client that may omit
			// PKCE stays confidential.
			if err := checkRequirePKCE(cl.AuthMethod, *in.RequirePKCE); err != nil {
				return cl, err
			}
			cl.PKCEOptional = !*in.RequirePKCE
		}
		// The grant and its redirect URIs are judged together, whichever
		// of them changed.
		if _, err := checkRedirectURIs(cl.RedirectURIs, cl.GrantTypes, cl.AuthMethod); err != nil {
			return cl, err
		}
		cl.UpdatedAt = now
		return cl, nil
	}, c)
	if err != nil {
		return storage.Client{}, err
	}
	s.logger().InfoContext(ctx, "client updated", "client_id", id, "fields", fields)
	return out, nil
}

// RotateSecret gives a secret client a new secret in one UpdateClient,
// committed with its audit event: the old secret stops working at that
// commit (docs/security.md D-03). If the event cannot be stored nothing
// changes: the old secret keeps working and no new one is disclosed. Errors: [sts.Invalid], [sts.NotFound],
// [sts.FailedPrecondition] (a private_key_jwt client), [sts.Unavailable].
func (s *Service) RotateSecret(ctx context.Context, c Caller, id string) (storage.Client, string, error) {
	if err := checkID(id); err != nil {
		return storage.Client{}, "", err
	}
	sec, digest, err := s.newSecret()
	if err != nil {
		return storage.Client{}, "", err
	}
	now := s.now()
	var out storage.Client
	err = s.changeAudited(ctx, id, ActionRotateSecret, "", &out, func(cl storage.Client) (storage.Client, error) {
		if !UsesSecret(cl.AuthMethod) {
			return cl, sts.Errorf(sts.FailedPrecondition, "client does not use a secret (auth method %s)", cl.AuthMethod)
		}
		cl.SecretDigest, cl.UpdatedAt = digest, now
		return cl, nil
	}, c)
	if err != nil {
		return storage.Client{}, "", err
	}
	s.logger().InfoContext(ctx, "client secret rotated", "client_id", id, "digest", secret.DigestID(digest))
	return out, sec, nil
}

// Delete removes client id, with its audit event in one transaction; it
// stops authenticating at once through this
// service's store. Errors: [sts.Invalid], [sts.NotFound],
// [sts.Unavailable].
func (s *Service) Delete(ctx context.Context, c Caller, id string) error {
	cl, err := s.Get(ctx, id)
	if err != nil {
		return err
	}
	err = s.inTx(ctx, func(tx storage.Tx) error {
		if err := tx.DeleteClient(ctx, id); err != nil {
			return storageErr(err, "client")
		}
		return s.appendTx(ctx, tx, c, cl.OrgID, ActionDelete, id, "")
	})
	if err != nil {
		return err
	}
	s.logger().InfoContext(ctx, "client deleted", "client_id", id)
	return nil
}

// PrincipalGuard is a caller's authorization of the service account a new
// client is bound to, judged again on the principal's row as Create holds
// it: the caller authorized it on an earlier read, and a change that
// committed since (the instance role granted to it, docs/security.md
// A-96) is seen here.
type PrincipalGuard func(storage.Principal) error

type principalGuardKey struct{}

// WithPrincipalGuard returns ctx carrying g for Create.
func WithPrincipalGuard(ctx context.Context, g PrincipalGuard) context.Context {
	return context.WithValue(ctx, principalGuardKey{}, g)
}
