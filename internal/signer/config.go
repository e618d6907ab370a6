package signer

import (
	"errors"
	"fmt"
	"time"
)

// Config is the signing-key policy of a deployment (docs/design.md#limits).
type Config struct {
	// Algorithm signs new keys: ES256 (default), RS256 or EdDSA. Keys of
	// another algorithm already in the set keep verifying until deleted.
	Algorithm string
	// RSABits is the modulus size of new RS256 keys: 2048 (default) or more.
	RSABits int
	// RotationPeriod is how long a key stays active (default 30 days).
	// Replicas agree because it is measured from the stored ActivatedAt.
	RotationPeriod time.Duration
	// PublishAhead is how long a next key is published in the JWKS before
	// it may sign (default 1 h). It must exceed every verifier's JWKS cache
	// lifetime, including our Cache-Control max-age.
	PublishAhead time.Duration
	// MaxTokenLifetime is the longest lifetime of any token we sign
	// (default 12 h, docs/design.md#limits).
	MaxTokenLifetime time.Duration
	// Leeway is the clock skew verifiers allow (default 60 s).
	Leeway time.Duration
	// PollInterval is how often Run reloads the set from storage and
	// checks the schedule (default 1 min).
	PollInterval time.Duration
	// CheckInterval is how often Run, between polls, reads the stored
	// set's version (one small indexed read, storage.KeySetVersioner)
	// and reloads the set when it changed (default 1 s, at most
	// PollInterval). It bounds how long this replica signs with, and
	// trusts, a key another replica or the CLI revoked, and signs with a
	// key they rotated away from (docs/security.md F-66).
	CheckInterval time.Duration
	// StorageTimeout bounds each storage step of a key poll, a rotation
	// and a revocation (a read, a commit, a reload) whatever the
	// caller's context allows: serve's has no deadline, so storage that
	// stopped answering would otherwise hold the key set's lock until TCP
	// gave up (docs/security.md F-94). Serve and the CLI set it to
	// storage.call_timeout (default 5 s).
	StorageTimeout time.Duration
}

// DefaultConfig returns the defaults of docs/design.md#limits.
func DefaultConfig() Config {
	return Config{
		Algorithm:        ES256,
		RSABits:          MinRSABits,
		RotationPeriod:   30 * 24 * time.Hour,
		PublishAhead:     time.Hour,
		MaxTokenLifetime: 12 * time.Hour,
		Leeway:           60 * time.Second,
		PollInterval:     time.Minute,
		CheckInterval:    time.Second,
		StorageTimeout:   5 * time.Second,
	}
}

// withDefaults fills zero fields from DefaultConfig.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.Algorithm == "" {
		c.Algorithm = d.Algorithm
	}
	if c.RSABits == 0 {
		c.RSABits = d.RSABits
	}
	if c.RotationPeriod == 0 {
		c.RotationPeriod = d.RotationPeriod
	}
	if c.PublishAhead == 0 {
		c.PublishAhead = d.PublishAhead
	}
	if c.MaxTokenLifetime == 0 {
		c.MaxTokenLifetime = d.MaxTokenLifetime
	}
	if c.Leeway == 0 {
		c.Leeway = d.Leeway
	}
	if c.PollInterval == 0 {
		c.PollInterval = d.PollInterval
	}
	if c.CheckInterval == 0 {
		c.CheckInterval = min(d.CheckInterval, c.PollInterval)
	}
	if c.StorageTimeout == 0 {
		c.StorageTimeout = d.StorageTimeout
	}
	return c
}

// Validate returns every problem with c at once (zero fields count as
// their defaults).
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	switch c.Algorithm {
	case ES256, RS256, EdDSA:
	default:
		errs = append(errs, fmt.Errorf("signing algorithm %q: want ES256, RS256 or EdDSA", c.Algorithm))
	}
	if c.RSABits < MinRSABits || c.RSABits > 8192 {
		errs = append(errs, fmt.Errorf("rsa key size %d: want %d to 8192 bits", c.RSABits, MinRSABits))
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"rotation period", c.RotationPeriod}, {"publish-ahead", c.PublishAhead},
		{"max token lifetime", c.MaxTokenLifetime}, {"leeway", c.Leeway}, {"poll interval", c.PollInterval},
		{"check interval", c.CheckInterval}, {"storage timeout", c.StorageTimeout},
	} {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("%s %s: must not be negative", d.name, d.v))
		}
	}
	if c.RotationPeriod <= c.PublishAhead {
		errs = append(errs, fmt.Errorf("rotation period %s must exceed publish-ahead %s", c.RotationPeriod, c.PublishAhead))
	}
	if c.CheckInterval > c.PollInterval {
		errs = append(errs, fmt.Errorf("check interval %s must not exceed poll interval %s", c.CheckInterval, c.PollInterval))
	}
	if c.PollInterval >= c.PublishAhead {
		errs = append(errs, fmt.Errorf("poll interval %s must be shorter than publish-ahead %s", c.PollInterval, c.PublishAhead))
	}
	return errors.Join(errs...)
}

// retainFor is how long a retired key stays published: every token it
// signed has then expired. A replica may keep signing with a key for up to
// one poll interval after another replica retired it, so that is added too.
func (c Config) retainFor() time.Duration {
	return c.MaxTokenLifetime + c.Leeway + c.PollInterval
}

// DefaultUnconfirmedBound is how long a replica whose key-set checks run
// (Config.CheckInterval, every second by default) signs with, and trusts,
// the keys it holds without a read of the stored set confirming them
// (docs/security.md F-109): ten checks, so a check or two that fail or
// wait for storage (each bounded at 5 s) cost nothing.
const DefaultUnconfirmedBound = 10 * time.Second

// UnconfirmedBound is how long after the start of the last read of the
// stored set that found the keys this replica holds (a load, or a key-set
// check that found the stored version unchanged) it signs with them and
// trusts them: DefaultUnconfirmedBound, or twice the interval between
// such reads when that is longer (twice PollInterval when no checks run).
// Past it the replica signs nothing and answers its tokens' checks
// "unavailable" until it reads the set again; a key revoked or rotated
// away from elsewhere is never used for longer (docs/security.md F-109).
func (c Config) UnconfirmedBound() time.Duration {
	every := c.CheckInterval
	if every <= 0 || every >= c.PollInterval {
		every = c.PollInterval
	}
	return max(DefaultUnconfirmedBound, 2*every)
}
