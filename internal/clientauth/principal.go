package clientauth

import (
	"context"
	"errors"

	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/storage"
)

// PrincipalReader reads a principal (storage.PrincipalStore's read).
type PrincipalReader interface {
	GetPrincipal(ctx context.Context, id string) (storage.Principal, error)
}

// PrincipalCache serves principal records from memory; cached reports
// whether the record came from there rather than storage (*cache.Store).
type PrincipalCache interface {
	CachedPrincipal(ctx context.Context, id string) (p storage.Principal, cached bool, err error)
}

// ServiceAccount is the service account of authenticated client c, which
// must be enabled and of c's organization: a client is its service
// account's credential, and authenticates no more once that is disabled,
// deleted or moved, as a disabled client does not (invalid_client, 401;
// docs/security.md A-94). A failed read is 503. cache, when not nil,
// serves an enabled copy; a refusal is never judged on a cached copy.
func ServiceAccount(ctx context.Context, store PrincipalReader, cache PrincipalCache, c *storage.Client) (storage.Principal, error) {
	p, err := readPrincipal(ctx, store, cache, c.PrincipalID)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return storage.Principal{}, principalRefused(errors.New("client's service account gone"))
	case err != nil:
		return storage.Principal{}, unavailable(err)
	case p.Disabled:
		return storage.Principal{}, principalRefused(errors.New("client's service account disabled"))
	case p.OrgID != c.OrgID:
		return storage.Principal{}, principalRefused(errors.New("client's service account of another organization"))
	}
	return p, nil
}

// ReasonPrincipalDisabled is the reason (audit and metrics, never the
// wire's) of a refusal by [ServiceAccount].
const ReasonPrincipalDisabled = "principal_disabled"

// principalRefused is invalid_client, as on the wire for any failed
// authentication (T-09), with its own reason: the client proved its
// credential, so its refusal is told apart from a wrong secret in the
// audit event and metrics (docs/security.md D-19).
func principalRefused(cause error) *oauth2.Error {
	e := invalidClient(cause)
	e.Reason = ReasonPrincipalDisabled
	return e
}

// readPrincipal reads principal id, from cache when that holds an
// enabled copy, otherwise from store.
func readPrincipal(ctx context.Context, store PrincipalReader, cache PrincipalCache, id string) (storage.Principal, error) {
	if cache != nil {
		if p, cached, err := cache.CachedPrincipal(ctx, id); !cached || (err == nil && !p.Disabled) {
			return p, err
		}
	}
	return store.GetPrincipal(ctx, id)
}
