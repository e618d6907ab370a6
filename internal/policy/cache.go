package policy

import (
	"runtime"
	"sync"
	"weak"
)

// cacheKey identifies one planned expression within a Compiler: its source
// and the result type it was checked against. The environment and the
// Options are the Compiler's own and never change, so the Compiler is the
// environment's version: another Compiler (other limits, another
// environment) has its own cache.
type cacheKey struct {
	want   string
	source string
}

// programCache shares planned expressions between the pools of one
// Compiler: pools whose expressions have the same text hold the same
// compiledExpr (a planned cel.Program is immutable and safe for concurrent
// use), so 10 000 pools with one policy hold one set of programs, not
// 10 000 (docs/performance.md, "Cost as the work grows: the exchange").
//
// Entries are weak: the cache never keeps a program alive. A program lives
// as long as some Program (some pool, a dry run) refers to it; once the
// last one is gone the collector frees it and a cleanup removes its entry,
// so deleting or changing pools frees what they alone used, and the cache
// is never larger than what the pools hold.
type programCache struct {
	mu sync.Mutex
	m  map[cacheKey]weak.Pointer[compiledExpr]
}

// get returns the live program for k, or nil.
func (c *programCache) get(k cacheKey) *compiledExpr {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[k].Value() // the zero weak.Pointer's Value is nil
}

// put stores ce under k and returns the program to use: ce, or the one
// another goroutine stored meanwhile (so concurrent compilations of one
// text still end up sharing).
func (c *programCache) put(k cacheKey, ce *compiledExpr) *compiledExpr {
	c.mu.Lock()
	defer c.mu.Unlock()
	if old := c.m[k].Value(); old != nil {
		return old
	}
	if c.m == nil {
		c.m = make(map[cacheKey]weak.Pointer[compiledExpr])
	}
	wp := weak.Make(ce)
	c.m[k] = wp
	runtime.AddCleanup(ce, c.drop, dropArg{k: k, wp: wp})
	return ce
}

type dropArg struct {
	k  cacheKey
	wp weak.Pointer[compiledExpr]
}

// drop removes the entry of a collected program, unless it has been
// replaced by a newer one since.
func (c *programCache) drop(a dropArg) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m[a.k] == a.wp {
		delete(c.m, a.k)
	}
}

// len is the number of entries, live or awaiting their cleanup.
func (c *programCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}
