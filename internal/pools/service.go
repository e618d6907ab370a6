package pools

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/opensts/sts/internal/audit"
	"github.com/opensts/sts/internal/federation"
	"github.com/opensts/sts/internal/policy"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/sts"
)

// Store is the narrow storage view the service needs.
type Store interface {
	storage.TrustStore
	// PutRevocation stores the row a deletion leaves (docs/security.md A-54).
	PutRevocation(ctx context.Context, r storage.Revocation) error
	GetOrganization(ctx context.Context, id string) (storage.Organization, error)
	GetPrincipal(ctx context.Context, id string) (storage.Principal, error)
	// GetClient reads the client a dry run names, whose scopes narrow the
	// default scope (docs/security.md T-185).
	GetClient(ctx context.Context, id string) (storage.Client, error)
	AppendAudit(ctx context.Context, events ...storage.AuditEvent) error
}

// Audit actions; the configuration file's changes use the same ones with
// actor "config".
const (
	ActionPoolCreate     = "pool.create"
	ActionPoolUpdate     = "pool.update"
	ActionPoolDelete     = "pool.delete"
	ActionProviderCreate = "provider.create"
	ActionProviderUpdate = "provider.update"
	ActionProviderDelete = "provider.delete"
)

// Caller is who asks for a change, for the audit trail.
type Caller = audit.Caller

// Limits are the server settings the rules depend on.
type Limits struct {
	// MaxTokenLifetime is keys.max_token_lifetime, the most a pool's cap
	// may be; required.
	MaxTokenLifetime time.Duration
	// AllowLoopback is federation.allow_loopback: issuers and JWKS URIs
	// may then use plain http to a loopback address, and the dry run may
	// fetch keys from one.
	AllowLoopback bool
	// AllowPrivate is federation.allow_private: issuers and JWKS URIs
	// may name private addresses, and the dry run may fetch keys there.
	AllowPrivate bool
	// Leeway is the clock leeway the dry run verifies tokens with, as the
	// token endpoint does (keys.leeway); zero means federation's default.
	Leeway time.Duration
	// OwnIssuer is sts's own issuer: no provider may trust it, however
	// spelled ([federation.SameIssuer], docs/security.md A-56). Empty
	// skips the check.
	OwnIssuer string
	// DefaultAudience is the audience the token endpoint issues to a
	// request naming none (the issuer): the dry run judges it as the
	// exchange does (docs/security.md T-185). Empty: a dry run naming no
	// audience is judged on none.
	DefaultAudience string
	// Audiences are the token endpoint's further server-wide audiences
	// (grants.TokenExchange.Audiences): the dry run allows them as the
	// exchange does (policy.AudienceAllowed). Nil: none.
	Audiences []string
	// Declared holds the pools and providers the server's configuration
	// file declares: they are not deleted, since the next start would
	// create them again (docs/security.md A-59). Nil declares none.
	Declared map[TrustID]bool
}

// TrustID names a pool (Provider empty) or one of its providers.
type TrustID struct{ Pool, Provider string }

// Service creates, changes and evaluates pools and providers. Create it
// with [NewService]; set the optional fields before first use. It is safe
// for concurrent use.
type Service struct {
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Logger receives pool and provider IDs, never a subject token.
	Logger *slog.Logger

	store    Store
	limits   Limits
	compiler *policy.Compiler
	verifier *federation.Verifier
	onChange atomic.Pointer[func(context.Context) error]
}

// NewService returns a service over store. Its CEL compiler has the
// options of the token endpoint's registry (policy.Options{}); its dry
// run fetches keys with federation's restricted client, loopback allowed
// only with limits.AllowLoopback, private ones only with
// limits.AllowPrivate.
func NewService(store Store, limits Limits) (*Service, error) {
	if store == nil {
		return nil, errors.New("pools: nil store")
	}
	if limits.MaxTokenLifetime <= 0 {
		return nil, errors.New("pools: MaxTokenLifetime must be positive")
	}
	compiler, err := NewCompiler()
	if err != nil {
		return nil, err
	}
	s := &Service{store: store, limits: limits, compiler: compiler}
	s.verifier = &federation.Verifier{
		Keys:   &federation.Cache{Client: federation.NewHTTPClient(federation.ProviderClient(limits.AllowLoopback, limits.AllowPrivate))},
		Leeway: limits.Leeway,
		Now:    s.now,
	}
	return s, nil
}

// NewCompiler returns the CEL compiler every pool is checked with: the
// options of the token endpoint's trust registry, so a pool accepted here
// compiles there within the same cost budget.
func NewCompiler() (*policy.Compiler, error) { return policy.NewCompiler(policy.Options{}) }

// SetOnChange sets fn to run after every committed change, before the
// method returns; serve passes the trust registry's Refresh, so this
// node's token endpoint applies the change at once. An error from fn is
// logged; the change stands and reaches the endpoint at the registry's
// next periodic refresh. Safe while serving.
func (s *Service) SetOnChange(fn func(context.Context) error) { s.onChange.Store(&fn) }

