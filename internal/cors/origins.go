package cors

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/opensts/sts/internal/storage"
)

// Defaults of Origins.
const (
	// DefaultMaxAge bounds how long a snapshot of the registered origins
	// serves: an origin taken out of every redirect URI (or a client
	// disabled or deleted) stops being answered within it.
	DefaultMaxAge = time.Minute
	// DefaultMissRefresh is how often an origin or client the snapshot
	// lacks may reload it: a newly registered redirect URI works within
	// it, and unknown origins cannot make every request read all clients.
	DefaultMissRefresh = 5 * time.Second
	loadTimeout        = 10 * time.Second
)

// ClientLister lists every client (storage.ClientStore).
type ClientLister interface {
	ListClients(ctx context.Context, orgID string) ([]storage.Client, error)
}

// Origins knows which origins each enabled client registered: the origins
// of its http and https redirect URIs (Keycloak's "web origins: +"). It
// reads them from storage into a snapshot shared by every request. Fill
// the exported fields; it is safe for concurrent use.
type Origins struct {
	Clients ClientLister
	// MaxAge and MissRefresh: DefaultMaxAge and DefaultMissRefresh when
	// zero.
	MaxAge      time.Duration
	MissRefresh time.Duration
	Logger      *slog.Logger
	Now         func() time.Time

	mu     sync.Mutex
	snap   *snapshot
	flight singleflight.Group
}

// snapshot maps an origin to the IDs of the clients that registered it.
type snapshot struct {
	byOrigin map[string][]string
	loaded   time.Time
}

func (o *Origins) now() time.Time {
	if o.Now != nil {
		return o.Now()
	}
	return time.Now()
}

// allows reports whether clientID registered origin, or, with an empty
// clientID, whether any enabled client did. Storage failing with no
// snapshot to fall back on allows nothing (fail closed).
func (o *Origins) allows(ctx context.Context, origin, clientID string) bool {
	maxAge := cmpOr(o.MaxAge, DefaultMaxAge)
	s := o.current()
	if s == nil || o.now().Sub(s.loaded) >= maxAge {
		s = o.reload(ctx)
	}
	if s == nil {
		return false // storage down and nothing loaded yet: fail closed
	}
	if s.has(origin, clientID) {
		return true
	}
	if o.now().Sub(s.loaded) < cmpOr(o.MissRefresh, DefaultMissRefresh) {
		return false
	}
	return o.reload(ctx).has(origin, clientID)
}

func (s *snapshot) has(origin, clientID string) bool {
	if s == nil {
		return false
	}
	ids, ok := s.byOrigin[origin]
	return ok && (clientID == "" || slices.Contains(ids, clientID))
}

func (o *Origins) current() *snapshot {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.snap
}

// reload reads every client once (one read at a time, shared by the
// requests that wait for it) and returns the newest snapshot; on a
// storage failure the previous one stays.
func (o *Origins) reload(ctx context.Context) *snapshot {
	v, _, _ := o.flight.Do("load", func() (any, error) {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), loadTimeout)
		defer cancel()
		cs, err := o.Clients.ListClients(ctx, "")
		if err != nil {
			o.logger().WarnContext(ctx, "cors: registered origins unavailable", "error", err)
			return o.current(), nil
		}
		s := &snapshot{byOrigin: map[string][]string{}, loaded: o.now()}
		for _, c := range cs {
			if c.Disabled {
				continue
			}
			for _, u := range c.RedirectURIs {
				if origin := Origin(u); origin != "" && !slices.Contains(s.byOrigin[origin], c.ID) {
					s.byOrigin[origin] = append(s.byOrigin[origin], c.ID)
				}
			}
		}
		o.mu.Lock()
		o.snap = s
		o.mu.Unlock()
		return s, nil
	})
	s, _ := v.(*snapshot)
	return s
}

func (o *Origins) logger() *slog.Logger {
	if o.Logger != nil {
		return o.Logger
	}
	return slog.New(slog.DiscardHandler)
}

func cmpOr(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}
