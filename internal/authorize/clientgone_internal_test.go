package authorize

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/ststest/logbuf"
	"github.com/opensts/sts/internal/ststest/stall"
)

// stallingClients holds GetClient until the request's context ends,
// after telling its gate (which fails it at once when storage is down).
type stallingClients struct {
	storage.Store
	gate *stall.Gate
}

func (s stallingClients) GetClient(ctx context.Context, id string) (storage.Client, error) {
	return storage.Client{}, s.gate.Hold(ctx)
}

// TestClientGoneIsNotAnOutage: a browser that goes away while the
// authorization or end-session endpoint looks its client up is not
// logged at ERROR ("authorize: client lookup failed", "logout: client
// lookup failed"), the lines an operator reads as a database outage; a
// lookup that fails for a browser still there is, and the page is 503
// (docs/security.md F-111).
func TestClientGoneIsNotAnOutage(t *testing.T) {
	authz := url.Values{"client_id": {"c1"}, "redirect_uri": {"https://rp.example/cb"}, "response_type": {"code"},
		"scope": {"openid"}, "state": {"s"}, "nonce": {"n"},
		"code_challenge": {"E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"}, "code_challenge_method": {"S256"}}
	logout := url.Values{"client_id": {"c1"}, "post_logout_redirect_uri": {"https://rp.example/cb"}}
	for _, path := range []string{Path + "?" + authz.Encode(), LogoutPath + "?" + logout.Encode()} {
		for _, down := range []bool{false, true} {
			logs := &logbuf.Buffer{}
			gate := stall.For(down)
			st := stallingClients{Store: bobsClientStore(t), gate: gate}
			logger := slog.New(slog.NewTextHandler(logs, nil))
			mux := http.NewServeMux()
			pepper := []byte("0123456789abcdef0123456789abcdef")
			(&Handler{Store: st, SignedIn: bobSignedIn{}, Pepper: pepper, Logger: logger}).Mount(mux)
			(&Logout{Store: st, SignedIn: stuckSession{}, Pepper: pepper, Logger: logger}).Mount(mux)
			srv := httptest.NewServer(mux)
			ctx, cancel := gate.Context(t.Context())
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+path, nil)
			stall.Call(t, req, down, path)
			cancel()
			srv.Close() // waits for the handler to return
			stall.Logged(t, logs.String(), "level=ERROR", down, path)
		}
	}
}
