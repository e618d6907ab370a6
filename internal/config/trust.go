package config

import "time"

// OrganizationConfig declares an organization (docs/design.md#the-model).
type OrganizationConfig struct {
	ID   string `koanf:"id"`
	Name string `koanf:"name"`
	Tier string `koanf:"tier"`
}

// PoolConfig declares an identity pool and its providers (docs/design.md#the-model). The
// CEL fields are compiled when serve starts; a pool that fails to compile
// stops start-up with the pool named.
type PoolConfig struct {
	ID           string `koanf:"id"`
	Organization string `koanf:"organization"`
	DisplayName  string `koanf:"display_name"`
	Disabled     bool   `koanf:"disabled"`
	// IdentityClaim is a CEL expression; empty means assertion.sub.
	IdentityClaim string `koanf:"identity_claim"`
	// Condition is a CEL expression over assertion and request; required
	// for providers of shared multi-tenant issuers.
	Condition string        `koanf:"condition"`
	Mapping   MappingConfig `koanf:"mapping"`
	// Scopes is the ceiling of what an exchange through the pool may grant.
	Scopes []string `koanf:"scopes"`
	// MaxTokenLifetime caps issued tokens; zero means keys.max_token_lifetime.
	MaxTokenLifetime time.Duration `koanf:"max_token_lifetime"`
	// Principal, when set, is the principal ID exchanged tokens act as.
	Principal string `koanf:"principal"`
	// AllowUnauthenticated lets exchanges through the pool proceed without
	// client authentication (Google-style /v1/token needs none).
	AllowUnauthenticated bool `koanf:"allow_unauthenticated"`
	// Audiences are the resource servers the pool's tokens may be minted
	// for; audience or resource in a request selects one.
	Audiences []string `koanf:"audiences"`
	// GoogleDefaultScopes is what Google's default scope (cloud-platform)
	// means in the pool; empty: every scope of the pool but offline_access,
	// which it may not list (a default never holds it).
	GoogleDefaultScopes []string         `koanf:"google_default_scopes"`
	Providers           []ProviderConfig `koanf:"providers"`
}

// MappingConfig holds the CEL expressions that shape the issued token.
type MappingConfig struct {
	Subject    string            `koanf:"subject"`
	Groups     string            `koanf:"groups"`
	Attributes map[string]string `koanf:"attributes"`
}

// ProviderConfig declares a trusted external issuer inside a pool.
type ProviderConfig struct {
	ID        string   `koanf:"id"`
	Issuer    string   `koanf:"issuer"`
	Audiences []string `koanf:"audiences"`
	// JWKSURI overrides OIDC discovery; empty means discovery.
	JWKSURI string `koanf:"jwks_uri"`
	// JWKSFile names a JWKS document read at load (at most 256 KiB), for
	// issuers sts cannot reach.
	JWKSFile   string   `koanf:"jwks_file"`
	Algorithms []string `koanf:"algorithms"`
	// OneTimeUse lets each token of this issuer be exchanged once (by iss
	// and jti, across replicas; docs/security.md T-48). Its tokens must carry
	// a jti.
	OneTimeUse bool `koanf:"one_time_use"`
	// AllowMissingKID accepts tokens without a kid header when the key
	// set has exactly one key (default: refused).
	AllowMissingKID bool `koanf:"allow_missing_kid"`
	// AllowMultipleAudiences accepts tokens whose aud names several
	// audiences, one of them accepted (default: refused).
	AllowMultipleAudiences bool `koanf:"allow_multiple_audiences"`
	Disabled               bool `koanf:"disabled"`
	// JWKS is the content of JWKSFile, filled by Load.
	JWKS []byte `koanf:"-"`
}

// FederationConfig governs how sts reaches external issuers.
type FederationConfig struct {
	// AllowLoopback permits issuers, discovery and JWKS on 127.0.0.0/8 and
	// ::1, over plain http too. For development and benchmarks only.
	AllowLoopback bool `koanf:"allow_loopback"`
	// AllowPrivate permits them on private addresses (10/8, 172.16/12,
	// 192.168/16, fc00::/7, 100.64/10): a provider on an internal network.
	// Link-local and the cloud metadata addresses stay refused
	// (docs/security.md T-59).
	AllowPrivate bool `koanf:"allow_private"`
	// VerifiedTokenCache is how many verified subject and actor tokens
	// are remembered so that the same token presented again skips its
	// signature check (docs/design.md#verified-subject-tokens); 0 turns
	// the cache off.
	VerifiedTokenCache int `koanf:"verified_token_cache"`
}

