package conformance

import (
	"crypto/rand"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/opensts/sts/internal/storage"
)

// Record builders. Every builder sets every field to a non-zero value so a
// column a backend forgets to store or read shows up as a diff. Strings carry
// quotes and non-ASCII text; byte slices are random, so they contain NUL and
// high bytes. The new* helpers also create the record and its parents, so
// backends that enforce foreign keys pass as well as those that do not.

// now is the suite's notion of the present, at backend precision.
func now() time.Time { return storage.Now(time.Now()) }

// randBytes returns n random bytes.
func randBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

// allBytes returns every byte value 0x00..0xff followed by extra random bytes.
func allBytes(extra int) []byte {
	b := make([]byte, 256, 256+extra)
	for i := range b {
		b[i] = byte(i)
	}
	return append(b, randBytes(extra)...)
}

// odd returns a label with characters that trip naive SQL or encodings.
func odd(label string) string {
	return fmt.Sprintf("%s O'Brien \"ünïcødé\" 组织 %%_; --", label)
}

func orgRecord() storage.Organization {
	t0 := now()
	return storage.Organization{
		ID:        storage.NewID(),
		Name:      odd("org"),
		Tier:      "enterprise",
		CreatedAt: t0.Add(-time.Hour),
		UpdatedAt: t0,
	}
}

func newOrg(t *testing.T, s storage.Store) storage.Organization {
	t.Helper()
	o := orgRecord()
	mustNil(t, "CreateOrganization", s.CreateOrganization(t.Context(), o))
	return o
}

func principalRecord(orgID string) storage.Principal {
	t0 := now()
	return storage.Principal{
		ID:        storage.NewID(),
		OrgID:     orgID,
		Kind:      storage.PrincipalServiceAccount,
		Name:      odd("principal"),
		Email:     "svc+ci@example.com",
		Disabled:  true,
		CreatedAt: t0.Add(-2 * time.Hour),
		UpdatedAt: t0,
	}
}

func newPrincipal(t *testing.T, s storage.Store, orgID string) storage.Principal {
	t.Helper()
	p := principalRecord(orgID)
	mustNil(t, "CreatePrincipal", s.CreatePrincipal(t.Context(), p))
	return p
}

func poolRecord(orgID, principalID string) storage.Pool {
	t0 := now()
	return storage.Pool{
		ID:            storage.NewID(),
		OrgID:         orgID,
		DisplayName:   odd("pool"),
		Disabled:      true,
		IdentityClaim: `assertion.repository_owner + "/" + assertion.sub`,
		Condition:     `assertion.ref == "refs/heads/main" && "ci" in assertion.groups`,
		Mapping: storage.Mapping{
			Subject: "assertion.sub",
			Groups:  "assertion.groups",
			Attributes: map[string]string{
				"repo":  "assertion.repository",
				"actor": `assertion.actor + "'"`,
			},
		},
		Scopes:               []string{"repo:read", "packages:write"},
		MaxTokenLifetime:     90*time.Minute + 1500*time.Millisecond,
		PrincipalID:          principalID,
		AllowUnauthenticated: true,
		Audiences:            []string{"https://kafka.example", "urn:kafka:" + odd("cluster")},
		GoogleDefaultScopes:  []string{"repo:read"},
		CreatedAt:            t0.Add(-3 * time.Hour),
		UpdatedAt:            t0,
	}
}

// newPool creates an organization, a principal and a pool acting as it.
func newPool(t *testing.T, s storage.Store) storage.Pool {
	t.Helper()
	o := newOrg(t, s)
	pr := newPrincipal(t, s, o.ID)
	p := poolRecord(o.ID, pr.ID)
	mustNil(t, "CreatePool", s.CreatePool(t.Context(), p))
	return p
}

