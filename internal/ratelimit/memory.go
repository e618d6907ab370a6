package ratelimit

import (
	"cmp"
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// DefaultMaxKeys bounds the keys one Memory limiter tracks.
const DefaultMaxKeys = 100_000

const shards = 16

// Memory is the in-process Limiter. Each key gets its own bucket. Memory
// stays bounded: a bucket idle long enough to be full again is
// indistinguishable from a new one and is dropped, and when MaxKeys keys
// are tracked the idle ones are swept and, if that is not enough, arbitrary
// ones evicted (an attacker who spreads requests over that many keys
// already gets a full burst per key, so eviction gives nothing away that
// the key spread did not).
type Memory struct {
	rule    Rule
	maxKeys int
	now     func() time.Time
	seed    maphash.Seed
	shard   [shards]shard
	evicted atomic.Uint64
}

type shard struct {
	mu sync.Mutex
	m  map[string]*bucket
}

type bucket struct {
	lim  *rate.Limiter
	last time.Time
}

// MemoryOptions tune NewMemory; the zero value means the defaults.
type MemoryOptions struct {
	// MaxKeys bounds the buckets kept; default DefaultMaxKeys.
	MaxKeys int
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// NewMemory returns an in-process limiter applying rule to every key.
func NewMemory(rule Rule, o MemoryOptions) *Memory {
	m := &Memory{rule: rule, maxKeys: cmp.Or(o.MaxKeys, DefaultMaxKeys), now: o.Now, seed: maphash.MakeSeed()}
	if m.now == nil {
		m.now = time.Now
	}
	for i := range m.shard {
		m.shard[i].m = map[string]*bucket{}
	}
	return m
}

// Allow takes one token from key's bucket if it has one.
func (m *Memory) Allow(key string) Decision {
	if !m.rule.Enabled() {
		return Decision{Allowed: true}
	}
	now := m.now()
	s := &m.shard[maphash.String(m.seed, key)%shards]
	s.mu.Lock()
	b, ok := s.m[key]
	if !ok {
		if len(s.m) >= max(m.maxKeys/shards, 1) {
			m.evicted.Add(s.sweep(now, m.refill(), max(m.maxKeys/shards, 1)))
		}
		b = &bucket{lim: rate.NewLimiter(rate.Limit(m.rule.Rate), m.rule.Burst)}
		s.m[key] = b
	}
	b.last = now
	allowed := b.lim.AllowN(now, 1)
	tokens := b.lim.TokensAt(now)
	s.mu.Unlock()
	return decide(m.rule, allowed, tokens)
}

// refill is how long an empty bucket takes to fill: a bucket idle that long
// is full and can be forgotten.
func (m *Memory) refill() time.Duration {
	return seconds(float64(m.rule.Burst) / m.rule.Rate)
}

// sweep drops idle buckets and, if the shard is still at its cap, arbitrary
// ones until it is at 7/8 of the cap, so the next sweep is far away. It
// returns how many buckets that were not idle it evicted.
func (s *shard) sweep(now time.Time, idle time.Duration, limit int) uint64 {
	for k, b := range s.m {
		if now.Sub(b.last) >= idle {
			delete(s.m, k)
		}
	}
	var evicted uint64
	for k := range s.m {
		if len(s.m) < limit-limit/8 {
			break
		}
		delete(s.m, k)
		evicted++
	}
	return evicted
}

// Len returns the number of buckets currently tracked.
func (m *Memory) Len() int {
	n := 0
	for i := range m.shard {
		s := &m.shard[i]
		s.mu.Lock()
		n += len(s.m)
		s.mu.Unlock()
	}
	return n
}

// Evicted returns how many non-idle buckets were dropped to stay within
// MaxKeys; a growing count means the cap is too low or someone is spraying
// keys.
func (m *Memory) Evicted() uint64 { return m.evicted.Load() }
