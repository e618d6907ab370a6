package rs

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"

	jose "github.com/go-jose/go-jose/v4"
)

// fetchCall is one JWKS fetch, shared by every caller that needs it; err
// is set before done is closed.
type fetchCall struct {
	done chan struct{}
	err  error
}

// key returns the signing key kid. A stale key set, or one without kid, is
// refetched at most once per MinRefetch, by one fetch at a time that no
// caller holds the lock across (docs/security.md T-75): a caller whose key
// is held uses the held set while a refresh runs, and one that needs the
// fetch waits for it no longer than its own ctx allows.
func (v *Verifier) key(ctx context.Context, kid string) (*jose.JSONWebKey, error) {
	refresh := v.RefreshInterval
	if refresh == 0 {
		refresh = DefaultRefreshInterval
	}
	minRefetch := v.MinRefetch
	if minRefetch == 0 {
		minRefetch = DefaultMinRefetch
	}
	v.mu.Lock()
	now := v.now()
	k := v.find(kid)
	if k != nil && now.Sub(v.fetched) <= refresh {
		v.mu.Unlock()
		return k, nil
	}
	call := v.inflight
	if call == nil && now.Sub(v.tried) >= minRefetch {
		call = &fetchCall{done: make(chan struct{})}
		v.inflight, v.tried = call, now
		// The key set serves every caller, so this caller going away must
		// not fail it for the others: the fetch keeps ctx's values but not
		// its cancellation, and is bounded by FetchTimeout instead.
		go v.refresh(context.WithoutCancel(ctx), call)
	}
	lastErr := v.fetchErr
	v.mu.Unlock()

	switch {
	case k != nil:
		return k, nil // the held set serves while it is refreshed
	case call == nil && lastErr != nil:
		// Within MinRefetch of a failed fetch the kid may well be one sts
		// publishes: the keys are unavailable (503), the token is not
		// known to be bad.
		return nil, lastErr
	case call == nil:
		return nil, fmt.Errorf("%w: unknown kid", ErrInvalidToken)
	}
	select {
	case <-call.done:
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: waiting for the key set: %w", ErrKeys, ctx.Err())
	}
	if call.err != nil {
		return nil, call.err
	}
	v.mu.Lock()
	k = v.find(kid)
	v.mu.Unlock()
	if k == nil {
		return nil, fmt.Errorf("%w: unknown kid", ErrInvalidToken)
	}
	return k, nil
}

// find returns the held signing key kid, or nil; v.mu must be held. A key
// set is never changed once held, so the key stays valid after unlocking.
func (v *Verifier) find(kid string) *jose.JSONWebKey {
	if v.keys == nil {
		return nil
	}
	i := slices.IndexFunc(v.keys.Keys, func(k jose.JSONWebKey) bool { return k.KeyID == kid && k.Use != "enc" })
	if i < 0 {
		return nil
	}
	return &v.keys.Keys[i]
}

// refresh runs call: it fetches the key set and records the outcome. A
// failed fetch keeps the held set.
func (v *Verifier) refresh(ctx context.Context, call *fetchCall) {
	set, err := v.fetch(ctx)
	v.mu.Lock()
	if err == nil {
		v.keys, v.fetched = set, v.now()
	}
	v.fetchErr, v.inflight, call.err = err, nil, err
	v.mu.Unlock()
	close(call.done)
}

// fetch gets the key set, bounded by FetchTimeout whatever HTTPClient is.
func (v *Verifier) fetch(ctx context.Context) (*jose.JSONWebKeySet, error) {
	u := v.JWKSURL
	if u == "" {
		u = v.Issuer + "/.well-known/jwks.json"
	}
	client := v.HTTPClient
	if client == nil {
		client = http.DefaultClient
	}
	timeout := v.FetchTimeout
	if timeout == 0 {
		timeout = DefaultFetchTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrKeys, err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrKeys, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%w: jwks status %d", ErrKeys, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSSize+1))
	if err != nil || len(body) > maxJWKSSize {
		return nil, fmt.Errorf("%w: jwks unreadable or too large", ErrKeys)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(body, &set); err != nil {
		return nil, fmt.Errorf("%w: jwks: %v", ErrKeys, err)
	}
	return &set, nil
}
