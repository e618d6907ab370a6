package config

import (
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"

	"github.com/opensts/sts/internal/sts"
)

// recordID is the shape of organization, pool and provider IDs: they appear
// in URLs and Google-style audiences (pools/<pool>/providers/<provider>).
var recordID = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

const recordIDRule = "lower-case letters, digits, - and _, starting with a letter or digit, at most 63"

// readJWKSFiles reads every provider's jwks_file into its JWKS, at most
// DefaultJWKSFileMax bytes; a missing or oversized file is a problem.
func readJWKSFiles(c *Config, problems *Error) {
	for i := range c.Pools {
		p := &c.Pools[i]
		for j := range p.Providers {
			pr := &p.Providers[j]
			if pr.JWKSFile == "" {
				continue
			}
			data, err := readCapped(pr.JWKSFile, DefaultJWKSFileMax)
			if err != nil {
				problems.add(providerPath(p, i, pr, j)+".jwks_file", "%v", err)
				continue
			}
			pr.JWKS = data
		}
	}
}

func readCapped(name string, limit int64) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s is larger than %d KiB", name, limit>>10)
	}
	return data, nil
}

func poolPath(p *PoolConfig, i int) string { return itemLabel("pools", p.ID, i) }

func providerPath(p *PoolConfig, i int, pr *ProviderConfig, j int) string {
	return itemLabel(poolPath(p, i)+".providers", pr.ID, j)
}

// validateTrust checks the shape of organizations and pools: IDs, required
// fields, duplicates, lifetimes. CEL and issuer checks need the policy and
// federation packages and run when serve applies the configuration.
func validateTrust(c *Config, e *Error) {
	orgs := map[string]bool{}
	for i, o := range c.Organizations {
		path := itemLabel("organizations", o.ID, i)
		checkID(path, o.ID, orgs, e)
		checkName(path+".name", o.Name, e)
	}
	pools := map[string]bool{}
	for i := range c.Pools {
		p := &c.Pools[i]
		path := poolPath(p, i)
		checkID(path, p.ID, pools, e)
		checkName(path+".display_name", p.DisplayName, e)
		if strings.TrimSpace(p.Organization) == "" {
			e.add(path+".organization", "required")
		}
		if p.MaxTokenLifetime < 0 || p.MaxTokenLifetime > c.Keys.MaxTokenLifetime {
			e.add(path+".max_token_lifetime", "must be between 0s (the default) and keys.max_token_lifetime (%s), got %s", c.Keys.MaxTokenLifetime, p.MaxTokenLifetime)
		}
		for k, s := range p.Scopes {
			if s == "" || strings.ContainsAny(s, " \t\n\"\\") {
				e.add(fmt.Sprintf("%s.scopes[%d]", path, k), "a scope is a non-empty token without spaces, quotes or backslashes, got %q", s)
			}
		}
		providers := map[string]bool{}
		for j := range p.Providers {
			pr := &p.Providers[j]
			ppath := providerPath(p, i, pr, j)
			checkID(ppath, pr.ID, providers, e)
			if strings.TrimSpace(pr.Issuer) == "" {
				e.add(ppath+".issuer", "required")
			}
			if len(pr.Audiences) == 0 {
				e.add(ppath+".audiences", "at least one audience is required")
			}
		}
	}
}

// checkID checks one record ID and that it is unique within seen.
func checkID(path, id string, seen map[string]bool, e *Error) {
	switch {
	case id == "":
		e.add(path+".id", "required")
	case !recordID.MatchString(id):
		e.add(path+".id", "must be %s characters, got %q", recordIDRule, id)
	case seen[id]:
		e.add(path+".id", "duplicate id %q", id)
	}
	seen[id] = true
}

// checkName adds a problem when name, text the file sets for people to
// read, breaks the rule the API, the CLI and the pages apply to names:
// at most sts.MaxNameBytes bytes (docs/security.md T-138) of
// sts.CheckDisplayText characters (T-135).
func checkName(path, name string, e *Error) {
	if len(name) > sts.MaxNameBytes {
		e.add(path, "at most %d bytes, got %d", sts.MaxNameBytes, len(name))
		return
	}
	if err := sts.CheckDisplayText(path, name); err != nil {
		e.add(path, "%s", strings.TrimPrefix(err.Error(), path+": "))
	}
}

// checkRate validates one token bucket.
func checkRate(r RateLimitConfig) error {
	switch {
	case r.Rate < 0 || r.Burst < 0:
		return fmt.Errorf("rate and burst must not be negative, got rate %g, burst %d", r.Rate, r.Burst)
	case (r.Rate == 0) != (r.Burst == 0):
		return errors.New("set both rate and burst, or both to 0 to disable the limit")
	}
	return nil
}

// ValidRecordID reports whether id is a valid organization, pool or
// provider ID; the CLI applies the same rule as the file.
func ValidRecordID(id string) bool { return recordID.MatchString(id) }