// onChangeTimeout bounds the refresh after a change.
const onChangeTimeout = 5 * time.Second

func (s *Service) changed(ctx context.Context, what string) {
	fn := s.onChange.Load()
	if fn == nil || *fn == nil {
		return
	}
	// The change has committed: finish applying it even if the caller
	// has gone.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), onChangeTimeout)
	defer cancel()
	if err := (*fn)(ctx); err != nil {
		s.logger().WarnContext(ctx, "pools: the token endpoint did not pick up the change at once; it will at its next refresh",
			"change", what, "error", err)
	}
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Service) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.Default()
}

// changeAudited runs change and appends the event ev returns (built after
// change, from what it read) in one unit of work when the store offers
// one: the change commits with its event, or not at all
// (docs/design.md#audit). A store without one (a test double) gets the
// old order: plain, then the event, a failed append logged. Map the error
// with changeErr.
func (s *Service) changeAudited(ctx context.Context, c Caller, change func(storage.Tx) error, plain func() error,
	ev func() (orgID, action, target, detail string),
) error {
	event := func() storage.AuditEvent {
		orgID, action, target, detail := ev()
		return c.Event(s.now(), orgID, action, target, "success", detail)
	}
	if u, ok := s.store.(storage.UnitOfWork); ok {
		return storage.WithEvent(ctx, u, change, event)
	}
	if err := plain(); err != nil {
		return err
	}
	orgID, action, target, detail := ev()
	s.audit(ctx, c, orgID, action, target, detail)
	return nil
}

// RevocationKeep is how long the row a deletion or a change of trust
// leaves is kept: the longer of the longest access token's life and the
// longest refresh family's exchanged through a pool, plus the leeway,
// after which everything exchanged through the pool or provider up to
// then has expired. Such a family ends with the subject token it came
// from, which federation accepts for up to DefaultMaxTokenAge (24 h), more
// than keys.max_token_lifetime's default of 12 h (docs/security.md A-54,
//
func (l Limits) RevocationKeep() time.Duration {
	return max(l.MaxTokenLifetime, federation.DefaultMaxTokenAge) + cmp.Or(l.Leeway, federation.DefaultLeeway)
}

func (s *Service) revocationKeep() time.Duration { return s.limits.RevocationKeep() }

// changeErr maps changeAudited's error: a failed event is unavailable,
// the rest as storageErr.
func changeErr(err error, what string) error {
	if err == nil {
		return nil
	}
	if ae, ok := errors.AsType[storage.EventNotStored](err); ok {
		return sts.Wrap(sts.Unavailable, ae.Err, "audit unavailable")
	}
	return storageErr(err, what)
}

// audit records a change made without a unit of work. The change is
// durable and reveals nothing, so a failed append is logged, not returned.
func (s *Service) audit(ctx context.Context, c Caller, orgID, action, target, detail string) {
	err := s.store.AppendAudit(ctx, c.Event(s.now(), orgID, action, target, "success", detail))
	if err != nil {
		s.logger().ErrorContext(ctx, "pools: audit append failed", "action", action, "target", target, "error", err)
	}
}

// storageErr translates a storage failure into a domain error; what names
// the record (`pool "ci"`).
func storageErr(err error, what string) error {
	if e, ok := errors.AsType[*sts.Error](err); ok {
		return e // from an updater
	}
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return sts.Wrap(sts.NotFound, err, what+" not found")
	case errors.Is(err, storage.ErrAlreadyExists):
		return sts.Wrap(sts.AlreadyExists, err, what+" already exists")
	}
	return sts.Wrap(sts.Unavailable, err, "storage unavailable")
}

// Guard is an authorization a caller holds on a pool as it read it (its
// organization, its principal). The service applies it again to the
// pool's row in the unit of work of the change, with the row locked, so a
// pool moved to another organization, bound to another principal or
// deleted and taken by another organization between the caller's check
// and the write is refused and nothing is written (docs/security.md
//
type Guard func(storage.Pool) error

type guardKey struct{}

// WithGuard returns ctx carrying g for the changes made with it.
func WithGuard(ctx context.Context, g Guard) context.Context {
	return context.WithValue(ctx, guardKey{}, g)
}

func guardOf(ctx context.Context) Guard {
	g, _ := ctx.Value(guardKey{}).(Guard)
	return g
}

// recheck applies ctx's guard to pool id as tx finds it, with the row
// locked until the unit of work ends (tx.LockPool: a move or deletion of
// the pool waits, a provider created in it by another call does not);
// nil without a guard.
func recheck(ctx context.Context, tx storage.Tx, id string) error {
	g := guardOf(ctx)
	if g == nil {
		return nil
	}
	cur, err := tx.LockPool(ctx, id)
	if err != nil {
		return err
	}
	return g(cur)
}

// recheckPlain is recheck for a store without a unit of work (a test
// double): the guard on a fresh read.
func (s *Service) recheckPlain(ctx context.Context, id string) error {
	g := guardOf(ctx)
	if g == nil {
		return nil
	}
	p, err := s.store.GetPool(ctx, id)
	if err != nil {
		return err
	}
	return g(p)
}
