package federation

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
	"golang.org/x/sync/singleflight"

	"github.com/opensts/sts/internal/storage"
)

// Cache defaults (docs/design.md#limits).
const (
	DefaultRefreshInterval    = time.Hour
	DefaultMaxStale           = 24 * time.Hour
	DefaultMinRefetchInterval = 30 * time.Second
	maxStaticSets             = 1024
)

// FetchEvent describes one outbound key-set fetch, or one refetch that the
// cooldown suppressed, for logs and metrics. It never contains keys or
// tokens.
type FetchEvent struct {
	Issuer     string
	URL        string // the JWKS URL, when known
	Keys       int    // usable keys after a successful fetch
	Skipped    []string
	Err        error
	Duration   time.Duration
	Suppressed bool // an unknown-kid refetch refused by the cooldown
}

// Cache holds the last good key set per (issuer, key source) and fetches
// remote sets with the limits of docs/design.md#limits: refresh after RefreshInterval,
// keep serving the last good set up to MaxStale when fetching fails, and
// refetch on an unknown kid at most once per MinRefetchInterval per entry,
// deduplicated with singleflight (docs/security.md T-17, F-07–F-11).
//
// Exported fields are read when first used; set them before use. The zero
// value works with the defaults and NewHTTPClient(ClientOptions{}).
type Cache struct {
	Client             *http.Client
	Now                func() time.Time
	RefreshInterval    time.Duration
	MaxStale           time.Duration
	MinRefetchInterval time.Duration
	FetchTimeout       time.Duration
	MaxResponseSize    int64
	MaxKeys            int
	// OnFetch, when set, is called after every fetch attempt and every
	// suppressed refetch. It must not block.
	OnFetch func(FetchEvent)

	// Counters for metrics (jwks_fetch_total, jwks_fetch_errors_total,
	// jwks_refetch_suppressed_total).
	Fetches             atomic.Uint64
	FetchErrors         atomic.Uint64
	SuppressedRefetches atomic.Uint64

	initOnce sync.Once
	client   *http.Client
	group    singleflight.Group
	mu       sync.Mutex
	entries  map[string]*entry
	static   *simplelru.LRU[[32]byte, *keySet] // parsed uploaded JWKS by digest, least recently used evicted first
}

// entry is one remote key source.
type entry struct {
	issuer  string
	jwksURI string // configured; "" means discovery

	mu          sync.Mutex
	keys        *keySet
	fetchedAt   time.Time // last success
	lastAttempt time.Time
	lastErr     error
	lastURL     string
}

func (c *Cache) init() {
	c.initOnce.Do(func() {
		c.client = c.Client
		if c.client == nil {
			c.client = NewHTTPClient(ClientOptions{Timeout: c.FetchTimeout})
		}
		c.entries = make(map[string]*entry)
		c.static, _ = simplelru.NewLRU[[32]byte, *keySet](maxStaticSets, nil) // errors only for a size ≤ 0
	})
}

func (c *Cache) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

// snapshot is what a lookup sees: the set to use (possibly stale), and the
// error of the latest fetch when it failed.
type snapshot struct {
	keys    *keySet
	lastErr error
}

// keysFor returns the key set for p. With refetch, the caller saw an unknown
// kid: fetch again unless the entry is within its cooldown.
func (c *Cache) keysFor(ctx context.Context, p storage.Provider, refetch bool) (snapshot, error) {
	c.init()
	if len(p.JWKS) > 0 {
		ks, err := c.staticSet(p.JWKS)
		if err != nil {
			return snapshot{}, newError(ReasonJWKSUnavailable, "uploaded jwks is invalid", err)
		}
		return snapshot{keys: ks}, nil
	}
	e := c.entryFor(p.Issuer, p.JWKSURI)
	now := c.now()
	e.mu.Lock()
	haveKeys := e.keys != nil
	fresh := haveKeys && now.Sub(e.fetchedAt) < cmp.Or(c.RefreshInterval, DefaultRefreshInterval)
	cooling := !e.lastAttempt.IsZero() && now.Sub(e.lastAttempt) < cmp.Or(c.MinRefetchInterval, DefaultMinRefetchInterval)
	e.mu.Unlock()

	switch {
	case fresh && !refetch:
	case cooling && haveKeys:
		if refetch {
			c.suppressed(e)
		}
	default:
		// Fetch, sharing one flight per entry. A caller with nothing to
		// use yet always joins: while the first fetch is in flight the
		// entry is already "cooling", and skipping the flight then
		// answered 503 to every concurrent first request (refresh itself
		// honours the cooldown, so joining never fetches twice). The
		// flight runs detached from any one caller's cancellation,
		// bounded by FetchTimeout.
		key := e.issuer + "\n" + e.jwksURI
		ch := c.group.DoChan(key, func() (any, error) {
			c.refresh(context.WithoutCancel(ctx), e, refetch)
			return nil, nil
		})
		select {
		case <-ch:
		case <-ctx.Done():
			return snapshot{}, newError(ReasonJWKSUnavailable, "waiting for the key set", ctx.Err())
		}
	}
	return c.usable(e)
}

// usable applies stale-if-error: the last good set serves until MaxStale.
func (c *Cache) usable(e *entry) (snapshot, error) {
	now := c.now()
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.keys != nil && now.Sub(e.fetchedAt) < cmp.Or(c.MaxStale, DefaultMaxStale) {
		return snapshot{keys: e.keys, lastErr: e.lastErr}, nil
	}
	if e.lastErr != nil {
		return snapshot{}, newError(ReasonJWKSUnavailable, "no usable key set for issuer "+e.issuer, e.lastErr)
	}
	return snapshot{}, newError(ReasonJWKSUnavailable, "no usable key set for issuer "+e.issuer, nil)
}

