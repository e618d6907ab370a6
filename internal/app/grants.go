package app

import (
	"context"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/opensts/sts/internal/audit"
	"github.com/opensts/sts/internal/config"
	"github.com/opensts/sts/internal/federation"
	"github.com/opensts/sts/internal/grants"
	"github.com/opensts/sts/internal/pat"
	"github.com/opensts/sts/internal/ratelimit"
	"github.com/opensts/sts/internal/server"
	"github.com/opensts/sts/internal/signer"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/tokens"
	"github.com/opensts/sts/internal/trust"
)

// tokenEndpoints is the wiring of the token endpoints: POST /oauth2/token and its
// Google and Confluent dialects with the token-exchange grant, the trust
// registry, external-issuer verification, rate limits, the asynchronous
// audit writer and the token metrics.
type tokenEndpoints struct {
	handler  *grants.Handler
	registry *trust.Registry
	audit    *audit.Writer
	oauth    *oauthParts
	limits   *rateLimits
	// failedAuth is the Connect API's record of addresses whose bearer
	// credentials fail, shared by UserInfo and introspection
	// (setFailedAuth).
	failedAuth *ratelimit.FailedAuth
}

// setFailedAuth makes UserInfo, introspection and revocation charge a
// credential that fails to f, the Connect API's, and refuse an address f
// refuses, so one flood is held back at every endpoint that
// authenticates a caller (docs/security.md T-248, T-255, T-256). Call it
// before mount and addAuthCode.
func (t *tokenEndpoints) setFailedAuth(f *ratelimit.FailedAuth) {
	t.failedAuth = f
	t.oauth.Introspect.FailedAuth = f
	t.oauth.Revoke.FailedAuth = f
}

// mount adds the token endpoint, introspection and revocation (and
// extra, such as the web pages) to srv. A route that conflicts with the
// server's is a *PermanentError: retrying cannot change the routes.
func (t *tokenEndpoints) mount(d *server.Deferred, extra ...server.Mounter) error {
	if err := d.Ready(append(append([]server.Mounter{t.handler}, t.oauth.Mounters...), extra...)...); err != nil {
		return &PermanentError{Err: err}
	}
	return nil
}

