package config

import (
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"time"

	"github.com/opensts/sts/internal/clientip"
)

// Config is the whole operator configuration. The koanf tags are the YAML
// keys; they are a contract other tools rely on, so add fields freely but
// rename none.
type Config struct {
	// Listen is the host:port of the single HTTP listener.
	Listen string `koanf:"listen"`
	// Issuer is the iss of every token we mint; defaults to "http://" + Listen
	// (on SQLite only: sts serve on PostgreSQL requires it set).
	Issuer string `koanf:"issuer"`
	// IssuerDerived is set by Derive when Issuer was not configured and was
	// filled from Listen.
	IssuerDerived bool `koanf:"-"`
	// DataDir holds the SQLite database and the generated master key.
	DataDir string `koanf:"data_dir"`
	// MasterKeyFile names a file holding the base64 master key. When neither
	// it nor STS_MASTER_KEY is set, <data_dir>/master.key is used.
	MasterKeyFile string `koanf:"master_key_file"`
	// MasterKey is the base64 master key from STS_MASTER_KEY. It is read
	// only from the environment, never from YAML or flags, and never printed.
	MasterKey Secret `koanf:"-"`
	// PreviousMasterKeyFiles name older master keys that still open rows
	// sealed before a master-key rotation; `sts keys rotate-master` re-wraps
	// those rows under the current key, after which they can be removed.
	PreviousMasterKeyFiles []string `koanf:"previous_master_key_files"`
	// AllowInsecureMasterKeyFile lets start-up proceed with a master key
	// file that group or others may read. Off: such a file stops start-up.
	AllowInsecureMasterKeyFile bool `koanf:"allow_insecure_master_key_file"`

	Storage StorageConfig `koanf:"storage"`
	HTTP    HTTPConfig    `koanf:"http"`
	TLS     TLSConfig     `koanf:"tls"`
	Ops     OpsConfig     `koanf:"ops"`
	Log     LogConfig     `koanf:"log"`
	GC      GCConfig      `koanf:"gc"`
	Keys    KeysConfig    `koanf:"keys"`
	// IDTokens chooses how ID tokens are signed.
	IDTokens IDTokensConfig `koanf:"id_tokens"`

	// Organizations, Pools and their providers are the trust configuration,
	// applied to storage at start (create or update; records not listed are
	// left alone).
	Organizations []OrganizationConfig `koanf:"organizations"`
	Pools         []PoolConfig         `koanf:"pools"`
	Federation    FederationConfig     `koanf:"federation"`
	TokenExchange TokenExchangeConfig  `koanf:"token_exchange"`
	RateLimits    RateLimitsConfig     `koanf:"rate_limits"`
	Audit         AuditConfig          `koanf:"audit"`
	Errors        ErrorsConfig         `koanf:"errors"`
	ClientAuth    ClientAuthConfig     `koanf:"client_auth"`
	Tracing       TracingConfig        `koanf:"tracing"`
	Runtime       RuntimeConfig        `koanf:"runtime"`
	// InstanceAdmins are principal IDs made instance administrators (when
	// their credential holds sts:admin) beside those whose stored flag is
	// set; see docs/authorization.md.
	InstanceAdmins []string `koanf:"instance_admins"`
	// HostTokenIntegrations name the OAuth token endpoints the host-token
	// vault refreshes OAUTH-source tokens at, keyed by integration ID.
	HostTokenIntegrations []HostTokenIntegrationConfig `koanf:"host_token_integrations"`
	// Web configures the browser pages: sign-in and /tokens.
	Web WebConfig `koanf:"web"`

	// File is the configuration file that was loaded, empty when none was.
	File string `koanf:"-"`
}

// StorageConfig selects and configures the storage backend.
type StorageConfig struct {
	// Type is "sqlite" or "postgres".
	Type string `koanf:"type"`
	// Path is the SQLite database file; defaults to <data_dir>/sts.db.
	Path string `koanf:"path"`
	// DSN is the PostgreSQL connection string. It may carry a password, so
	// it is never logged.
	DSN string `koanf:"dsn"`
	// AutoMigrate applies pending migrations when serve starts.
	AutoMigrate bool `koanf:"auto_migrate"`
	// CallTimeout bounds every request's storage calls (the request's
	// context deadline) and PostgreSQL's connect_timeout: a black-holed
	// database answers 503 with Retry-After after this long
	// (docs/reliability.md). It must stay below http.write_timeout; 0 is
	// DefaultCallTimeout.
	CallTimeout time.Duration `koanf:"call_timeout"`
	// StatementTimeout is PostgreSQL's statement_timeout on every
	// connection: the server ends a statement (a lock wait included)
	// running longer. Ignored for SQLite; 0 is DefaultStatementTimeout.
	StatementTimeout time.Duration `koanf:"statement_timeout"`
}

