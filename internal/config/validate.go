package config

import (
	"cmp"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/opensts/sts/internal/clientip"
)

// check validates one field; it returns nil or a message without the field
// name.
type check struct {
	field string
	fn    func(c *Config) error
}

// checks is the table Validate walks. Each entry names the key it judges.
var checks = []check{
	{"listen", func(c *Config) error { return checkListen(c.Listen) }},
	{"issuer", func(c *Config) error { return checkIssuer(c.Issuer) }},
	{"data_dir", func(c *Config) error { return required(c.DataDir) }},
	{"tracing.otlp_endpoint", func(c *Config) error { return checkOTLPEndpoint(c.Tracing.OTLPEndpoint) }},
	{"tracing.sample_ratio", func(c *Config) error { return checkSampleRatio(c.Tracing.SampleRatio) }},
	{"storage.type", func(c *Config) error { return oneOf(c.Storage.Type, "sqlite", "postgres") }},
	{"storage.path", func(c *Config) error {
		if c.Storage.Type == "sqlite" && c.Storage.Path == "" {
			return errors.New("required when storage.type is sqlite")
		}
		return nil
	}},
	{"storage.dsn", func(c *Config) error {
		if c.Storage.Type == "postgres" && c.Storage.DSN == "" {
			return errors.New("required when storage.type is postgres (set it or STS_STORAGE_DSN)")
		}
		return nil
	}},
	{"storage.call_timeout", func(c *Config) error {
		if c.Storage.CallTimeout < 0 {
			return fmt.Errorf("must not be negative (0 is the default, %s), got %s", DefaultCallTimeout, c.Storage.CallTimeout)
		}
		if c.Storage.CallTimeoutOrDefault() >= c.HTTP.WriteTimeout {
			return fmt.Errorf("must be below http.write_timeout (%s), got %s", c.HTTP.WriteTimeout, c.Storage.CallTimeout)
		}
		return nil
	}},
	{"storage.statement_timeout", func(c *Config) error {
		if c.Storage.StatementTimeout < 0 {
			return fmt.Errorf("must not be negative (0 is the default, %s), got %s", DefaultStatementTimeout, c.Storage.StatementTimeout)
		}
		return nil
	}},
	{"http.max_connections", func(c *Config) error { return notNegative(int64(c.HTTP.MaxConnections)) }},
	{"http.max_in_flight", func(c *Config) error {
		m := c.HTTP.MaxInFlight
		return cmp.Or(notNegative(int64(m.Token)), notNegative(int64(m.API)), notNegative(int64(m.Ops)))
	}},
	{"tls.cert_file", func(c *Config) error { return bothOrNeither(c.TLS.CertFile, "tls.key_file", c.TLS.KeyFile) }},
	{"tls.key_file", func(c *Config) error { return bothOrNeither(c.TLS.KeyFile, "tls.cert_file", c.TLS.CertFile) }},
	{"ops.listen", func(c *Config) error {
		if c.Ops.Listen == "" {
			return nil
		}
		if c.Ops.Listen == c.Listen {
			return errors.New("must differ from listen")
		}
		return checkListen(c.Ops.Listen)
	}},
	{"ops.pprof", func(c *Config) error {
		if c.Ops.Pprof && c.Ops.Listen == "" {
			return errors.New("needs ops.listen: pprof is never served on the public listener")
		}
		return nil
	}},
	{"http.max_body_bytes", func(c *Config) error { return positive(c.HTTP.MaxBodyBytes) }},
	{"runtime.memory_limit", func(c *Config) error {
		if n := c.Runtime.MemoryLimit; n != 0 && n < 16<<20 {
			return fmt.Errorf("must be 0 (the runtime's own) or at least 16777216 (16 MiB), got %d", n)
		}
		return nil
	}},
	{"runtime.gc_percent", func(c *Config) error {
		if c.Runtime.GCPercent < 0 {
			return fmt.Errorf("must be 0 (the runtime's own) or positive, got %d", c.Runtime.GCPercent)
		}
		return nil
	}},
	{"http.max_header_bytes", func(c *Config) error { return positive(int64(c.HTTP.MaxHeaderBytes)) }},
	{"http.read_header_timeout", func(c *Config) error { return positiveDuration(c.HTTP.ReadHeaderTimeout) }},
	{"http.read_timeout", func(c *Config) error { return positiveDuration(c.HTTP.ReadTimeout) }},
	{"http.write_timeout", func(c *Config) error { return positiveDuration(c.HTTP.WriteTimeout) }},
	{"http.idle_timeout", func(c *Config) error { return positiveDuration(c.HTTP.IdleTimeout) }},
	{"http.shutdown_timeout", func(c *Config) error { return positiveDuration(c.HTTP.ShutdownTimeout) }},
	{"http.trusted_proxies", func(c *Config) error { _, err := clientip.ParsePrefixes(c.HTTP.TrustedProxies); return err }},
	{"http.client_ip_header", func(c *Config) error { _, err := clientip.ParseHeader(c.HTTP.ClientIPHeader); return err }},
	{"keys.algorithm", func(c *Config) error { return oneOf(c.Keys.Algorithm, "ES256", "RS256", "EdDSA") }},
	{"keys.rsa_bits", func(c *Config) error {
		if c.Keys.RSABits < 2048 {
			return fmt.Errorf("must be at least 2048, got %d", c.Keys.RSABits)
		}
		return nil
	}},
	{"keys.rotation_period", func(c *Config) error { return positiveDuration(c.Keys.RotationPeriod) }},
	{"keys.publish_ahead", func(c *Config) error {
		// The JWKS is cached for 5 minutes; a key must be published longer
		// than that before it signs (docs/security.md D-05).
		if c.Keys.PublishAhead <= 5*time.Minute {
			return fmt.Errorf("must be longer than the JWKS cache lifetime (5m), got %s", c.Keys.PublishAhead)
		}
		if c.Keys.PublishAhead >= c.Keys.RotationPeriod {
			return fmt.Errorf("must be shorter than keys.rotation_period (%s), got %s", c.Keys.RotationPeriod, c.Keys.PublishAhead)
		}
		return nil
	}},
	{"keys.max_token_lifetime", func(c *Config) error { return positiveDuration(c.Keys.MaxTokenLifetime) }},
	{"keys.leeway", func(c *Config) error {
		if c.Keys.Leeway < 0 || c.Keys.Leeway > 5*time.Minute {
			return fmt.Errorf("must be between 0s and 5m, got %s", c.Keys.Leeway)
		}
		return nil
	}},
	{"keys.extra_algorithms", func(c *Config) error { return checkExtraAlgorithms(c.Keys) }},
	{"id_tokens.rs256_audiences", func(c *Config) error { return checkRS256Audiences(c) }},
	{"log.format", func(c *Config) error { return oneOf(c.Log.Format, "auto", "text", "json") }},
	{"log.level", func(c *Config) error { return oneOf(c.Log.Level, "debug", "info", "warn", "error") }},
	{"errors.detail", func(c *Config) error { return oneOf(c.Errors.Detail, ErrorDetailNone, ErrorDetailReason) }},
	{"client_auth.assertion_audience", func(c *Config) error {
		return oneOf(c.ClientAuth.AssertionAudience, AssertionAudienceIssuerOrTokenEndpoint, AssertionAudienceIssuer)
	}},
	{"federation.verified_token_cache", func(c *Config) error {
		if n := c.Federation.VerifiedTokenCache; n < 0 || n > maxVerifiedTokenCache {
			return fmt.Errorf("must be between 0 (off) and %d, got %d", maxVerifiedTokenCache, n)
		}
		return nil
	}},
	{"token_exchange.max_delegation_depth", func(c *Config) error {
		if n := c.TokenExchange.MaxDelegationDepth; n < 1 || n > maxDelegationDepth {
			return fmt.Errorf("must be between 1 and %d, got %d", maxDelegationDepth, n)
		}
		return nil
	}},
	{"rate_limits.per_ip", func(c *Config) error { return checkRate(c.RateLimits.PerIP) }},
	{"rate_limits.per_client", func(c *Config) error { return checkRate(c.RateLimits.PerClient) }},
	{"rate_limits.per_pool", func(c *Config) error { return checkRate(c.RateLimits.PerPool) }},
	{"rate_limits.max_keys", func(c *Config) error { return positive(int64(c.RateLimits.MaxKeys)) }},
	{"rate_limits.redis_url", func(c *Config) error { return checkRedisURL(c.RateLimits.RedisURL.Reveal()) }},
	{"rate_limits.redis_timeout", func(c *Config) error { return checkRedisTimeout(c.RateLimits.RedisTimeout) }},
	{"audit.buffer", func(c *Config) error { return positive(int64(c.Audit.Buffer)) }},
	{"audit.batch", func(c *Config) error {
		if c.Audit.Batch <= 0 || c.Audit.Batch > c.Audit.Buffer {
			return fmt.Errorf("must be between 1 and audit.buffer (%d), got %d", c.Audit.Buffer, c.Audit.Batch)
		}
		return nil
	}},
	{"audit.flush_every", func(c *Config) error { return positiveDuration(c.Audit.FlushEvery) }},
	{"audit.mode", func(c *Config) error { return oneOf(c.Audit.Mode, AuditModeBestEffort, AuditModeRequired) }},
	{"audit.retention", func(c *Config) error {
		if c.Audit.Retention < 0 {
			return fmt.Errorf("must not be negative (0 keeps events forever), got %s", c.Audit.Retention)
		}
		return nil
	}},
	{"gc.interval", func(c *Config) error {
		if c.GC.Interval < time.Second {
			return fmt.Errorf("must be at least 1s, got %s", c.GC.Interval)
		}
		return nil
	}},
}

