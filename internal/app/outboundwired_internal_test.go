package app

import (
	"errors"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/opensts/sts/internal/config"
	"github.com/opensts/sts/internal/federation"
	"github.com/opensts/sts/internal/storage/sqlstore"
)

// TestOutboundClientsWiredAreTheProvidersClient (docs/security.md T-197,
// F-95): the client the private_key_jwt authenticator fetches a jwks_uri
// with, and the one the host-token refresh job calls token endpoints
// with, are the ones serve wires, built from the providers' options
// (federation.allow_loopback, federation.allow_private). Judging
// clientJWKSClient and refreshClient alone passed with the wiring
// ignoring them. The wired clients are also asked, without a packet
// leaving this machine, to dial a private address (refused only without
// federation.allow_private) and the metadata address (refused always).
func TestOutboundClientsWiredAreTheProvidersClient(t *testing.T) {
	var mu sync.Mutex
	made := map[*http.Client]federation.ClientOptions{}
	orig := newOutboundClient
	newOutboundClient = func(o federation.ClientOptions) *http.Client {
		c := orig(o)
		mu.Lock()
		made[c] = o
		mu.Unlock()
		return c
	}
	t.Cleanup(func() { newOutboundClient = orig })
	built := func(c *http.Client) (federation.ClientOptions, bool) {
		mu.Lock()
		defer mu.Unlock()
		o, ok := made[c]
		return o, ok
	}

	store, err := sqlstore.Open(t.Context(), sqlstore.Config{Driver: sqlstore.DriverSQLite, DSN: filepath.Join(t.TempDir(), "sts.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	registry, err := newTrustRegistry(store, logger)
	if err != nil {
		t.Fatal(err)
	}
	for _, allow := range []struct{ loopback, private bool }{{false, false}, {true, false}, {false, true}, {true, true}} {
		cfg := config.DefaultConfig()
		cfg.Issuer = "http://127.0.0.1:1"
		cfg.Federation.AllowLoopback, cfg.Federation.AllowPrivate = allow.loopback, allow.private
		te, err := newTokenEndpoints(cfg, store, nil, registry, logger, prometheus.NewRegistry(), nil, nil)
		if err != nil {
			t.Fatalf("%+v: %v", allow, err)
		}
		for _, w := range []struct {
			name   string
			client *http.Client
		}{
			{"private_key_jwt jwks_uri fetch", te.oauth.Clients.HTTPClient},
			{"host-token refresh job", newRefresher(cfg, nil, nil, nil).HTTPClient},
		} {
			o, ok := built(w.client)
			if !ok {
				t.Errorf("%+v: the %s's client was not built by newOutboundClient (not the client the options describe)", allow, w.name)
				continue
			}
			if o != providerClient(cfg) {
				t.Errorf("%+v: the %s's client has options %+v, want the providers' %+v", allow, w.name, o, providerClient(cfg))
			}
			if w.client == nil {
				continue
			}
			for _, u := range []string{"https://169.254.169.254/", "https://[fd00:ec2::254]/"} {
				if _, err := w.client.Get(u); !errors.Is(err, federation.ErrAddressRefused) {
					t.Errorf("%+v: the %s's client: GET %s = %v, want the address refused", allow, w.name, u, err)
				}
			}
			if !allow.private {
				if _, err := w.client.Get("https://10.1.2.3:1/"); !errors.Is(err, federation.ErrAddressRefused) {
					t.Errorf("%+v: the %s's client: GET https://10.1.2.3:1/ = %v, want the private address refused", allow, w.name, err)
				}
			}
		}
	}
}