// Defaults of the storage bounds, used when the setting is 0.
const (
	DefaultCallTimeout      = 5 * time.Second
	DefaultStatementTimeout = 10 * time.Second
)

// CallTimeoutOrDefault is CallTimeout, or DefaultCallTimeout when 0.
func (s StorageConfig) CallTimeoutOrDefault() time.Duration {
	if s.CallTimeout > 0 {
		return s.CallTimeout
	}
	return DefaultCallTimeout
}

// StatementTimeoutOrDefault is StatementTimeout, or
// DefaultStatementTimeout when 0.
func (s StorageConfig) StatementTimeoutOrDefault() time.Duration {
	if s.StatementTimeout > 0 {
		return s.StatementTimeout
	}
	return DefaultStatementTimeout
}

// HTTPConfig bounds what one client can make the listener do.
type HTTPConfig struct {
	MaxBodyBytes      int64         `koanf:"max_body_bytes"`
	MaxHeaderBytes    int           `koanf:"max_header_bytes"`
	ReadHeaderTimeout time.Duration `koanf:"read_header_timeout"`
	ReadTimeout       time.Duration `koanf:"read_timeout"`
	WriteTimeout      time.Duration `koanf:"write_timeout"`
	IdleTimeout       time.Duration `koanf:"idle_timeout"`
	ShutdownTimeout   time.Duration `koanf:"shutdown_timeout"`
	// MaxConnections caps the open client connections; beyond it new
	// connections are answered 503 with Retry-After and closed, at most one
	// a millisecond (the others wait in the kernel's accept queue). 0: no cap.
	MaxConnections int `koanf:"max_connections"`
	// MaxInFlight caps the requests being served at once, per route class;
	// beyond it a request is answered 503 with Retry-After at once. Of the
	// token class's, an adaptive number run and the others wait for a
	// running slot (docs/reliability.md#the-token-gate).
	MaxInFlight MaxInFlightConfig `koanf:"max_in_flight"`
	// TrustedProxies are CIDRs of the load balancers in front of sts: only
	// a request whose TCP peer is inside one has its ClientIPHeader
	// believed. Empty (the default) believes none.
	TrustedProxies []string `koanf:"trusted_proxies"`
	// ClientIPHeader is the one forwarding header read behind a trusted
	// proxy: "x-forwarded-for" (the default) or "forwarded" (RFC 7239).
	// The proxy must overwrite it or append to it, never pass a client's
	// through untouched (docs/security.md T-78).
	ClientIPHeader string `koanf:"client_ip_header"`
}

// MaxInFlightConfig is the admission limit of each route class
// (docs/reliability.md#admission-control); 0 admits without limit.
type MaxInFlightConfig struct {
	// Token: the OAuth endpoints (/oauth2/*, the dialects' token paths).
	Token int `koanf:"token"`
	// API: the Connect and gRPC services and the web pages.
	API int `koanf:"api"`
	// Ops: /livez, /readyz, /metrics, discovery and the JWKS.
	Ops int `koanf:"ops"`
}

// TLSConfig makes the public listener serve HTTPS (HTTP/2 and HTTP/1.1)
// with the certificate and key in these PEM files, re-read when they change.
// Both or neither.
type TLSConfig struct {
	CertFile string `koanf:"cert_file"`
	KeyFile  string `koanf:"key_file"`
}

// Enabled reports whether the public listener serves TLS.
func (t TLSConfig) Enabled() bool { return t.CertFile != "" || t.KeyFile != "" }

// OpsConfig is the optional operations listener.
type OpsConfig struct {
	// Listen is the host:port of a plain-HTTP listener for /metrics,
	// /livez, /readyz and (with Pprof) /debug/pprof/. When set, /metrics
	// leaves the public listener. Empty: no ops listener.
	Listen string `koanf:"listen"`
	// Pprof serves net/http/pprof under /debug/pprof/ on the ops listener
	// (never on the public one). Requires Listen.
	Pprof bool `koanf:"pprof"`
}

// LogConfig selects the log format and level.
type LogConfig struct {
	// Format is "auto" (text on a terminal, JSON otherwise), "text" or "json".
	Format string `koanf:"format"`
	// Level is "debug", "info", "warn" or "error".
	Level string `koanf:"level"`
}

// ErrorsConfig governs what error responses disclose.
type ErrorsConfig struct {
	// Detail is what a refused token request's body adds to the OAuth
	// error and error_description: "none" (the default) or "reason", our
	// stable machine reason. The reason is always in the logs, the
	// metrics, the audit trail and the pool dry run.
	Detail string `koanf:"detail"`
}

