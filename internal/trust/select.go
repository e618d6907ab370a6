package trust

import (
	"context"
	"slices"

	"github.com/opensts/sts/internal/policy"
	"github.com/opensts/sts/internal/storage"
)

// Selector says how to find the pool and provider of a subject token.
// Issuer and Audiences are the token's unverified iss and aud
// (federation.PeekIssuer): they only choose which keys verify the token,
// and that verification repeats the iss and aud checks.
type Selector struct {
	PoolID     string // identity_pool_id, pool or a resource name; "" selects by Issuer
	ProviderID string // from a Google resource name; needs PoolID
	Issuer     string // "" is accepted only when the pool has one provider
	Audiences  []string
	// OrgID, when set, limits a selection by Issuer to that
	// organization's pools: the authenticated client's, which acts
	// within its own organization only, so another organization's pool
	// trusting the same issuer and audience neither serves nor makes its
	// request ambiguous (docs/security.md A-84). A named pool is judged
	// as named.
	OrgID string
}

// Match is the pool and provider a token is judged by.
type Match struct {
	Pool     *Pool
	Provider storage.Provider
}

// Select finds the pool and provider for sel (docs/design.md#the-model):
//   - PoolID set: that pool, which must exist and be enabled, and its
//     provider named ProviderID or, without one, the provider trusting
//     Issuer (preferring one whose audiences match);
//   - otherwise: the unique enabled pool with an enabled provider whose
//     issuer is Issuer and whose audiences contain one of Audiences.
//     Several such pools are ReasonAmbiguousPool: the caller must name one,
//     never have one picked for it. With OrgID only that organization's
//     pools are candidates.
//
// Every error is an *Error with a Reason.
func (r *Registry) Select(ctx context.Context, sel Selector) (Match, error) {
	s, err := r.current(ctx)
	if err != nil {
		return Match{}, err
	}
	if sel.PoolID != "" {
		p := s.pools[sel.PoolID]
		if p == nil && r.refreshOnMiss(ctx) {
			p = r.snap.Load().pools[sel.PoolID]
		}
		return selectInPool(p, sel)
	}
	refs := s.byIssuer[sel.Issuer]
	if !candidates(refs, sel.OrgID) && sel.Issuer != "" && r.refreshOnMiss(ctx) {
		refs = r.snap.Load().byIssuer[sel.Issuer]
	}
	return selectByIssuer(refs, sel)
}

// candidates reports whether refs hold a pool that may be chosen for a
// selection by issuer limited to orgID (any pool when orgID is ""). None
// is a miss, which a fresh read of storage may answer: a pool just
// created on another replica, also while another organization's pool
// trusts the same issuer (docs/security.md A-84).
func candidates(refs []ref, orgID string) bool {
	if orgID == "" {
		return len(refs) > 0
	}
	for _, rf := range refs {
		if rf.pool.OrgID == orgID {
			return true
		}
	}
	return false
}

// Lookup is Select from the snapshot already in memory, which it never
// reads storage to build or refresh: known is false when Select would
// have to (no snapshot yet, one older than MaxAge, or sel names a pool or
// an issuer the snapshot does not have, which Select answers by
// refreshing once); m and err are
// then empty and the caller asks Select. When known is true, m and err are
// what Select returns. The token endpoint uses it to learn a request's
// pool before the request's source IP is charged (docs/security.md T-10):
// nothing a flood can make it do costs more than a map lookup.
func (r *Registry) Lookup(sel Selector) (m Match, known bool, err error) {
	s := r.snap.Load()
	if s == nil || !r.fresh(s) {
		// None yet, or too old to answer from (docs/security.md F-108).
		return Match{}, false, nil
	}
	if sel.PoolID != "" {
		p := s.pools[sel.PoolID]
		if p == nil {
			return Match{}, false, nil
		}
		m, err = selectInPool(p, sel)
		return m, true, err
	}
	refs := s.byIssuer[sel.Issuer]
	if !candidates(refs, sel.OrgID) && sel.Issuer != "" {
		return Match{}, false, nil
	}
	m, err = selectByIssuer(refs, sel)
	return m, true, err
}

// Check returns pool poolID if it exists, is enabled and its policy
// compiled, and, when providerID is set, that provider exists and is
// enabled. Re-exchange of our own tokens uses it to recheck the pool the
// token came from (docs/security.md T-57).
func (r *Registry) Check(ctx context.Context, poolID, providerID string) (*Pool, error) {
	s, err := r.current(ctx)
	if err != nil {
		return nil, err
	}
	p := s.pools[poolID]
	if p == nil && r.refreshOnMiss(ctx) {
		p = r.snap.Load().pools[poolID]
	}
	if err := checkPool(p); err != nil {
		return nil, err
	}
	if providerID != "" {
		if _, err := selectInPool(p, Selector{PoolID: poolID, ProviderID: providerID}); err != nil {
			return nil, err
		}
	}
	return p, nil
}

func checkPool(p *Pool) error {
	switch {
	case p == nil:
		return newError(ReasonPoolUnknown, "no such pool", nil)
	case p.Disabled:
		e := newError(ReasonPoolDisabled, "pool "+p.ID+" is disabled", nil)
		e.OrgID = p.OrgID
		return e
	case p.CompileErr != nil:
		return p.refusal(ReasonPolicyInvalid, "pool "+p.ID+" has an invalid policy", p.CompileErr)
	}
	return nil
}

