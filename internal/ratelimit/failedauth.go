package ratelimit

import (
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// maxPenalized bounds the source addresses one FailedAuth remembers.
const maxPenalized = 10_000

// FailedAuth holds back a source address that sends bearer credentials
// failing authentication (docs/security.md T-247, T-248): each failure
// takes a token from the address's per-IP bucket (rate_limits.per_ip, in
// memory or in Redis), after the failure, so a genuine credential is never
// charged; once the bucket is empty the address is refused, until the
// bucket has a token again, before any credential it sends is checked.
// Without it anyone could send tokens signed by no key of ours (or PATs we
// never issued) and have each cost a signature check or a storage lookup,
// unbounded. One FailedAuth serves every endpoint that authenticates a
// caller (the Connect API, UserInfo, introspection, revocation), so an
// address refused at one is refused at all of them (docs/security.md
// F-117, T-255, T-256). The refusals
// are remembered in this replica's memory, at most maxPenalized addresses.
// A nil *FailedAuth refuses and charges nothing. Safe for concurrent use.
type FailedAuth struct {
	// Limit returns the per-IP bucket a failure takes from; nil (or a nil
	// result): failures are not charged.
	Limit func() Limiter

	mu    sync.Mutex
	until map[string]time.Time
	// held is len(until), written under mu: Refused, asked before every
	// authenticated request, takes no lock while no address is refused.
	held atomic.Int64
}

// failedKey is the bucket of ip: its address, an IPv6 client's /64 (IPBucket).
func failedKey(ip string) string { return PrefixIP + IPBucket(ip) }

// Refused reports how long the address ip is still refused, if it is.
func (f *FailedAuth) Refused(ip string, now time.Time) (time.Duration, bool) {
	if f == nil {
		return 0, false
	}
	if f.held.Load() == 0 {
		return 0, false
	}
	key := failedKey(ip)
	f.mu.Lock()
	defer f.mu.Unlock()
	t, ok := f.until[key]
	if !ok {
		return 0, false
	}
	if !now.Before(t) {
		delete(f.until, key)
		f.held.Store(int64(len(f.until)))
		return 0, false
	}
	return t.Sub(now), true
}

// Failed charges one failed authentication from ip to its bucket, and
// remembers the address as refused when the bucket was empty; it reports
// the decision (Allowed, Limit 0, when nothing is limited).
func (f *FailedAuth) Failed(ip string, now time.Time) Decision {
	if f == nil || f.Limit == nil {
		return Decision{Allowed: true}
	}
	lim := f.Limit()
	if lim == nil {
		return Decision{Allowed: true}
	}
	key := failedKey(ip)
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
	f.held.Store(int64(len(f.until)))
	return d
}

// SetRetryAfter writes Retry-After for a refusal lasting d, whole seconds
// rounded up, at least one.
func SetRetryAfter(h http.Header, d time.Duration) {
	h.Set(hdrRetryAfter, strconv.FormatInt(max(ceilSeconds(d), 1), 10))
}

// Held is the refusal of an address FailedAuth holds back, as an error a
// handler returns and its error writer answers: D when this request's own
// failure found the bucket empty, else RetryAfter, what is left of the
// refusal (Refused's answer). Introspection and revocation answer it 429
// temporarily_unavailable (docs/security.md T-248, T-255, T-256).
type Held struct {
	D          Decision
	RetryAfter time.Duration
}

func (e *Held) Error() string { return "rate limited" }

// SetHeaders writes the refusal's headers: the bucket's (WriteHeaders)
// when D is set, else Retry-After alone.
func (e *Held) SetHeaders(h http.Header) {
	if e.D.Limit != 0 {
		WriteHeaders(h, e.D)
		return
	}
	SetRetryAfter(h, e.RetryAfter)
}