// Validate reports every invalid value at once as an *Error, each problem
// naming its key. It returns nil when the configuration is usable.
func (c *Config) Validate() error {
	e := &Error{}
	for _, ch := range checks {
		if err := ch.fn(c); err != nil {
			e.add(ch.field, "%s", err.Error())
		}
	}
	validateTrust(c, e)
	validateWeb(c, e)
	return e.orNil()
}

// bothOrNeither: a value that needs its partner set too.
func bothOrNeither(v, other, otherValue string) error {
	if v == "" && otherValue != "" {
		return fmt.Errorf("required when %s is set", other)
	}
	return nil
}

func required(s string) error {
	if strings.TrimSpace(s) == "" {
		return errors.New("required")
	}
	return nil
}

func oneOf(got string, allowed ...string) error {
	for _, a := range allowed {
		if got == a {
			return nil
		}
	}
	quoted := make([]string, len(allowed))
	for i, a := range allowed {
		quoted[i] = strconv.Quote(a)
	}
	list := strings.Join(quoted[:len(quoted)-1], ", ") + " or " + quoted[len(quoted)-1]
	return fmt.Errorf("must be %s, got %q", list, got)
}

func positive(n int64) error {
	if n <= 0 {
		return fmt.Errorf("must be positive, got %d", n)
	}
	return nil
}