func providerRecord(poolID, id string) storage.Provider {
	t0 := now()
	return storage.Provider{
		PoolID:     poolID,
		ID:         id,
		Issuer:     "https://token.actions.githubusercontent.com",
		JWKSURI:    "https://token.actions.githubusercontent.com/.well-known/jwks",
		JWKS:       []byte(`{"keys":[{"kty":"EC","crv":"P-256","x":"AQ","y":"Ag"}]}`),
		Audiences:  []string{"sts.example.com", "https://sts.example.com"},
		Algorithms: []string{"RS256", "ES256"},
		OneTimeUse: true,
		// Both leniencies on, so a backend that drops them fails the
		// round trip.
		AllowMissingKID:        true,
		AllowMultipleAudiences: true,
		Disabled:               true,
		CreatedAt:              t0.Add(-time.Minute),
		UpdatedAt:              t0,
	}
}

func newProvider(t *testing.T, s storage.Store, poolID, id string) storage.Provider {
	t.Helper()
	p := providerRecord(poolID, id)
	mustNil(t, "CreateProvider", s.CreateProvider(t.Context(), p))
	return p
}

func clientRecord(orgID, principalID string) storage.Client {
	t0 := now()
	return storage.Client{
		ID:           storage.NewID(),
		OrgID:        orgID,
		PrincipalID:  principalID,
		Name:         odd("client"),
		AuthMethod:   "private_key_jwt",
		SecretDigest: randBytes(32),
		JWKS:         []byte(`{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}`),
		JWKSURI:      "https://ci.example.com/jwks.json",
		GrantTypes:   []string{"client_credentials", "urn:ietf:params:oauth:grant-type:token-exchange"},
		Pools:        []string{storage.NewID(), storage.NewID()},
		Audiences:    []string{"api://a", "api://b"},
		Scopes:       []string{"read", "write"},
		RedirectURIs: []string{"https://app.example.com/callback", "http://127.0.0.1:8080/cb?x=" + odd("y")},
		PKCEOptional: true,
		Disabled:     true,
		CreatedAt:    t0.Add(-time.Hour),
		UpdatedAt:    t0,
	}
}

// newClient creates an organization, a principal and a client for it.
func newClient(t *testing.T, s storage.Store) storage.Client {
	t.Helper()
	o := newOrg(t, s)
	pr := newPrincipal(t, s, o.ID)
	c := clientRecord(o.ID, pr.ID)
	mustNil(t, "CreateClient", s.CreateClient(t.Context(), c))
	return c
}

func signingKeyRecord(state storage.KeyState, createdAt time.Time) storage.SigningKey {
	k := storage.SigningKey{
		ID:          storage.NewID(),
		Algorithm:   "ES256",
		State:       state,
		PublicJWK:   []byte(`{"kty":"EC","crv":"P-256","x":"` + strings.Repeat("A", 43) + `","y":"` + strings.Repeat("B", 43) + `"}`),
		Sealed:      allBytes(64),
		MasterKeyID: "mk-" + storage.NewID(),
		CreatedAt:   createdAt,
	}
	switch state {
	case storage.KeyActive:
		k.ActivatedAt = createdAt.Add(time.Minute)
	case storage.KeyRetired:
		k.ActivatedAt = createdAt.Add(time.Minute)
		k.RetiredAt = createdAt.Add(time.Hour)
		k.DeleteAfter = createdAt.Add(25 * time.Hour)
	}
	return k
}

func revocationRecord(issuedBefore, expiresAt time.Time) storage.Revocation {
	return storage.Revocation{
		ID:           "sub:" + storage.NewID(),
		IssuedBefore: issuedBefore,
		Reason:       odd("compromised"),
		CreatedAt:    now(),
		ExpiresAt:    expiresAt,
	}
}

func patRecord(orgID, ownerID string) storage.PAT {
	t0 := now()
	return storage.PAT{
		ID:          storage.NewID(),
		OrgID:       orgID,
		OwnerID:     ownerID,
		Description: odd("laptop token"),
		Scopes:      []string{"pat:read", "pat:write"},
		Digest:      randBytes(32),
		CreatedAt:   t0.Add(-time.Hour),
		ExpiresAt:   t0.Add(30 * 24 * time.Hour),
		LastUsedAt:  t0.Add(-time.Minute),
	}
}

// newPAT creates an organization, an owner and a PAT.
func newPAT(t *testing.T, s storage.Store) storage.PAT {
	t.Helper()
	o := newOrg(t, s)
	pr := newPrincipal(t, s, o.ID)
	p := patRecord(o.ID, pr.ID)
	mustNil(t, "CreatePAT", s.CreatePAT(t.Context(), p))
	return p
}