// ClientAuthConfig governs client authentication at the token,
// introspection and revocation endpoints.
type ClientAuthConfig struct {
	// AssertionAudience is the aud a private_key_jwt assertion may name,
	// always as its one value: AssertionAudienceIssuerOrTokenEndpoint (the
	// default) or AssertionAudienceIssuer (docs/security.md T-125).
	AssertionAudience string `koanf:"assertion_audience"`
}

// The client_auth.assertion_audience values.
const (
	AssertionAudienceIssuerOrTokenEndpoint = "issuer_or_token_endpoint"
	AssertionAudienceIssuer                = "issuer"
)

// RuntimeConfig is the memory policy of the Go runtime (docs/performance.md).
type RuntimeConfig struct {
	// MemoryLimit is the soft limit on the Go heap and runtime in bytes
	// (runtime/debug.SetMemoryLimit); 0 leaves the runtime's own (none, or
	// GOMEMLIMIT). The GOMEMLIMIT environment variable, when set, wins.
	MemoryLimit int64 `koanf:"memory_limit"`
	// GCPercent is GOGC: how far the heap may grow past the live data
	// before a collection; 0 leaves the runtime's own (100, or GOGC). The
	// GOGC environment variable, when set, wins.
	GCPercent int `koanf:"gc_percent"`
}

// Memory policy defaults: the heap may grow well past the live data (a
// token service's live heap is small, and with Go's default a collection
// ran every ~140 exchanges), while the limit keeps the process inside its
// RSS budget of 64 MiB. The limit is that budget less what the executable's
// own pages take (33–37 MiB resident under load) and a margin: the Go
// runtime's memory is the part of the resident set sts decides
// (docs/performance.md "Memory policy").
const (
	DefaultMemoryLimit = 24 << 20
	DefaultGCPercent   = 200
)

// ErrorDetail values.
const (
	ErrorDetailNone   = "none"
	ErrorDetailReason = "reason"
)

// GCConfig schedules the removal of expired rows.
type GCConfig struct {
	Interval time.Duration `koanf:"interval"`
}

// KeysConfig is the signing-key policy (docs/design.md#limits).
type KeysConfig struct {
	// Algorithm of new signing keys: "ES256" (default), "RS256" or "EdDSA".
	Algorithm string `koanf:"algorithm"`
	// RSABits is the modulus size of new RS256 keys (at least 2048).
	RSABits int `koanf:"rsa_bits"`
	// RotationPeriod is how long a key signs before the next one takes over.
	RotationPeriod time.Duration `koanf:"rotation_period"`
	// PublishAhead is how long a key is in the JWKS before it signs.
	PublishAhead time.Duration `koanf:"publish_ahead"`
	// MaxTokenLifetime is the longest lifetime of any token we sign; retired
	// keys stay published that long (plus leeway) after their last use.
	MaxTokenLifetime time.Duration `koanf:"max_token_lifetime"`
	// Leeway is the clock skew allowed when verifying our tokens.
	Leeway time.Duration `koanf:"leeway"`
	// ExtraAlgorithms keep an active key of each listed algorithm beside
	// Algorithm's, published and rotated like it, for relying parties that
	// accept only that algorithm. Unset, it is [RS256] unless Algorithm is
	// RS256 (OpenID Discovery requires RS256 among the ID token signing
	// algorithms); an empty list, or "none", keeps Algorithm's keys only.
	ExtraAlgorithms []string `koanf:"extra_algorithms"`
}

// RevocationKeep is how long a revocation that ends every token issued
// before it must be kept: past the longest token lifetime plus the
// leeway, every such token has expired (tokens.RevocationKeep).
func (k KeysConfig) RevocationKeep() time.Duration { return k.MaxTokenLifetime + k.Leeway }

// IDTokensConfig chooses the algorithm of the ID tokens we sign
// (gitpod.v1 IdentityService/GetIDToken). They are signed with
// keys.algorithm unless an audience asks otherwise.
type IDTokensConfig struct {
	// RS256Audiences are the audiences that get RS256 ID tokens: a token
	// is signed RS256 when any of its audiences is listed, or when the list
	// holds "*". RS256 must then be keys.algorithm or one of
	// keys.extra_algorithms.
	RS256Audiences []string `koanf:"rs256_audiences"`
}

// HostTokenIntegrationConfig is one SCM OAuth integration (the Gitpod API's
// integrationId). The client secret comes only from a file.
type HostTokenIntegrationConfig struct {
	ID               string `koanf:"id"` // the integration's UUID
	TokenURL         string `koanf:"token_url"`
	ClientID         string `koanf:"client_id"`
	ClientSecretFile string `koanf:"client_secret_file"`
}

