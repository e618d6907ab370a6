package clientauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/opensts/sts/internal/storage"
)

// Limits on a client's key set (docs/design.md#limits).
const (
	jwksRefresh       = time.Hour
	jwksMinRefetch    = 30 * time.Second
	jwksMaxBytes      = 256 << 10
	jwksMaxKeys       = 100
	jwksStaleIfErrors = 24 * time.Hour
)

// remoteKeys is the cached key set of one jwks_uri client. mu guards the
// fields and is never held across a fetch.
type remoteKeys struct {
	mu      sync.Mutex
	uri     string
	keys    jose.JSONWebKeySet
	fetched time.Time
	tried   time.Time
}

// jwksFetchTimeout bounds one jwks_uri fetch, whoever waits for it.
const jwksFetchTimeout = 10 * time.Second

// clientKeys returns the keys that may have signed a token with kid:
// the registered JWKS, or the jwks_uri set (cached for an hour, refetched
// at most every 30 s per client when kid is unknown).
//
// A fetch is per client and single-flight: requests of the same client
// that need the set while it is being fetched wait for that one fetch;
// other clients never wait for it (no lock is held across the network),
// so an unauthenticated request naming an unknown kid for one client
// stalls nobody else.
func (a *Authenticator) clientKeys(ctx context.Context, c storage.Client, kid string) ([]jose.JSONWebKey, error) {
	if len(c.JWKS) > 0 {
		set, err := parseJWKS(c.JWKS)
		if err != nil {
			return nil, invalidClient(fmt.Errorf("registered jwks: %w", err))
		}
		return pick(set, kid), nil
	}
	if c.JWKSURI == "" || a.HTTPClient == nil {
		return nil, invalidClient(errors.New("client has no usable keys"))
	}
	a.jwksMu.Lock()
	if a.jwks == nil {
		a.jwks = map[string]*remoteKeys{}
	}
	rk := a.jwks[c.ID]
	if rk == nil || rk.uri != c.JWKSURI {
		rk = &remoteKeys{uri: c.JWKSURI}
		a.jwks[c.ID] = rk
	}
	a.jwksMu.Unlock()

	rk.mu.Lock()
	stale := a.now().Sub(rk.fetched) > jwksRefresh
	keys := pick(rk.keys, kid)
	rk.mu.Unlock()
	if !stale && len(keys) > 0 {
		return keys, nil
	}
	ch := a.jwksFlight.DoChan(c.ID+" "+c.JWKSURI, func() (any, error) { return a.refetch(ctx, rk) })
	select {
	case r := <-ch:
		if r.Err != nil {
			return nil, r.Err
		}
		return pick(r.Val.(jose.JSONWebKeySet), kid), nil
	case <-ctx.Done():
		return nil, unavailable(ctx.Err())
	}
}

// refetch fetches rk's set unless it was tried within jwksMinRefetch (the
// cooldown), and returns the set to use: the new one, or the cached one
// while it is not older than jwksStaleIfErrors.
func (a *Authenticator) refetch(ctx context.Context, rk *remoteKeys) (jose.JSONWebKeySet, error) {
	rk.mu.Lock()
	now := a.now()
	if now.Sub(rk.tried) < jwksMinRefetch {
		keys := rk.keys
		rk.mu.Unlock()
		return keys, nil
	}
	rk.tried = now
	uri := rk.uri
	rk.mu.Unlock()

	// The fetch serves every waiter: it does not end with the first
	// caller's request, only with its own bound.
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), jwksFetchTimeout)
	defer cancel()
	set, err := a.fetchJWKS(fctx, uri)

	rk.mu.Lock()
	defer rk.mu.Unlock()
	switch {
	case err == nil:
		rk.keys, rk.fetched = set, now
	case now.Sub(rk.fetched) > jwksStaleIfErrors:
		return jose.JSONWebKeySet{}, invalidClient(fmt.Errorf("jwks_uri: %w", err))
	}
	return rk.keys, nil
}

// fetchJWKS fetches a key set with a size cap; the client is the
// restricted one, so private and metadata addresses are refused.
func (a *Authenticator) fetchJWKS(ctx context.Context, uri string) (jose.JSONWebKeySet, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, uri, nil)
	if err != nil {
		return jose.JSONWebKeySet{}, err
	}
	resp, err := a.HTTPClient.Do(req)
	if err != nil {
		return jose.JSONWebKeySet{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return jose.JSONWebKeySet{}, fmt.Errorf("status %d", resp.StatusCode)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, jwksMaxBytes+1))
	if err != nil {
		return jose.JSONWebKeySet{}, err
	}
	if len(b) > jwksMaxBytes {
		return jose.JSONWebKeySet{}, errors.New("jwks too large")
	}
	return parseJWKS(b)
}

// parseJWKS parses a key set of public keys only, at most jwksMaxKeys.
func parseJWKS(b []byte) (jose.JSONWebKeySet, error) {
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(b, &set); err != nil {
		return set, err
	}
	if len(set.Keys) > jwksMaxKeys {
		return jose.JSONWebKeySet{}, fmt.Errorf("more than %d keys", jwksMaxKeys)
	}
	for _, k := range set.Keys {
		if !k.Valid() || !k.IsPublic() {
			return jose.JSONWebKeySet{}, errors.New("jwks holds an invalid or private key")
		}
	}
	return set, nil
}

// ValidateJWKS checks a key set a client registers.
func ValidateJWKS(b []byte) error {
	set, err := parseJWKS(b)
	if err == nil && len(set.Keys) == 0 {
		err = errors.New("jwks has no keys")
	}
	return err
}

// pick returns the keys with this kid, or every key when kid is empty.
func pick(set jose.JSONWebKeySet, kid string) []jose.JSONWebKey {
	if kid == "" {
		return set.Keys
	}
	return set.Key(kid)
}
