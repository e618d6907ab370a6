package storage

import (
	"context"
	"time"
)

// AuthCode is an OAuth authorization code (RFC 6749 §4.1), stored only as
// a digest. It is bound to the client, the redirect URI and the PKCE
// challenge it was issued for, and to the signed-in principal, the
// consented scopes and the OpenID Connect nonce. It is redeemed once:
// ConsumeAuthCode marks it used and records what the redemption issues,
// so a second use can revoke exactly that (RFC 6749 §10.5).
type AuthCode struct {
	ID          string
	Digest      []byte // unique
	ClientID    string
	OrgID       string
	PrincipalID string
	RedirectURI string
	// Challenge is the S256 code_challenge (RFC 7636 §4.2).
	Challenge string
	Scopes    []string
	// Resources are the resources (RFC 8707 §2.1) the authorization
	// request asked for, each one of the client's audiences: what the
	// code's access token and refresh family are for. Empty: the
	// client's first audience (docs/security.md T-190).
	Resources []string
	Nonce     string
	AuthTime  time.Time // when the principal authenticated (the ID token's auth_time), zero when unknown
	// SignedInAt is the sign-in sudo mode judges, which bounds a refresh
	// token (docs/security.md A-79, T-191): when the principal
	// authenticated, or the session's start when that is unknown; zero
	// on a code stored before it was recorded, whose AuthTime was that.
	SignedInAt time.Time
	// SessionLineage is the lineage (WebSession.Lineage) of the browser
	// session the code was issued in; empty on a code stored before it
	// was recorded. A refresh family the code begins without
	// offline_access ends with that chain of sessions (docs/security.md
	//
	SessionLineage string
	CreatedAt      time.Time
	ExpiresAt      time.Time
	// UsedAt is when the code was first redeemed (zero while unused);
	// AccessJTI and FamilyID name the access token and the refresh-token
	// family that redemption issued (empty when none).
	UsedAt    time.Time
	AccessJTI string
	FamilyID  string
}

// AuthCodeRetention is how long garbage collection keeps a code past its
// expiry, so that a late second use is still recognized as one.
const AuthCodeRetention = 24 * time.Hour

// AuthCodeStore persists authorization codes.
type AuthCodeStore interface {
	// CreateAuthCode returns ErrAlreadyExists if the ID or digest is taken.
	CreateAuthCode(ctx context.Context, c AuthCode) error
	// GetAuthCode returns the code with this digest as stored, used or
	// not, and changes nothing; ErrNotFound when no code has it.
	GetAuthCode(ctx context.Context, digest []byte) (AuthCode, error)
	// ConsumeAuthCode marks the code with this digest used at now and
	// records jti and familyID on it, atomically, and returns the row as it
	// was before. Of concurrent callers exactly one gets a row whose UsedAt
	// is zero; the others, and every later call, get the row as first
	// consumed (UsedAt set) and change nothing. ErrNotFound when no code
	// has this digest. Expiry is the caller's to judge.
	ConsumeAuthCode(ctx context.Context, digest []byte, now time.Time, jti, familyID string) (AuthCode, error)
}

// Consent is a principal's remembered approval of a client for a set of
// scopes: the consent screen is skipped while a request asks for no scope
// beyond Scopes.
type Consent struct {
	PrincipalID string
	ClientID    string
	Scopes      []string
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// ConsentStore persists remembered consents, one per (principal, client).
type ConsentStore interface {
	// PutConsent creates the consent or replaces its scopes and UpdatedAt.
	PutConsent(ctx context.Context, c Consent) error
	// GetConsent returns ErrNotFound.
	GetConsent(ctx context.Context, principalID, clientID string) (Consent, error)
	// ListConsents returns the principal's consents ordered by client ID.
	ListConsents(ctx context.Context, principalID string) ([]Consent, error)
	// DeleteConsent returns ErrNotFound.
	DeleteConsent(ctx context.Context, principalID, clientID string) error
}