// newTokenEndpoints turns cfg into the token endpoints' constructor
// arguments (docs/architecture.md). reg receives the metrics.
// pats introspects personal access tokens; pep keys every secret digest;
// registry is the node's trust registry (newTrustRegistry).
func newTokenEndpoints(cfg config.Config, store storage.Store, keys *signer.Multi, registry *trust.Registry, logger *slog.Logger,
	reg prometheus.Registerer, pats *pat.Service, pep []byte,
) (*tokenEndpoints, error) {
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sts_token_requests_total",
		Help: "Token endpoint requests by grant, dialect, outcome (issued, refused, error, client_closed) and stable reason.",
	}, []string{"grant", "dialect", "outcome", "reason"})
	lost := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sts_audit_events_lost_total",
		Help: "Audit events never stored, by reason (buffer_full, store_error); audit.mode best_effort only.",
	}, []string{"reason"})
	failed := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "sts_audit_write_errors_total",
		Help: "Audit batch writes that failed (each attempt; the batch is retried).",
	})
	fetches := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sts_jwks_fetch_total",
		Help: "Outbound JWKS/discovery fetches by result (ok, error, suppressed).",
	}, []string{"result"})
	// At zero from the start, so the StsAuditEventsLost alert sees the
	// first loss (docs/observability.md#alerts).
	lost.WithLabelValues(audit.LostBufferFull)
	lost.WithLabelValues(audit.LostStoreError)
	// The rate limits are the one step that can fail (and registers its
	// own metrics only after it can no longer fail): nothing is registered
	// before it, so the start-up's retry of a failed build does not panic
	// on duplicate metrics (docs/security.md F-99).
	limits, err := newRateLimits(cfg.RateLimits, logger, reg)
	if err != nil {
		return nil, err
	}
	reg.MustRegister(requests, lost, failed, fetches)

	w := &audit.Writer{
		Store: store, Buffer: cfg.Audit.Buffer, Batch: cfg.Audit.Batch, FlushEvery: cfg.Audit.FlushEvery,
		DrainTimeout: cfg.HTTP.ShutdownTimeout,
		OnLost:       func(reason string, n int) { lost.WithLabelValues(reason).Add(float64(n)) },
		OnError:      func(err error) { failed.Inc(); logger.Error("audit: storing a batch failed; retrying", "error", err) },
	}
	cache := &federation.Cache{
		Client: federation.NewHTTPClient(providerClient(cfg)),
		OnFetch: func(ev federation.FetchEvent) {
			switch {
			case ev.Suppressed:
				fetches.WithLabelValues("suppressed").Inc()
			case ev.Err != nil:
				fetches.WithLabelValues("error").Inc()
				logger.Warn("federation: key fetch failed", "issuer", ev.Issuer, "url", ev.URL, "error", ev.Err)
			default:
				fetches.WithLabelValues("ok").Inc()
			}
		},
	}
	verified := federation.NewVerifiedCache(cfg.Federation.VerifiedTokenCache) // nil: off
	if verified != nil {
		reg.MustRegister(
			prometheus.NewCounterFunc(prometheus.CounterOpts{
				Name: "sts_verified_token_cache_hits_total",
				Help: "Subject and actor token verifications whose signature check the verified-token cache answered.",
			}, func() float64 { return float64(verified.Hits.Load()) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{
				Name: "sts_verified_token_cache_misses_total",
				Help: "Subject and actor token signatures checked because the verified-token cache had no usable entry.",
			}, func() float64 { return float64(verified.Misses.Load()) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "sts_verified_token_cache_entries",
				Help: "Entries in the verified-token cache (at most federation.verified_token_cache).",
			}, func() float64 { return float64(verified.Len()) }),
		)
	}
	sources := tokens.NewStoreSources(store, registry)
	sources.Keys = keys // src_kid (docs/security.md T-192)
	// A source subject of another organization stands while it is an
	// instance administrator (docs/security.md A-106).
	sources.InstanceAdmins = cfg.InstanceAdmins
	te := &grants.TokenExchange{
		Trust:      registry,
		Federation: &federation.Verifier{Keys: cache, Leeway: cfg.Keys.Leeway, Verified: verified},
		Tokens: &tokens.Verifier{Keys: keys, Issuer: cfg.Issuer, Leeway: cfg.Keys.Leeway,
			MaxLifetime: cfg.Keys.MaxTokenLifetime, Revocations: tokens.StoreRevocations{Store: store},
			Sources: sources},
		Issuer:          &tokens.Issuer{Signer: keys, IssuerURL: cfg.Issuer},
		Replay:          store, // one-time-use providers: the used-token table every replica shares
		Principals:      store, // pools with a principal binding
		DefaultAudience: cfg.Issuer,
		// Google-style downscoping (a Credential Access Boundary on our own
		// token) needs self-exchange; it may only narrow (docs/security.md T-54).
		SelfExchange: true,
		PATs:         pats,
		MaxLifetime:  cfg.Keys.MaxTokenLifetime,
		// Refresh families take it from here too (oauthwire.go).
		MaxDelegationDepth: cfg.TokenExchange.MaxDelegationDepth,
	}
	// A pool's tokens are judged by the exchange's audience rule.
	sources.Audiences = te.ServerAudiences()
	// serve's store has the per-node record cache in front (storage/cache).
	if pc, ok := store.(grants.PrincipalCache); ok {
		te.PrincipalCache = pc
	}
	client := newOutboundClient(clientJWKSClient(cfg))
	oa := newOAuth(oauthDeps{
		Store: store, Issuer: cfg.Issuer, Keys: keys, Pepper: pep, Exchange: te, PATs: pats,
		JWKSClient: client, IssuerAudienceOnly: cfg.ClientAuth.AssertionAudience == config.AssertionAudienceIssuer, Leeway: cfg.Keys.Leeway, MaxLifetime: cfg.Keys.MaxTokenLifetime, RevocationKeep: cfg.Keys.RevocationKeep(),
		Logger: logger, LeakLimiter: limits.leak,
		SessionBounds: sessionBounds(cfg), InstanceAdmins: cfg.InstanceAdmins,
	})
	te.Refresh = oa.Refresh // offline_access on token exchange
	h := &grants.Handler{
		Grants:       append([]grants.Grant{te}, oa.Grants...),
		Clients:      oa.ClientAuth,
		Limits:       limits.token,
		CORS:         oa.CORS,
		Audit:        w,
		Logger:       logger,
		MaxBodyBytes: cfg.HTTP.MaxBodyBytes,
		OmitReason:   cfg.Errors.Detail != config.ErrorDetailReason,
		Observe: func(o grants.Observation) {
			requests.WithLabelValues(o.Grant, o.Dialect, o.Outcome, o.Reason).Inc()
		},
	}
	if cfg.Audit.Mode == config.AuditModeRequired {
		h.Durable = w // docs/security.md D-11
	}
	return &tokenEndpoints{handler: h, registry: registry, audit: w, oauth: oa, limits: limits}, nil
}

// limiter returns the in-memory bucket of one limit, nil when disabled.
func limiter(c config.RateLimitConfig, maxKeys int) ratelimit.Limiter {
	rule := ratelimit.Rule{Rate: c.Rate, Burst: c.Burst}
	if !rule.Enabled() {
		return nil
	}
	return ratelimit.NewMemory(rule, ratelimit.MemoryOptions{MaxKeys: maxKeys})
}

// run keeps the registry fresh, flushes audit batches and, with Redis,
// keeps its state current until ctx ends (the writer then drains its
// buffer; requests still in flight decide their limits in memory).
func (t *tokenEndpoints) run(ctx context.Context) {
	done := make(chan struct{})
	go func() { t.audit.Run(ctx); close(done) }()
	if r := t.limits.redis; r != nil {
		go r.Run(ctx)
		defer r.Close()
	}
	t.registry.Run(ctx)
	<-done
}

// clientJWKSClient is how private_key_jwt clients' jwks_uri are fetched:
// with the providers' client (federation.allow_loopback,
// federation.allow_private), so a key set on the operator's network is
// reachable once private addresses are allowed, and link-local and
// metadata addresses never are (docs/security.md T-59, T-197).
func clientJWKSClient(cfg config.Config) federation.ClientOptions {
	return providerClient(cfg)
}

// ClientJWKSURIRule is clientJWKSClient's CheckURL: the rule a
// private_key_jwt client's jwks_uri is held to when it is registered,
// through the API and the CLI's direct mode (docs/security.md F-96).
func ClientJWKSURIRule(cfg config.Config) func(string) error {
	return clientJWKSClient(cfg).CheckURL
}
