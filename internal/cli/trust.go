package cli

import (
	"cmp"
	"errors"
	"fmt"
	"strings"

	"github.com/opensts/sts/internal/config"
	"github.com/opensts/sts/internal/policy"
	"github.com/opensts/sts/internal/pools"
	"github.com/opensts/sts/internal/storage"
)

// trustPlan is the trust configuration of the file, checked and turned into
// storage records; applyTrust writes it.
type trustPlan struct {
	orgs      []storage.Organization
	pools     []storage.Pool
	providers []storage.Provider
	// paths names each pool's config path ("pools[ci]") for messages.
	paths map[string]string
}

func (p *trustPlan) empty() bool { return p == nil || len(p.orgs)+len(p.pools) == 0 }

// planTrust checks what config.Validate cannot (CEL, issuer URLs, uploaded
// JWKS, shared issuers without a condition) and returns every problem at
// once as a *config.Error, so serve exits 2 naming each pool.
func planTrust(cfg config.Config) (*trustPlan, error) {
	plan := &trustPlan{paths: map[string]string{}}
	for _, o := range cfg.Organizations {
		plan.orgs = append(plan.orgs, storage.Organization{ID: o.ID, Name: cmp.Or(o.Name, o.ID), Tier: o.Tier})
	}
	problems := &config.Error{}
	add := func(field, msg string) {
		problems.Problems = append(problems.Problems, config.Problem{Field: field, Message: msg})
	}
	compiler, err := pools.NewCompiler() // the API's, the CLI's and the registry's options
	if err != nil {
		return nil, err
	}
	for i, pc := range cfg.Pools {
		path := label("pools", pc.ID, i)
		plan.paths[pc.ID] = path
		pool := poolRecord(pc)
		if _, err := compiler.Compile(pool); err != nil {
			if pe, ok := errors.AsType[*policy.Error](err); ok {
				add(path+"."+pe.Field, fmt.Sprintf("pool %q: %v", pc.ID, pe.Err))
			} else {
				add(path, err.Error())
			}
		}
		plan.pools = append(plan.pools, pool)
		for j, prc := range pc.Providers {
			ppath := label(path+".providers", prc.ID, j)
			pr := providerRecord(pc.ID, prc)
			if policy.IsSharedIssuer(pr.Issuer) && strings.TrimSpace(pc.Condition) == "" {
				add(path+".condition", fmt.Sprintf("pool %q: required because provider %q trusts %s, which signs tokens for every tenant; pin yours (for example assertion.repository_owner == \"acme\")", pc.ID, prc.ID, pr.Issuer))
			}
			for _, pb := range pools.ProviderProblems(pr, cfg.Federation.AllowLoopback) {
				add(ppath, pb.Message)
			}
			plan.providers = append(plan.providers, pr)
		}
	}
	if len(problems.Problems) > 0 {
		return nil, problems
	}
	return plan, nil
}

func label(prefix, id string, i int) string {
	if id != "" {
		return prefix + "[" + id + "]"
	}
	return fmt.Sprintf("%s[%d]", prefix, i)
}

func poolRecord(pc config.PoolConfig) storage.Pool {
	return storage.Pool{
		ID:               pc.ID,
		OrgID:            pc.Organization,
		DisplayName:      pc.DisplayName,
		Disabled:         pc.Disabled,
		IdentityClaim:    pc.IdentityClaim,
		Condition:        pc.Condition,
		Mapping:          storage.Mapping{Subject: pc.Mapping.Subject, Groups: pc.Mapping.Groups, Attributes: pc.Mapping.Attributes},
		Scopes:           pc.Scopes,
		MaxTokenLifetime: pc.MaxTokenLifetime,
		PrincipalID:      pc.Principal,

		AllowUnauthenticated: pc.AllowUnauthenticated,
		Audiences:            pc.Audiences,
		GoogleDefaultScopes:  pc.GoogleDefaultScopes,
	}
}

func providerRecord(poolID string, pc config.ProviderConfig) storage.Provider {
	return storage.Provider{
		PoolID:     poolID,
		ID:         pc.ID,
		Issuer:     pc.Issuer,
		JWKSURI:    pc.JWKSURI,
		JWKS:       pc.JWKS,
		Audiences:  pc.Audiences,
		Algorithms: pc.Algorithms,
		OneTimeUse: pc.OneTimeUse,
		Disabled:   pc.Disabled,
		// Leniencies of the subject tokens, off unless configured.
		AllowMissingKID:        pc.AllowMissingKID,
		AllowMultipleAudiences: pc.AllowMultipleAudiences,
	}
}
