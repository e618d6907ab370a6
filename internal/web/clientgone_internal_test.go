package web

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/opensts/sts/internal/pat"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/storage/sqlstore"
	"github.com/opensts/sts/internal/ststest/logbuf"
	"github.com/opensts/sts/internal/ststest/sqlitetest"
	"github.com/opensts/sts/internal/ststest/stall"
)

// stallingSessions holds the storage read named at until the request's
// context ends, after telling its gate (which fails it at once when
// storage is down).
type stallingSessions struct {
	*sqlstore.Store
	at   string // "GetWebSessionByDigest" or "ListWebSessions"
	gate *stall.Gate
}

func (s stallingSessions) stall(ctx context.Context, name string) error {
	if name != s.at {
		return nil
	}
	return s.gate.Hold(ctx)
}

func (s stallingSessions) GetWebSessionByDigest(ctx context.Context, d []byte) (storage.WebSession, error) {
	if err := s.stall(ctx, "GetWebSessionByDigest"); err != nil {
		return storage.WebSession{}, err
	}
	return s.Store.GetWebSessionByDigest(ctx, d)
}

func (s stallingSessions) ListWebSessions(ctx context.Context, principalID string) ([]storage.WebSession, error) {
	if err := s.stall(ctx, "ListWebSessions"); err != nil {
		return nil, err
	}
	return s.Store.ListWebSessions(ctx, principalID)
}

// TestClientGoneIsNotAnOutage: a browser that goes away while its page
// waits on storage (its session read, or the page's own read) is not
// logged at ERROR ("web: session lookup failed", "web: request failed"),
// the lines an operator reads as a database outage; storage that fails
// for a browser still there is, and the page is 503 (docs/security.md
// F-111).
func TestClientGoneIsNotAnOutage(t *testing.T) {
	for _, at := range []string{"GetWebSessionByDigest", "ListWebSessions"} {
		for _, down := range []bool{false, true} {
			st := sqlitetest.NewStore(t)
			p := acmeAda(t, st)
			pats, err := pat.NewService(st, []byte("0123456789abcdef0123456789abcdef"))
			if err != nil {
				t.Fatal(err)
			}
			logs := &logbuf.Buffer{}
			gate := stall.For(down)
			h, err := New(Options{Issuer: "http://sts.example", Store: stallingSessions{Store: st, at: at, gate: gate},
				PATs: pats, Logger: slog.New(slog.NewTextHandler(logs, nil)), IdleTimeout: time.Hour, AbsoluteTimeout: 8 * time.Hour})
			if err != nil {
				t.Fatal(err)
			}
			value := randomValue()
			now := storage.Now(time.Now())
			if err := st.CreateWebSession(t.Context(), storage.WebSession{ID: storage.NewID(), Digest: digest(value), OrgID: p.OrgID,
				PrincipalID: p.ID, Method: "link", CreatedAt: now, LastSeenAt: now, ExpiresAt: now.Add(8 * time.Hour)}); err != nil {
				t.Fatal(err)
			}
			srv := httptest.NewServer(h)
			ctx, cancel := gate.Context(t.Context())
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/tokens", nil)
			req.AddCookie(&http.Cookie{Name: CookieInsecure, Value: value})
			stall.Call(t, req, down, at)
			cancel()
			srv.Close() // waits for the handler to return
			stall.Logged(t, logs.String(), "level=ERROR", down, at)
		}
	}
}