// TokenExchangeConfig tunes the token exchange (RFC 8693) and the refresh
// families it begins.
type TokenExchangeConfig struct {
	// MaxDelegationDepth is the longest delegation chain (act) an issued
	// token carries, checked at the exchange and on every refresh of a
	// family (docs/security.md T-166): lowering it refuses the families
	// begun with a longer chain until it is raised again.
	MaxDelegationDepth int `koanf:"max_delegation_depth"`
}

// RateLimitsConfig bounds the token endpoints per source IP, per client and
// per pool, and the bearer API's GetIDToken and CreateExchangeToken with
// the same client and pool buckets (PerClient's rule also keys a
// principal presenting its own credential; docs/security.md A-57). Limits
// are in memory, per replica, unless RedisURL is set.
type RateLimitsConfig struct {
	PerIP     RateLimitConfig `koanf:"per_ip"`
	PerClient RateLimitConfig `koanf:"per_client"`
	PerPool   RateLimitConfig `koanf:"per_pool"`
	// MaxKeys bounds the buckets each limit tracks (memory stays bounded
	// whatever keys clients send).
	MaxKeys int `koanf:"max_keys"`
	// RedisURL (redis://[[user]:password@]host[:port][/db], rediss:// for
	// TLS) keeps the buckets in Redis, shared by every replica; empty keeps
	// them in memory. It may carry a password, so it is a Secret: logs name
	// the server by host:port only.
	RedisURL Secret `koanf:"redis_url"`
	// RedisTimeout bounds each Redis call; a slower or failed call is
	// decided in per-replica memory instead (docs/security.md F-15).
	RedisTimeout time.Duration `koanf:"redis_timeout"`
}

// RateLimitConfig is one token bucket: Rate requests per second on
// average, up to Burst at once. Zero in either disables it.
type RateLimitConfig struct {
	Rate  float64 `koanf:"rate"`
	Burst int     `koanf:"burst"`
}

// AuditConfig tunes the asynchronous audit writer of the token endpoints.
type AuditConfig struct {
	// Buffer is how many events may wait for a flush; beyond it events are
	// dropped and counted, never waited for.
	Buffer int `koanf:"buffer"`
	// Batch is the most events written in one transaction.
	Batch int `koanf:"batch"`
	// FlushEvery bounds how long an event waits in the buffer.
	FlushEvery time.Duration `koanf:"flush_every"`
	// Mode is AuditModeBestEffort (an issued token never waits for its
	// event; events can be lost, see docs/design.md#audit) or
	// AuditModeRequired (a token is returned only after its event is
	// committed; otherwise 503).
	Mode string `koanf:"mode"`
	// Retention is how long audit events are kept; the GC job deletes
	// older ones in bounded batches. 0 keeps them forever.
	Retention time.Duration `koanf:"retention"`
}

// Values of AuditConfig.Mode.
const (
	AuditModeBestEffort = "best_effort"
	AuditModeRequired   = "required"
)

// Default limits of the trust-related sections.
const (
	DefaultJWKSFileMax = 256 << 10
	// DefaultVerifiedTokenCache entries take about 2 MiB when full
	// (≈ 200 bytes each: a digest, a key pointer and an expiry).
	DefaultVerifiedTokenCache = 10_000
	maxVerifiedTokenCache     = 1_000_000
	// DefaultMaxDelegationDepth is grants.DefaultMaxDelegationDepth.
	DefaultMaxDelegationDepth = 5
	// maxDelegationDepth keeps a chain within what our verifier decodes
	// and the 16 KiB of a token it accepts.
	maxDelegationDepth = 16
)

func defaultRateLimits() RateLimitsConfig {
	return RateLimitsConfig{
		PerIP:        RateLimitConfig{Rate: 50, Burst: 100},
		PerClient:    RateLimitConfig{Rate: 100, Burst: 200},
		PerPool:      RateLimitConfig{Rate: 1000, Burst: 2000},
		MaxKeys:      100_000,
		RedisTimeout: 100 * time.Millisecond,
	}
}

func defaultAudit() AuditConfig {
	return AuditConfig{Buffer: 4096, Batch: 256, FlushEvery: time.Second, Mode: AuditModeBestEffort, Retention: 90 * 24 * time.Hour}
}
