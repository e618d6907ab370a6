package app

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/opensts/sts/internal/config"
	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/policy"
	"github.com/opensts/sts/internal/pools"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/trust"
)

// newTrustRegistry is the node's one trust registry: the token exchange
// selects pools with it, and every access-token verifier judges a token's
// pool and provider by it (tokens.StoreSources), so a pool disabled on
// this node refuses its tokens everywhere on this node at once.
func newTrustRegistry(store storage.Store, logger *slog.Logger) (*trust.Registry, error) {
	compiler, err := pools.NewCompiler() // the options every pool was checked with
	if err != nil {
		return nil, err
	}
	return &trust.Registry{Store: store, Compiler: compiler, Logger: logger}, nil
}

// trustPlan is the trust configuration of the file, checked and turned into
// storage records; pools.ApplyConfig writes it.
type trustPlan = pools.TrustConfig

// planTrust checks what config.Validate cannot (CEL, issuer URLs, uploaded
// JWKS, shared issuers without a condition, scopes no pool grants,
// offline_access in google_default_scopes) and returns every problem at
// once as a *config.Error, so serve exits 2 naming each pool.
func planTrust(cfg config.Config) (*pools.TrustConfig, error) {
	plan := &pools.TrustConfig{Paths: map[string]string{}, RevocationKeep: PoolLimits(cfg).RevocationKeep()}
	for _, o := range cfg.Organizations {
		plan.Orgs = append(plan.Orgs, storage.Organization{ID: o.ID, Name: cmp.Or(o.Name, o.ID), Tier: o.Tier})
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
		plan.Paths[pc.ID] = path
		pool := poolRecord(pc)
		if _, err := compiler.Compile(pool); err != nil {
			if pe, ok := errors.AsType[*policy.Error](err); ok {
				add(path+"."+pe.Field, fmt.Sprintf("pool %q: %v", pc.ID, pe.Err))
			} else {
				add(path, err.Error())
			}
		}
		for k, sc := range pool.Scopes {
			if !storage.PoolMayGrant(sc) { // docs/security.md A-68
				add(fmt.Sprintf("%s.scopes[%d]", path, k), fmt.Sprintf("pool %q: %q: %s", pc.ID, sc, pools.ReservedScopeRule))
			}
		}
		for k, sc := range pool.GoogleDefaultScopes {
			if sc == oauth2.ScopeOfflineAccess { // docs/security.md T-151
				add(fmt.Sprintf("%s.google_default_scopes[%d]", path, k), fmt.Sprintf("pool %q: %q: %s", pc.ID, sc, pools.OfflineDefaultRule))
			}
		}
		plan.Pools = append(plan.Pools, pool)
		for j, prc := range pc.Providers {
			ppath := label(path+".providers", prc.ID, j)
			pr := providerRecord(pc.ID, prc)
			if policy.IsSharedIssuer(pr.Issuer) && strings.TrimSpace(pc.Condition) == "" {
				add(path+".condition", fmt.Sprintf("pool %q: required because provider %q trusts %s, which signs tokens for every tenant; pin yours (for example assertion.repository_owner == \"acme\")", pc.ID, prc.ID, pr.Issuer))
			}
			for _, pb := range pools.ProviderProblems(pr, cfg.Federation.AllowLoopback, cfg.Federation.AllowPrivate) {
				add(ppath, pb.Message)
			}
			plan.Providers = append(plan.Providers, pr)
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

// applyTrustOnce applies the file's trust configuration the first time
// storage is up and migrated (at start, or later when PostgreSQL comes
// back), and logs what changed in one line.
func (b *boot) applyTrustOnce(ctx context.Context) error {
	if b.trust.Empty() || b.trustDone.Load() {
		return nil
	}
	// One transaction, bounded like every start-up step: a database gone
	// quiet in it must not hold the start (docs/security.md F-98).
	var ch pools.Changes
	err := startStep(ctx, b.cfg, func(ctx context.Context) (err error) {
		ch, err = pools.ApplyConfig(ctx, b.store, b.trust, time.Now())
		return err
	})
	if err != nil {
		err = fmt.Errorf("trust configuration: %w", err)
		b.trustErr.Store(&err)
		return err
	}
	b.trustDone.Store(true)
	msg := "trust configuration unchanged"
	if ch.Changed() {
		msg = "applied trust configuration"
	}
	b.logger.InfoContext(ctx, msg, "created", ch.Created, "updated", ch.Updated, "unchanged", ch.Unchanged)
	if len(ch.Ended) > 0 {
		b.logger.WarnContext(ctx, "the trust configuration changed what these pools and providers trust; the tokens exchanged through them before were ended",
			"targets", ch.Ended)
	}
	for _, k := range ch.KeptDisabled {
		b.logger.WarnContext(ctx, keptDisabledMessage(k), "target", k)
	}
	return nil
}

// keptDisabledMessage is the warning for a pool or provider ("pool/ci",
// "provider/ci/github") the file declares enabled but storage holds
// disabled: the file never enables (docs/security.md A-55), so it names
// the command that does.
func keptDisabledMessage(target string) string {
	kind, id, _ := strings.Cut(target, "/")
	cmd := "sts pool enable " + id
	if kind == "provider" {
		pool, provider, _ := strings.Cut(id, "/")
		cmd = "sts provider enable " + provider + " --pool " + pool
	}
	return kind + " " + id + " is disabled in storage; the file's enabled state is not applied; `" + cmd + "` to enable it"
}

// trustReady is the readiness check of the trust configuration.
func (b *boot) trustReady(context.Context) error {
	if b.trust.Empty() || b.trustDone.Load() {
		return nil
	}
	if p := b.trustErr.Load(); p != nil {
		return *p
	}
	return errWaitingForStorage
}
