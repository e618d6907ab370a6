package api

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"
	"connectrpc.com/grpchealth"
	"connectrpc.com/grpcreflect"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	clientsvc "github.com/opensts/sts/internal/clients"
	"github.com/opensts/sts/internal/gen/gitpod/v1/gitpodv1connect"
	"github.com/opensts/sts/internal/gen/sts/v1/stsv1connect"
	"github.com/opensts/sts/internal/hosttoken"
	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/pat"
	"github.com/opensts/sts/internal/pools"
	"github.com/opensts/sts/internal/ratelimit"
	"github.com/opensts/sts/internal/signer"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/sts"
	"github.com/opensts/sts/internal/tokens"
)

// Store is the storage view the API reads directly (organizations and
// principals); token secrets go through pat.Service.
type Store interface {
	storage.OrganizationStore
	storage.PrincipalStore
}

// APIPrefix is the path prefix the services are also served under, so
// SDKs with base URL <server>/api work (docs/design.md#wire-surface).
const APIPrefix = "/api"

// maxMessageBytes caps a request message (docs/design.md#limits: 64 KiB bodies).
const maxMessageBytes = 64 << 10

// Handler serves every Connect service of this package. Fill the exported
// fields and call Mount.
type Handler struct {
	Store    Store
	PATs     *pat.Service
	Issuer   *tokens.Issuer
	Verifier *tokens.Verifier
	// Audience is the aud of access tokens minted by ExchangeToken and
	// required of access tokens presented here; usually the issuer URL.
	Audience string
	// AccessTokenLifetime and IDTokenLifetime default to 15 min and 1 h.
	AccessTokenLifetime time.Duration
	IDTokenLifetime     time.Duration
	// RevocationKeep is RevokeSubject's default keep: keys.max_token_lifetime
	// plus the leeway, the longest any token lives (tokens.RevocationKeep;
	// zero: the default configuration's).
	RevocationKeep time.Duration
	Logger         *slog.Logger
	Now            func() time.Time

	// Clients serves ClientService; build it over the same store as Store
	// (in serve, the node's record cache), so a client disabled, rotated or
	// deleted here is refused by this node's token endpoints at once. nil
	// answers unavailable.
	Clients *clientsvc.Service

	// Pools serves PoolService; in serve its change hook refreshes the
	// node's trust registry, so a pool or provider changed here applies to
	// this node's token endpoint before the call returns. nil answers
	// unavailable.
	Pools *pools.Service

	// Keys serves KeyService: this node's signing keys (the ones that
	// sign and serve the JWKS, in serve a *signer.Multi), so a rotation
	// here takes effect on this node at once. nil answers unavailable.
	Keys SigningKeys

	// RS256Issuer signs the ID tokens GetIDToken mints for RS256Audiences
	// (id_tokens.rs256_audiences), for relying parties that accept only
	// RS256. nil: every ID token is signed by Issuer.
	RS256Issuer *tokens.Issuer
	// RS256Audiences are the audiences whose ID tokens RS256Issuer signs:
	// when any requested audience is listed, or the list holds "*".
	RS256Audiences []string
	// MaxDelegationDepth is token_exchange.max_delegation_depth, the
	// longest delegation chain (act) a token sts issues carries; zero or
	// less: DefaultMaxDelegationDepth. GetIDToken holds a credential's
	// chain to it as the token endpoint does (docs/security.md T-250).
	MaxDelegationDepth int
	// Audit serves AuditService and records key rotations. nil answers
	// unavailable.
	Audit storage.AuditStore

	// InstanceAdmins are principal IDs the configuration makes instance
	// administrators (with sts:admin), beside those whose stored
	// instance_admin flag is set; see docs/authorization.md.
	InstanceAdmins []string
	// DeclaredOrganizations are the IDs of the organizations the
	// configuration file declares: DeleteOrganization refuses them, since
	// the next start would create them again (docs/security.md A-111).
	DeclaredOrganizations map[string]bool

	// PublicLimit, when set, is the per-IP bucket the procedures that need
	// no credential (ExchangeToken) take a token from before any work; in
	// serve it is the token endpoints' per-IP limit (rate_limits.per_ip).
	PublicLimit ratelimit.Limiter

	// Interceptors run around every procedure of every service, outside
	// this package's own (tracing and per-procedure metrics in serve).
	Interceptors []connect.Interceptor
	// OnRefused, when set, is called for each call the HTTP middleware
	// refuses before any interceptor runs (no or a bad credential, the
	// per-IP limit) with the request path and the code answered, so
	// per-procedure metrics count those too.
	OnRefused func(path string, code connect.Code)

	// noAuth, set only by this package's benchmark, replaces
	// authentication with a fixed identity: the unauthenticated baseline.
	noAuth *Identity

	// hostTokens serves RunnerConfigurationService; until SetHostTokens
	// it answers unavailable (the vault needs the master key, which may
	// arrive after the routes are mounted).
	hostTokens atomic.Pointer[hosttoken.Service]

	// tokenAudit records ExchangeToken's and GetIDToken's events once
	// SetTokenAudit supplies the writer (tokenaudit.go).
	tokenAudit atomic.Pointer[tokenAudit]

	// tokenLimits are the token endpoints' buckets the procedures that
	// sign for a credential take from, once SetTokenLimits supplies them
	// (limits.go).
	tokenLimits atomic.Pointer[ratelimit.Limits]

	// publicLimit, once SetPublicLimit supplies it, replaces PublicLimit
	// (limits.go).
	publicLimit atomic.Pointer[ratelimit.Limiter]

	// failedAuth holds back addresses whose bearer credentials fail, one
	// for every procedure (FailedAuth).
	failedAuth     *ratelimit.FailedAuth
	failedAuthOnce sync.Once

	// unready, set by Unready until Ready, makes every procedure answer
	// unavailable with Retry-After.
	unready atomic.Bool
}

