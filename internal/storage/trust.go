package storage

import (
	"context"
	"time"
)

// Mapping holds the CEL expressions that turn verified claims into the
// issued token's subject, groups and attributes (docs/design.md#the-model).
type Mapping struct {
	Subject    string            `json:"subject,omitempty"`
	Groups     string            `json:"groups,omitempty"`
	Attributes map[string]string `json:"attributes,omitempty"`
}

// ScopeIntrospect lets a bearer token holding it introspect every token
// of its organization (docs/api.md, "Introspection").
const ScopeIntrospect = "introspect"

// PoolMayGrant reports whether a pool's Scopes may hold sc. A pool grants
// its scopes to whoever presents a credential it trusts, anonymous callers
// included, so it never grants ScopeIntrospect: that is for a resource
// server's registered client (docs/security.md A-68).
func PoolMayGrant(sc string) bool { return sc != ScopeIntrospect }

// Pool is an identity pool: the trust policy external tokens are judged by.
type Pool struct {
	ID            string
	OrgID         string
	DisplayName   string
	Disabled      bool
	IdentityClaim string // CEL; empty means assertion.sub
	Condition     string // CEL over the verified claims
	Mapping       Mapping
	Scopes        []string // ceiling of what an exchange may grant; see PoolMayGrant
	// MaxTokenLifetime caps issued tokens; zero means the server default.
	MaxTokenLifetime time.Duration
	// PrincipalID, when set, makes exchanged tokens act as that principal.
	PrincipalID string
	// AllowUnauthenticated lets exchanges against this pool proceed without
	// client authentication (Google's /v1/token needs none).
	AllowUnauthenticated bool
	// Audiences are the resource servers this pool's tokens may be minted
	// for, besides the server's own: audience or resource in a request
	// selects among them, anything else is invalid_target.
	Audiences []string
	// GoogleDefaultScopes is what Google's default scope
	// (https://www.googleapis.com/auth/cloud-platform, sent by Google's
	// clients when their user sets none) means in this pool; nil: the
	// pool's Scopes. Each is one of Scopes.
	GoogleDefaultScopes []string
	CreatedAt           time.Time
	UpdatedAt           time.Time
}

// Provider is a trusted external issuer inside a pool. Its identity is the
// pair (PoolID, ID).
type Provider struct {
	PoolID     string
	ID         string
	Issuer     string
	JWKSURI    string   // optional: discovery otherwise
	JWKS       []byte   // optional: an uploaded JWKS document
	Audiences  []string // accepted aud values
	Algorithms []string // accepted JWS algs; empty means the server default
	// OneTimeUse: each token of this issuer (by iss and jti) is exchanged
	// at most once, across replicas (docs/security.md T-48).
	OneTimeUse bool
	// AllowMissingKID accepts a token without a kid header when the key
	// set has exactly one key; by default such a token is refused.
	AllowMissingKID bool
	// AllowMultipleAudiences accepts a token whose aud names several
	// audiences (one of them accepted); by default aud must be exactly one
	// accepted audience, so a token meant for several services is not
	// usable here.
	AllowMultipleAudiences bool
	Disabled               bool
	CreatedAt              time.Time
	UpdatedAt              time.Time
}

// TrustStore persists identity pools and their providers.
type TrustStore interface {
	// CreatePool returns ErrAlreadyExists if the ID is taken.
	CreatePool(ctx context.Context, p Pool) error
	// GetPool returns ErrNotFound.
	GetPool(ctx context.Context, id string) (Pool, error)
	// ListPools returns every pool ordered by ID.
	ListPools(ctx context.Context) ([]Pool, error)
	// ListPoolsOfPrincipal returns the pools bound to principalID (their
	// PrincipalID), of every organization, ordered by ID.
	ListPoolsOfPrincipal(ctx context.Context, principalID string) ([]Pool, error)
	// UpdatePool: see UpdateOrganization. Returns ErrNotFound.
	UpdatePool(ctx context.Context, id string, fn func(old Pool) (Pool, error)) error
	// DeletePool deletes the pool and its providers. Returns ErrNotFound.
	DeletePool(ctx context.Context, id string) error

	// CreateProvider returns ErrNotFound if the pool does not exist and
	// ErrAlreadyExists if the pair (PoolID, ID) is taken.
	CreateProvider(ctx context.Context, p Provider) error
	// GetProvider returns ErrNotFound.
	GetProvider(ctx context.Context, poolID, id string) (Provider, error)
	// ListProviders returns the providers of one pool, or of every pool when
	// poolID is empty, ordered by (PoolID, ID).
	ListProviders(ctx context.Context, poolID string) ([]Provider, error)
	// UpdateProvider: see UpdateOrganization. Returns ErrNotFound.
	UpdateProvider(ctx context.Context, poolID, id string, fn func(old Provider) (Provider, error)) error
	// DeleteProvider returns ErrNotFound.
	DeleteProvider(ctx context.Context, poolID, id string) error
}
