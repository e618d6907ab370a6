package app

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/opensts/sts/internal/api"
	"github.com/opensts/sts/internal/audit"
	"github.com/opensts/sts/internal/config"
	"github.com/opensts/sts/internal/federation"
	"github.com/opensts/sts/internal/hosttoken"
	"github.com/opensts/sts/internal/seal"
	"github.com/opensts/sts/internal/storage"
)

// hostTokenIntegrations validates the configured SCM integrations and reads
// their client secrets; serve calls it before anything else starts so a
// bad integration stops start-up with every problem named. Its error is a
// *PermanentError: a restart cannot fix the configuration (exit 2,
// docs/production.md "Start-up failures").
func hostTokenIntegrations(cfg config.Config) (map[string]hosttoken.Integration, error) {
	m := make(map[string]hosttoken.IntegrationConfig, len(cfg.HostTokenIntegrations))
	first := map[string]int{} // an ID as the vault compares it (any letter case), to its first entry
	var dups []error
	for i, c := range cfg.HostTokenIntegrations {
		if j, dup := first[strings.ToLower(c.ID)]; dup {
			dups = append(dups, fmt.Errorf("host_token_integrations[%d]: id %q is host_token_integrations[%d]'s", i, c.ID, j))
			continue
		}
		first[strings.ToLower(c.ID)] = i
		m[c.ID] = hosttoken.IntegrationConfig{TokenURL: c.TokenURL, ClientID: c.ClientID, ClientSecretFile: c.ClientSecretFile}
	}
	out, err := hosttoken.LoadIntegrations(m, refreshClient(cfg).CheckURL)
	if err != nil {
		err = fmt.Errorf("host_token_integrations: %w", err)
	}
	if err := errors.Join(append(dups, err)...); err != nil {
		// A secret file that cannot be read (not mounted yet) is what a
		// restart may fix: exit 1. The rest is the file's text: exit 2.
		if onlyUnreadable(err) {
			return nil, err
		}
		return nil, &PermanentError{Err: err}
	}
	return out, nil
}

// startHostTokens gives the API its host-token vault (envelope encryption
// under kr, value reads audited through w) and starts the refresh job on
// wg, and returns the vault. Every replica may run the job: each token is leased under its row
// lock before its endpoint is called.
func startHostTokens(ctx context.Context, wg *sync.WaitGroup, cfg config.Config, store storage.Store, kr *seal.Keyring,
	h *api.Handler, w *audit.Writer, integ map[string]hosttoken.Integration, logger *slog.Logger, reg prometheus.Registerer,
) *hosttoken.Service {
	ht := &hosttoken.Service{Store: store, Envelope: &seal.Envelope{Keyring: kr}, Audit: w, Logger: logger}
	h.SetHostTokens(ht)
	refreshes := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sts_host_token_refresh_total",
		Help: "Host-token refresh attempts by outcome (success, failure).",
	}, []string{"outcome"})
	corrupt := prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "sts_host_token_corrupt_total",
		Help: "Sealed host-token values that failed to open (tampering or a copied ciphertext).",
	}, func() float64 { return float64(ht.Corrupt()) })
	reg.MustRegister(refreshes, corrupt)
	r := newRefresher(cfg, ht, integ, func(outcome string) { refreshes.WithLabelValues(outcome).Inc() })
	wg.Go(func() { r.Run(ctx) })
	return ht
}

// newRefresher is the refresh job startHostTokens runs: its client is
// refreshClient's (docs/security.md F-95).
func newRefresher(cfg config.Config, ht *hosttoken.Service, integ map[string]hosttoken.Integration, onResult func(string)) *hosttoken.Refresher {
	return &hosttoken.Refresher{
		Service: ht, Integrations: integ,
		HTTPClient: newOutboundClient(refreshClient(cfg)),
		OnResult:   onResult,
	}
}

// refreshClient is how the refresh job calls the integrations' token
// endpoints; hostTokenIntegrations holds each token_url to the same
// options (docs/security.md F-77). It is the providers' client
// (federation.allow_loopback, federation.allow_private): a self-hosted
// SCM on the operator's network is reachable once the operator allows
// private addresses; link-local and metadata addresses never are
// (docs/security.md F-95).
func refreshClient(cfg config.Config) federation.ClientOptions {
	return providerClient(cfg)
}

// onlyUnreadable reports whether every error joined in err is a file that
// could not be read: an invalid entry beside one still makes the whole
// configuration permanent (exit 2).
func onlyUnreadable(err error) bool {
	switch e := err.(type) {
	case *fs.PathError:
		return true
	case interface{ Unwrap() []error }:
		for _, e := range e.Unwrap() {
			if !onlyUnreadable(e) {
				return false
			}
		}
		return true
	case interface{ Unwrap() error }:
		return onlyUnreadable(e.Unwrap())
	}
	return false
}