// Unready makes every procedure answer unavailable, with Retry-After, until
// Ready: sts serve mounts the API before storage and the master key are
// up, and a client must then retry rather than take "invalid token" (the
// PAT digest pepper is not loaded yet) for an answer.
func (h *Handler) Unready() { h.unready.Store(true) }

// Ready ends Unready.
func (h *Handler) Ready() { h.unready.Store(false) }

// gate answers unavailable while h is unready, in the caller's protocol
// (Connect, gRPC or gRPC-Web).
func (h *Handler) gate(next http.Handler) http.Handler {
	ew := connect.NewErrorWriter()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !h.unready.Load() {
			next.ServeHTTP(w, r)
			return
		}
		oauth2.SetRetryAfter(w.Header(), 0)
		_ = ew.Write(w, r, connect.NewError(connect.CodeUnavailable, errors.New("the server is not ready yet")))
	})
}

// SigningKeys is what KeyService needs of this node's signing keys
// (*signer.Manager, *signer.Multi): the stored set, every algorithm's keys,
// the on-demand rotation of every algorithm, and the revocation of one key.
type SigningKeys interface {
	Keys(ctx context.Context) ([]signer.KeyInfo, error)
	RotateEach(ctx context.Context, force bool, ev signer.EventFunc) ([]signer.Rotation, error)
	RevokeKey(ctx context.Context, kid string, ev signer.RevokeEventFunc) (signer.Revocation, error)
}

// SetHostTokens supplies the host-token vault; safe while serving.
func (h *Handler) SetHostTokens(s *hosttoken.Service) { h.hostTokens.Store(s) }

// publicProcedures need no credential: ExchangeToken (the exchange token is
// the credential), health and reflection.
var publicProcedures = map[string]bool{
	gitpodv1connect.IdentityServiceExchangeTokenProcedure: true,
}

// Mount registers every service at / and under /api.
func (h *Handler) Mount(mux *http.ServeMux) {
	for pattern, handler := range h.handlers() {
		// Every handler, the health and reflection services too:
		// bodyerr.go, a failed body read names no address.
		handler = h.gate(withSafeBody(handler))
		mux.Handle(pattern, handler)
		mux.Handle(APIPrefix+pattern, http.StripPrefix(APIPrefix, handler))
	}
}

func (h *Handler) handlers() map[string]http.Handler {
	logger := h.logger()
	opts := connect.WithHandlerOptions(
		connect.WithInterceptors(h.Interceptors...),
		connect.WithInterceptors(errorInterceptor(logger), pageQueryInterceptor(), nulInterceptor(), canonicalIDInterceptor(), gitpodUUIDInterceptor()),
		readLimit(maxMessageBytes),
		jsonCodecs, // enumjson.go: an unknown enum name is refused, as an unknown number is
	)
	auth := &Authenticator{PATs: h.PATs, Verifier: h.Verifier, Audience: h.Audience}
	var known map[string]*wireRules
	wrap := func(path string, hd http.Handler) (string, http.Handler) {
		hd = withPageQuery(hd) // pagination.go: ?pageSize=&token= of the Stainless SDKs
		if h.noAuth != nil {
			id := h.noAuth
			return path, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Cache-Control", "no-store")
				hd.ServeHTTP(w, r.WithContext(withIdentity(r.Context(), id)))
			})
		}
		return path, middleware(auth, publicProcedures, known, h.publicLimiter, h.FailedAuth(), logger, h.OnRefused, hd)
	}
	services := h.services(opts)
	names := namesOf(services)
	known = connectRules(services, proceduresOf(names)) // asked of connect's handlers, before any middleware wraps them
	out := map[string]http.Handler{}
	for path, hd := range services {
		p, w := wrap(path, hd)
		out[p] = w
	}

	// Health and reflection need no credential; their messages are small.
	limit := readLimit(maxMessageBytes)
	p, hd := grpchealth.NewHandler(grpchealth.NewStaticChecker(names...), limit)
	out[p] = hd
	reflector := grpcreflect.NewStaticReflector(names...)
	p, hd = grpcreflect.NewHandlerV1(reflector, limit)
	out[p] = hd
	p, hd = grpcreflect.NewHandlerV1Alpha(reflector, limit)
	out[p] = hd
	return out
}