// Secret is a configuration value that must never reach a log or an error
// message. Its String and LogValue methods redact it.
type Secret string

// String returns a redacted placeholder.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return "[redacted]"
}

// LogValue keeps the secret out of slog output.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// Reveal returns the secret itself, for the one caller that needs it.
func (s Secret) Reveal() string { return string(s) }

// Default values. Derived defaults (issuer, storage.path) are filled in by
// Load after every layer is applied, so they follow an overridden listen or
// data_dir.
const (
	DefaultListen  = "127.0.0.1:8080"
	DefaultDataDir = "./sts-data"
	DefaultFile    = "./sts.yaml"
)

// DefaultConfig returns the configuration used when nothing is set. Issuer
// and Storage.Path are left empty; [Config.Derive] fills them.
func DefaultConfig() Config {
	return Config{
		Listen:  DefaultListen,
		DataDir: DefaultDataDir,
		Storage: StorageConfig{Type: "sqlite", AutoMigrate: true},
		HTTP: HTTPConfig{
			MaxBodyBytes:      64 << 10,
			MaxHeaderBytes:    64 << 10,
			ReadHeaderTimeout: 5 * time.Second,
			ReadTimeout:       15 * time.Second,
			WriteTimeout:      30 * time.Second,
			IdleTimeout:       120 * time.Second,
			ShutdownTimeout:   15 * time.Second,
			MaxConnections:    64,
			MaxInFlight:       MaxInFlightConfig{Token: 64, API: 64, Ops: 64},
			ClientIPHeader:    string(clientip.XForwardedFor),
		},
		Log: LogConfig{Format: "auto", Level: "info"},
		GC:  GCConfig{Interval: 5 * time.Minute},
		Keys: KeysConfig{
			Algorithm:        "ES256",
			RSABits:          2048,
			RotationPeriod:   30 * 24 * time.Hour,
			PublishAhead:     time.Hour,
			MaxTokenLifetime: 12 * time.Hour,
			Leeway:           60 * time.Second,
		},
		Federation:    FederationConfig{VerifiedTokenCache: DefaultVerifiedTokenCache},
		TokenExchange: TokenExchangeConfig{MaxDelegationDepth: DefaultMaxDelegationDepth},
		RateLimits:    defaultRateLimits(),
		Audit:         defaultAudit(),
		Errors:        ErrorsConfig{Detail: ErrorDetailNone},
		ClientAuth:    ClientAuthConfig{AssertionAudience: AssertionAudienceIssuerOrTokenEndpoint},
		Tracing:       defaultTracing(),
		Web:           defaultWeb(),
		Runtime:       RuntimeConfig{MemoryLimit: DefaultMemoryLimit, GCPercent: DefaultGCPercent},
	}
}

// Derive fills the defaults that depend on other fields: Issuer from Listen,
// Storage.Path from DataDir and Keys.ExtraAlgorithms from Keys.Algorithm.
// Fields already set are kept.
func (c *Config) Derive() {
	if c.Issuer == "" && c.Listen != "" {
		c.IssuerDerived = true
		c.Issuer = "http://" + c.Listen
		// ":8080" listens on every interface; an issuer needs a host.
		if host, port, err := net.SplitHostPort(c.Listen); err == nil && host == "" {
			c.Issuer = "http://" + net.JoinHostPort("localhost", port)
		}
	}
	// A list written as one comma-separated string (from the environment
	// Load splits it already).
	if x := c.Keys.ExtraAlgorithms; len(x) == 1 && strings.Contains(x[0], ",") {
		c.Keys.ExtraAlgorithms = strings.Split(strings.ReplaceAll(x[0], " ", ""), ",")
	}
	switch {
	case c.Keys.ExtraAlgorithms == nil && c.Keys.Algorithm != "RS256":
		c.Keys.ExtraAlgorithms = []string{"RS256"}
	case c.Keys.ExtraAlgorithms == nil, len(c.Keys.ExtraAlgorithms) == 1 && c.Keys.ExtraAlgorithms[0] == "none":
		c.Keys.ExtraAlgorithms = []string{}
	}
	if c.Storage.Path == "" && c.Storage.Type == "sqlite" && c.DataDir != "" {
		c.Storage.Path = filepath.Join(c.DataDir, "sts.db")
	}
}

// MasterKeyPath is where serve looks for, and may generate, the master key
// when none is configured.
func (c *Config) MasterKeyPath() string { return filepath.Join(c.DataDir, "master.key") }