func (c *Cache) suppressed(e *entry) {
	c.SuppressedRefetches.Add(1)
	if c.OnFetch != nil {
		c.OnFetch(FetchEvent{Issuer: e.issuer, Suppressed: true})
	}
}

// refresh fetches e's key set once. It re-checks the cooldown because
// flights for one entry may run back to back.
func (c *Cache) refresh(ctx context.Context, e *entry, refetch bool) {
	now := c.now()
	e.mu.Lock()
	if !e.lastAttempt.IsZero() && now.Sub(e.lastAttempt) < cmp.Or(c.MinRefetchInterval, DefaultMinRefetchInterval) {
		e.mu.Unlock()
		if refetch {
			c.suppressed(e)
		}
		return
	}
	e.lastAttempt = now
	e.mu.Unlock()

	ctx, cancel := context.WithTimeout(ctx, cmp.Or(c.FetchTimeout, DefaultFetchTimeout))
	defer cancel()
	start := time.Now()
	c.Fetches.Add(1)
	ks, uri, err := c.fetch(ctx, e)
	ev := FetchEvent{Issuer: e.issuer, URL: uri, Err: err, Duration: time.Since(start)}

	e.mu.Lock()
	e.lastURL = uri
	if err != nil {
		e.lastErr = err
	} else {
		e.keys, e.fetchedAt, e.lastErr = ks, c.now(), nil
		ev.Keys, ev.Skipped = len(ks.keys), ks.skipped
	}
	e.mu.Unlock()
	if err != nil {
		c.FetchErrors.Add(1)
	}
	if c.OnFetch != nil {
		c.OnFetch(ev)
	}
}

// fetch runs discovery when needed, then downloads and validates the JWKS.
// A failure leaves the entry's last good set in place (T-35, T-60, F-09).
func (c *Cache) fetch(ctx context.Context, e *entry) (*keySet, string, error) {
	maxSize := cmp.Or(c.MaxResponseSize, DefaultMaxResponseSize)
	uri := e.jwksURI
	if uri == "" {
		var err error
		if uri, err = c.discover(ctx, e.issuer, maxSize); err != nil {
			return nil, "", err
		}
	}
	body, err := get(ctx, c.client, uri, maxSize)
	if err != nil {
		return nil, uri, fmt.Errorf("fetching jwks: %w", err)
	}
	ks, err := parseJWKS(body, cmp.Or(c.MaxKeys, DefaultMaxKeys))
	if err != nil {
		return nil, uri, err
	}
	return ks, uri, nil
}

// discover reads the issuer's OpenID configuration and returns its
// jwks_uri. The document's issuer must equal the configured one exactly
// (OIDC Discovery §4.3, docs/security.md T-58).
func (c *Cache) discover(ctx context.Context, issuer string, maxSize int64) (string, error) {
	u := strings.TrimSuffix(issuer, "/") + "/.well-known/openid-configuration"
	body, err := get(ctx, c.client, u, maxSize)
	if err != nil {
		return "", fmt.Errorf("discovery: %w", err)
	}
	doc, err := decodeObject(body)
	if err != nil {
		return "", fmt.Errorf("discovery document is not a valid JSON object: %w", err)
	}
	if got, _ := doc["issuer"].(string); got != issuer {
		return "", fmt.Errorf("discovery document names issuer %q, want %q", truncate(got), issuer)
	}
	uri, _ := doc["jwks_uri"].(string)
	if uri == "" {
		return "", errors.New("discovery document has no jwks_uri")
	}
	return uri, nil
}

func (c *Cache) entryFor(issuer, jwksURI string) *entry {
	k := issuer + "\n" + jwksURI
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[k]
	if !ok {
		e = &entry{issuer: issuer, jwksURI: jwksURI}
		c.entries[k] = e
	}
	return e
}

// staticSet parses an uploaded JWKS once per distinct document.
func (c *Cache) staticSet(doc []byte) (*keySet, error) {
	d := digestJWKS(doc)
	c.mu.Lock()
	ks, ok := c.static.Get(d)
	c.mu.Unlock()
	if ok {
		return ks, nil
	}
	ks, err := parseJWKS(doc, cmp.Or(c.MaxKeys, DefaultMaxKeys))
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.static.Add(d, ks) // past maxStaticSets, evicts the least recently used set (TestStaticSetsEvictGradually)
	c.mu.Unlock()
	return ks, nil
}

// Status reports, per issuer entry, when keys were last fetched and whether
// the last attempt failed (for a staleness gauge and the admin API).
type Status struct {
	Issuer    string
	JWKSURI   string
	FetchedAt time.Time
	LastError error
	Keys      int
}

// Statuses returns a snapshot of every remote entry.
func (c *Cache) Statuses() []Status {
	c.init()
	c.mu.Lock()
	es := make([]*entry, 0, len(c.entries))
	for _, e := range c.entries {
		es = append(es, e)
	}
	c.mu.Unlock()
	out := make([]Status, 0, len(es))
	for _, e := range es {
		e.mu.Lock()
		s := Status{Issuer: e.issuer, JWKSURI: e.lastURL, FetchedAt: e.fetchedAt, LastError: e.lastErr}
		if e.keys != nil {
			s.Keys = len(e.keys.keys)
		}
		e.mu.Unlock()
		out = append(out, s)
	}
	return out
}
