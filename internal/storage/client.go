package storage

import (
	"context"
	"time"
)

// Client is a service account's credential at the token endpoint. The
// secret is never stored, only its digest.
type Client struct {
	ID           string
	OrgID        string
	PrincipalID  string // the service-account principal tokens are issued to
	Name         string
	AuthMethod   string // client_secret_basic, client_secret_post, private_key_jwt
	SecretDigest []byte // HMAC-SHA256 of the secret under the server pepper
	JWKS         []byte // registered public keys (private_key_jwt)
	JWKSURI      string
	GrantTypes   []string
	Pools        []string // pools the client may exchange against
	Audiences    []string
	Scopes       []string
	// RedirectURIs are the exact redirect URIs of the authorization_code
	// grant (docs/api.md, "Authorization code").
	RedirectURIs []string
	// PKCEOptional lets a confidential client use the authorization_code
	// grant without PKCE (require_pkce false in the API). The zero value
	// requires PKCE; a public client never has it (docs/security.md T-90).
	PKCEOptional bool
	Disabled     bool
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// ClientStore persists clients.
type ClientStore interface {
	// CreateClient returns ErrAlreadyExists if the ID is taken.
	CreateClient(ctx context.Context, c Client) error
	// GetClient returns ErrNotFound.
	GetClient(ctx context.Context, id string) (Client, error)
	// ListClients returns the clients of one organization, or all when
	// orgID is empty, ordered by ID.
	ListClients(ctx context.Context, orgID string) ([]Client, error)
	// UpdateClient: see UpdateOrganization. Returns ErrNotFound.
	UpdateClient(ctx context.Context, id string, fn func(old Client) (Client, error)) error
	// DeleteClient returns ErrNotFound.
	DeleteClient(ctx context.Context, id string) error
}