func exchangeTokenRecord(orgID, principalID string, expiresAt time.Time) storage.ExchangeToken {
	return storage.ExchangeToken{
		ID:          storage.NewID(),
		OrgID:       orgID,
		PrincipalID: principalID,
		Digest:      randBytes(32),
		CreatedAt:   now().Add(-time.Minute),
		ExpiresAt:   expiresAt,
		// Provenance round-trips (docs/security.md A-50).
		CreatorID:        storage.NewID(),
		CreatorExpiresAt: expiresAt.Add(time.Minute),
		Claims:           []byte(`{"pat_id":"p","src_jti":["a","b"]}`),
	}
}

// tokenOwner is an organization and a principal in it, the parents most
// token records need.
type tokenOwner struct {
	org       storage.Organization
	principal storage.Principal
	client    storage.Client
}

// newTokenOwner creates an organization, a principal and a client.
func newTokenOwner(t *testing.T, s storage.Store) tokenOwner {
	t.Helper()
	o := newOrg(t, s)
	pr := newPrincipal(t, s, o.ID)
	c := clientRecord(o.ID, pr.ID)
	mustNil(t, "CreateClient", s.CreateClient(t.Context(), c))
	return tokenOwner{org: o, principal: pr, client: c}
}

func (o tokenOwner) exchangeToken(expiresAt time.Time) storage.ExchangeToken {
	return exchangeTokenRecord(o.org.ID, o.principal.ID, expiresAt)
}

func (o tokenOwner) refreshToken(familyID string, expiresAt time.Time) storage.RefreshToken {
	t0 := now()
	return storage.RefreshToken{
		ID:          storage.NewID(),
		FamilyID:    familyID,
		Digest:      randBytes(32),
		ClientID:    o.client.ID,
		OrgID:       o.org.ID,
		Subject:     odd("user"),
		PrincipalID: o.principal.ID,
		Scopes:      []string{"openid", "offline_access"},
		Audiences:   []string{"api://a", "api://b"},
		Claims:      []byte(`{"email":"a@example.com","groups":["x","y"],"n":1}`),
		CreatedAt:   t0.Add(-time.Minute),
		ExpiresAt:   expiresAt,
	}
}

func (o tokenOwner) hostToken(runnerID string, expiresAt time.Time) storage.HostToken {
	t0 := now()
	return storage.HostToken{
		ID:            storage.NewID(),
		OrgID:         o.org.ID,
		RunnerID:      runnerID,
		SubjectID:     o.principal.ID,
		Host:          "github.com",
		IntegrationID: "integration-" + storage.NewID(),
		Scopes:        []string{"repo", "read:org"},
		Source:        storage.HostTokenSourceOAuth,
		SealedToken:   allBytes(100),
		SealedRefresh: allBytes(50),
		SealedDataKey: allBytes(60),
		MasterKeyID:   "mk-1",
		SealVersion:   2,
		ExpiresAt:     expiresAt,
		CreatedAt:     t0.Add(-time.Hour),
		UpdatedAt:     t0,
	}
}

// newRunner creates a runner principal in org.
func newRunner(t *testing.T, s storage.Store, orgID string) storage.Principal {
	t.Helper()
	r := principalRecord(orgID)
	r.Kind = storage.PrincipalRunner
	r.Disabled = false
	mustNil(t, "CreatePrincipal", s.CreatePrincipal(t.Context(), r))
	return r
}

func auditRecord(orgID string, at time.Time) storage.AuditEvent {
	return storage.AuditEvent{
		ID:        storage.NewID(),
		Time:      at,
		OrgID:     orgID,
		Actor:     "principal:" + storage.NewID(),
		Action:    "pat.create",
		Target:    "pat:" + storage.NewID(),
		RequestID: storage.NewID(),
		Outcome:   "ok",
		Detail:    odd("detail"),
		ClientIP:  "2001:db8::7",
		UserAgent: "sts-conformance/1.0",
	}
}