// refusal is an error about p, which exists and is enabled: a request
// that named p learns about it only when entitled to (Error.Pool).
func (p *Pool) refusal(r Reason, msg string, cause error) *Error {
	e := newError(r, msg, cause)
	e.Pool = p
	return e
}

func selectInPool(p *Pool, sel Selector) (Match, error) {
	if err := checkPool(p); err != nil {
		return Match{}, err
	}
	if sel.ProviderID != "" {
		pr, ok := p.Provider(sel.ProviderID)
		if !ok {
			return Match{}, p.refusal(ReasonProviderUnknown, "no such provider in pool "+p.ID, nil)
		}
		if pr.Disabled {
			return Match{}, p.refusal(ReasonProviderDisabled, "provider "+p.ID+"/"+pr.ID+" is disabled", nil)
		}
		return Match{Pool: p, Provider: pr}, nil
	}
	if sel.Issuer == "" && len(p.Providers) == 1 {
		if p.Providers[0].Disabled {
			return Match{}, p.refusal(ReasonProviderDisabled, "the provider of pool "+p.ID+" is disabled", nil)
		}
		return Match{Pool: p, Provider: p.Providers[0]}, nil
	}
	best := -1
	for i, pr := range p.Providers {
		if pr.Issuer != sel.Issuer {
			continue
		}
		switch {
		case !pr.Disabled && audienceMatch(pr.Audiences, sel.Audiences):
			return Match{Pool: p, Provider: pr}, nil
		case best < 0 || (p.Providers[best].Disabled && !pr.Disabled):
			best = i
		}
	}
	if best < 0 {
		return Match{}, p.refusal(ReasonIssuerUnknown, "no provider of pool "+p.ID+" trusts this issuer", nil)
	}
	if p.Providers[best].Disabled {
		return Match{}, p.refusal(ReasonProviderDisabled, "the provider of pool "+p.ID+" for this issuer is disabled", nil)
	}
	// The issuer is trusted but for other audiences: let verification say
	// audience_mismatch with the provider's own check.
	return Match{Pool: p, Provider: p.Providers[best]}, nil
}

func selectByIssuer(refs []ref, sel Selector) (Match, error) {
	if len(refs) == 0 {
		return Match{}, newError(ReasonIssuerUnknown, "no pool trusts this issuer", nil)
	}
	// A refusal among one organization's pools (OrgID) is about that
	// organization: its audit trail records it (docs/security.md D-19).
	refuse := func(r Reason, msg string, cause error) *Error {
		e := newError(r, msg, cause)
		e.OrgID = sel.OrgID
		return e
	}
	var found Match
	var disabled Reason
	ours := false // a candidate pool trusts the issuer
	for _, rf := range refs {
		pr := rf.pool.Providers[rf.provider]
		if sel.OrgID != "" && rf.pool.OrgID != sel.OrgID {
			continue
		}
		ours = true
		if !audienceMatch(pr.Audiences, sel.Audiences) {
			continue
		}
		switch {
		case rf.pool.Disabled:
			disabled = ReasonPoolDisabled
			continue
		case pr.Disabled:
			if disabled == "" {
				disabled = ReasonProviderDisabled
			}
			continue
		}
		if found.Pool != nil && found.Pool != rf.pool {
			return Match{}, refuse(ReasonAmbiguousPool, "pools "+found.Pool.ID+" and "+rf.pool.ID+" both trust this issuer and audience; name the pool", nil)
		}
		if found.Pool == nil {
			found = Match{Pool: rf.pool, Provider: pr}
		}
	}
	switch {
	case !ours:
		return Match{}, newError(ReasonIssuerUnknown, "no pool of organization "+sel.OrgID+" trusts this issuer", nil)
	case found.Pool != nil && found.Pool.CompileErr != nil:
		return Match{}, refuse(ReasonPolicyInvalid, "pool "+found.Pool.ID+" has an invalid policy", found.Pool.CompileErr)
	case found.Pool != nil:
		return found, nil
	case disabled == ReasonPoolDisabled:
		return Match{}, refuse(disabled, "the only pool trusting this issuer and audience is disabled", nil)
	case disabled != "":
		return Match{}, refuse(disabled, "the only provider trusting this issuer and audience is disabled", nil)
	}
	return Match{}, refuse(ReasonAudienceMismatch, "the issuer is trusted, but for none of the token's audiences", nil)
}

func audienceMatch(accepted, aud []string) bool {
	for _, a := range aud {
		if slices.Contains(accepted, a) {
			return true
		}
	}
	return false
}

// ParseResourceName is [policy.ParseResourceName]: the token endpoint's
// and the pool dry run's one reading of a provider resource name
// (docs/security.md T-117, F-101).
func ParseResourceName(name string) (pool, provider string, ok bool) {
	return policy.ParseResourceName(name)
}

// ValidID reports whether s can name a pool or provider in a request.
func ValidID(s string) bool { return policy.ValidID(s) }