func positiveDuration(d time.Duration) error {
	if d <= 0 {
		return fmt.Errorf("must be a positive duration such as 30s, got %s", d)
	}
	return nil
}

func checkListen(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("must be host:port such as 127.0.0.1:8080, got %q", s)
	}
	if strings.ContainsAny(host, " /") {
		return fmt.Errorf("invalid host %q", host)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("port must be a number from 0 to 65535, got %q", port)
	}
	return nil
}

// checkIssuer enforces the shape relying parties compare byte for byte
// (RFC 8414 §2): an absolute http(s) URL without query, fragment or trailing
// slash.
func checkIssuer(s string) error {
	u, err := url.Parse(s)
	bad := err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		u.RawQuery != "" || u.Fragment != "" || u.User != nil || strings.HasSuffix(s, "/")
	if bad {
		return fmt.Errorf("must be an absolute http(s) URL without trailing slash, query or fragment, got %q", s)
	}
	// Its path prefixes every route (docs/configuration.md, issuer): plain
	// segments only, nothing to escape and no ServeMux pattern character.
	if u.Path != "" && !plainPath(u.EscapedPath()) {
		return fmt.Errorf("path must be segments of letters, digits and -._~ (such as /sts), got %q", u.EscapedPath())
	}
	return nil
}

// plainPath reports whether p is "/" followed by segments of unreserved
// characters (RFC 3986 §2.3), none empty, "." or "..".
func plainPath(p string) bool {
	rest, ok := strings.CutPrefix(p, "/")
	if !ok {
		return false
	}
	for seg := range strings.SplitSeq(rest, "/") {
		if seg == "" || seg == "." || seg == ".." || strings.TrimLeft(seg, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~") != "" {
			return false
		}
	}
	return true
}

// checkExtraAlgorithms judges keys.extra_algorithms against keys.algorithm.
func checkExtraAlgorithms(k KeysConfig) error {
	for i, alg := range k.ExtraAlgorithms {
		switch {
		case oneOf(alg, "ES256", "RS256", "EdDSA") != nil:
			return fmt.Errorf("%q: want ES256, RS256 or EdDSA (or an empty list, or none, for no extra algorithm)", alg)
		case alg == k.Algorithm:
			return fmt.Errorf("%s is keys.algorithm already", alg)
		case slices.Contains(k.ExtraAlgorithms[:i], alg):
			return fmt.Errorf("%s listed twice", alg)
		}
	}
	return nil
}

// checkRS256Audiences: every entry is a plain audience (or "*"), and an
// RS256 key is kept to sign them.
func checkRS256Audiences(c *Config) error {
	if len(c.IDTokens.RS256Audiences) == 0 {
		return nil
	}
	for _, a := range c.IDTokens.RS256Audiences {
		if a == "" || strings.TrimSpace(a) != a || len(a) > 512 {
			return fmt.Errorf("%q is not an audience (non-empty, no surrounding spaces, at most 512 bytes)", a)
		}
	}
	if c.Keys.Algorithm != "RS256" && !slices.Contains(c.Keys.ExtraAlgorithms, "RS256") {
		return errors.New("needs an RS256 key: add RS256 to keys.extra_algorithms")
	}
	return nil
}

func notNegative(n int64) error {
	if n < 0 {
		return fmt.Errorf("must not be negative, got %d", n)
	}
	return nil
}