// services returns connect's handler, no middleware in front, for every
// service Mount serves, keyed by its path ("/sts.v1.KeyService/"). It is the
// one list of services: the mux, the health and reflection services'
// names and Procedures (metrics labels, the wire rules) all derive from
// it, so a service added here is never missing from any of them.
func (h *Handler) services(opts connect.HandlerOption) map[string]http.Handler {
	services := map[string]http.Handler{}
	add := func(path string, hd http.Handler) { services[path] = hd }
	add(gitpodv1connect.NewIdentityServiceHandler(&IdentityService{h: h}, opts))
	add(gitpodv1connect.NewUserServiceHandler(&UserService{h: h}, opts))
	add(stsv1connect.NewOrganizationServiceHandler(&OrganizationService{h: h}, opts))
	add(stsv1connect.NewPrincipalServiceHandler(&PrincipalService{h: h}, opts))
	add(stsv1connect.NewClientServiceHandler(&ClientService{h: h}, opts))
	add(stsv1connect.NewPoolServiceHandler(&PoolService{h: h}, opts, readLimit(maxPoolMessageBytes)))
	add(stsv1connect.NewKeyServiceHandler(&KeyService{h: h}, opts))
	add(stsv1connect.NewAuditServiceHandler(&AuditService{h: h}, opts))
	add(gitpodv1connect.NewRunnerConfigurationServiceHandler(&RunnerConfigurationService{h: h}, opts, namedFieldJSON))
	add(gitpodv1connect.NewRunnerInteractionServiceHandler(&RunnerInteractionService{h: h}, opts, namedFieldJSON))
	add(stsv1connect.NewRunnerKeyServiceHandler(&RunnerKeyService{h: h}, opts))
	add(stsv1connect.NewRevocationServiceHandler(&RevocationService{h: h}, opts))
	return services
}

// namesOf returns, sorted, the fully-qualified names of services' services.
func namesOf(services map[string]http.Handler) []string {
	names := make([]string, 0, len(services))
	for path := range services {
		names = append(names, strings.Trim(path, "/"))
	}
	slices.Sort(names)
	return names
}

// serviceNames are the fully-qualified names of the services Mount serves,
// asked of services on a zero Handler (building a handler calls none).
func serviceNames() []string {
	return namesOf((&Handler{}).services(connect.WithHandlerOptions()))
}

// Procedures returns, sorted, every procedure ("/sts.v1.PoolService/GetPool")
// Mount serves: the bounded label set of per-procedure metrics.
func Procedures() []string { return proceduresOf(serviceNames()) }

// proceduresOf returns, sorted, every procedure of the services names.
func proceduresOf(names []string) []string {
	var out []string
	for _, name := range names {
		d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(name))
		if err != nil {
			continue // every name above is generated code linked into this package
		}
		sd, ok := d.(protoreflect.ServiceDescriptor)
		if !ok {
			continue
		}
		for i := range sd.Methods().Len() {
			out = append(out, "/"+name+"/"+string(sd.Methods().Get(i).Name()))
		}
	}
	slices.Sort(out)
	return out
}

func (h *Handler) logger() *slog.Logger {
	if h.Logger != nil {
		return h.Logger
	}
	return slog.Default()
}

func (h *Handler) now() time.Time {
	if h.Now != nil {
		return h.Now()
	}
	return time.Now()
}

func (h *Handler) idTokenLifetime() time.Duration {
	if h.IDTokenLifetime > 0 {
		return h.IDTokenLifetime
	}
	return DefaultIDTokenLifetime
}

func (h *Handler) accessTokenLifetime() time.Duration {
	if h.AccessTokenLifetime > 0 {
		return h.AccessTokenLifetime
	}
	return DefaultAccessTokenLifetime
}

// lookupErr translates a storage error from a direct read.
func lookupErr(err error, what string) error {
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return sts.Wrap(sts.NotFound, err, what+" not found")
	case errors.Is(err, storage.ErrAlreadyExists):
		return sts.Wrap(sts.AlreadyExists, err, what+" already exists")
	}
	return sts.Wrap(sts.Unavailable, err, "storage unavailable")
}
