package api

import (
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/opensts/sts/internal/ratelimit"
)

// maxPenalized bounds the source addresses one failedAuth remembers.
const maxPenalized = 10_000

// failedAuth holds back a source address that sends bearer credentials
// failing authentication (docs/security.md T-279): each failure takes a
// token from the address's per-IP bucket (the public procedures' limit,
// in memory or in Redis), after the failure, so a genuine credential is
// never charged; once the bucket is empty the address is refused, until
// the bucket has a token again, before any credential it sends is
// checked. Without it anyone could send tokens signed by no key of ours
// (or PATs we never issued) and have each cost a signature check or a
// storage lookup, unbounded. The refusals are remembered in this
// replica's memory, at most maxPenalized addresses.
type failedAuth struct {
	mu    sync.Mutex
	until map[string]time.Time
}

// blocked reports how long the address of key is still refused, if it is.
func (f *failedAuth) blocked(key string, now time.Time) (time.Duration, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	t, ok := f.until[key]
	if !ok {
		return 0, false
	}
	if !now.Before(t) {
		delete(f.until, key)
		return 0, false
	}
	return t.Sub(now), true
}

// charge takes one token from key's bucket in lim for a failed
// authentication, and remembers the address as refused when the bucket
// was empty; it reports the decision.
func (f *failedAuth) charge(lim ratelimit.Limiter, key string, now time.Time) ratelimit.Decision {
	d := lim.Allow(key)
	if d.Allowed {
		return d
	}
	wait := max(d.RetryAfter, time.Second)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.until == nil {
		f.until = map[string]time.Time{}
	}
	if _, ok := f.until[key]; !ok && len(f.until) >= maxPenalized {
		for k, t := range f.until {
			if !now.Before(t) {
				delete(f.until, k)
			}
		}
		for k := range f.until {
			if len(f.until) < maxPenalized {
				break
			}
			delete(f.until, k)
		}
	}
	f.until[key] = now.Add(wait)
	return d
}

// setRetryAfter writes Retry-After, whole seconds rounded up.
func setRetryAfter(h http.Header, d time.Duration) {
	h.Set("Retry-After", strconv.FormatInt(int64((d+time.Second-1)/time.Second), 10))
}
