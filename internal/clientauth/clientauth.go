package clientauth

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/secret"
	"github.com/opensts/sts/internal/storage"
)

// Policy says whether an endpoint or grant needs an authenticated client.
// The zero value, Required, fails closed.
type Policy int

const (
	// Required: a request without valid client credentials is refused
	// with invalid_client (docs/security.md T-09, T-61).
	Required Policy = iota
	// Optional: a request may carry no credentials (Google /v1/token),
	// but credentials that are present must be valid.
	Optional
	// OptionalPublic is Optional where a registered public client (auth
	// method none) named by client_id alone is returned, identified but
	// not authenticated, with Method oauth2.AuthMethodNone: RFC 7009 §5
	// revocation, which then acts only on what was issued to that client
	// (docs/security.md T-128).
	OptionalPublic
)

// Store is the storage the authenticator reads and writes.
type Store interface {
	storage.ClientStore
	storage.ReplayStore
}

// ClientCache serves client records from memory; cached reports whether
// the record came from there rather than storage (*cache.Store).
type ClientCache interface {
	CachedClient(ctx context.Context, id string) (c storage.Client, cached bool, err error)
}

// Result is an authenticated client and how it proved itself.
type Result struct {
	Client storage.Client
	// Method is one of the oauth2.AuthMethod* constants.
	Method string
}

// Defaults of the Authenticator.
const (
	DefaultMaxAssertionLifetime = 5 * time.Minute
	DefaultLeeway               = 60 * time.Second
	maxClientIDLen              = 128
	maxAssertionLen             = 16 << 10
)

// Params are the form parameters client authentication reads (RFC 6749
// §2.3.1, RFC 7523 §2.2): every endpoint that authenticates its client
// from the form refuses them repeated, and ignores a repeated parameter
// it does not know (RFC 6749 §3.2; docs/security.md T-06, T-225).
var Params = oauth2.NewParams([]string{"client_id", "client_secret", "client_assertion", "client_assertion_type"})

// Authenticator authenticates clients. Fill the exported fields; it is safe
// for concurrent use.
type Authenticator struct {
	Store Store
	// Pepper keys the client-secret digests (secret.MinPepperSize bytes).
	Pepper []byte
	// TokenEndpoint and Issuer are the audiences a client assertion may
	// name (RFC 7523 §3 item 3).
	TokenEndpoint string
	Issuer        string
	// IssuerAudienceOnly accepts a client assertion whose aud is Issuer
	// only, never TokenEndpoint (client_auth.assertion_audience: issuer;
	// docs/security.md T-125).
	IssuerAudienceOnly bool
	// HTTPClient fetches a client's jwks_uri; pass the restricted client
	// of federation.NewHTTPClient (SSRF, docs/security.md T-59). nil refuses
	// jwks_uri clients.
	HTTPClient *http.Client
	// MaxAssertionLifetime bounds exp − iat of a client assertion.
	MaxAssertionLifetime time.Duration
	// Leeway is the clock skew allowed on exp, nbf and iat.
	Leeway time.Duration
	Now    func() time.Time
	Logger *slog.Logger
	// Cache, when set, serves client records for secret authentication
	// from a per-node cache (storage/cache): a disabled client or a
	// rotated-away secret is refused on this replica within the cache's
	// TTL of the change elsewhere, at once when the change is made here.
	// Refusals are never judged on a cached copy. nil: every request reads
	// the client row.
	Cache ClientCache

	jwksMu     sync.Mutex             // guards the map only, never held across a fetch
	jwks       map[string]*remoteKeys // by client ID
	jwksFlight singleflight.Group     // one jwks_uri fetch per client at a time
}

func (a *Authenticator) now() time.Time {
	if a.Now != nil {
		return a.Now()
	}
	return time.Now()
}

// Authenticate authenticates the client of r, whose form (r.PostForm,
// parsed once by the caller) is form. It returns (nil, nil) when the
// request carries no client credentials at all; with policy Required that
// is an invalid_client error instead. Every failure is an [*oauth2.Error]:
// invalid_request for an ambiguous request, invalid_client (401) for bad
// credentials, temporarily_unavailable (503) when storage fails.
func (a *Authenticator) Authenticate(ctx context.Context, r *http.Request, form url.Values, policy Policy) (*Result, error) {
	for k := range Params {
		if len(form[k]) > 1 {
			// RFC 6749 §3.2, docs/security.md T-06.
			return nil, oauth2.NewError(oauth2.ErrorInvalidRequest, "parameter '"+k+"' repeated")
		}
	}
	user, pass, basic := r.BasicAuth()
	hasHeader := r.Header.Get("Authorization") != ""
	if scheme, _, _ := strings.Cut(r.Header.Get("Authorization"), " "); !basic && strings.EqualFold(scheme, "Basic") {
		// Basic credentials that do not decode (not base64, no colon) are
		// refused, never taken for an anonymous request (docs/security.md
		// T-09, T-126). Other schemes are not client authentication here
		// and are ignored, as before.
		return nil, invalidClient(errors.New("authorization header is not readable HTTP Basic credentials"))
	}
	post := form.Get("client_secret") != ""
	assertion := form.Get("client_assertion") != "" || form.Get("client_assertion_type") != ""
	n := 0
	for _, b := range []bool{hasHeader && basic, post, assertion} {
		if b {
			n++
		}
	}
	if n > 1 {
		// RFC 6749 §2.3: a client MUST NOT use more than one method.
		return nil, oauth2.NewError(oauth2.ErrorInvalidRequest, "more than one client authentication method")
	}
	named := form.Get("client_id")
	if hasHeader && basic {
		// The header decoded above, not again (docs/performance.md,
		// client_credentials seventh pass).
		id, ok, err := publicBasic(user, pass, basic)
		switch {
		case err != nil:
			return nil, err
		case ok && named != "" && named != id:
			return nil, oauth2.NewError(oauth2.ErrorInvalidRequest, "client_id does not match the authorization header")
		case ok:
			// A client without a secret sends Basic with an empty
			// password (RFC 6749 §2.3.1; golang.org/x/oauth2's
			// AuthStyleInHeader does): it names itself exactly as with
			// client_id in the body, and is judged below the same way. A
			// confidential client is still refused (docs/security.md
			// T-149).
			hasHeader, named = false, id
		}
	}
	var res *Result
	var err error
	switch {
	case hasHeader && basic:
		res, err = a.secretBasic(ctx, user, pass, named)
	case post:
		res, err = a.secretCheck(ctx, named, form.Get("client_secret"), oauth2.AuthMethodClientSecretPost)
	case assertion:
		res, err = a.privateKeyJWT(ctx, form)
	case named != "":
		// A client that names itself must prove it, unless it is a
		// registered public client (auth method none), which is then
		// identified, not authenticated: where credentials are optional it
		// proceeds exactly as an anonymous caller, with no more rights;
		// with OptionalPublic it comes back as itself (Method none), for an
		// endpoint that lets it act only on what was issued to it.
		var c storage.Client
		switch c, err = a.publicClient(ctx, named); {
		case err != nil:
		case policy == OptionalPublic:
			return &Result{Client: c, Method: oauth2.AuthMethodNone}, nil
		case policy == Optional:
			return nil, nil
		default:
			err = invalidClient(errors.New("public client where authentication is required"))
		}
	case policy == Optional, policy == OptionalPublic:
		return nil, nil
	default:
		err = invalidClient(errors.New("no client credentials"))
	}
	if err != nil {
		return nil, err
	}
	return res, nil
}

// PublicBasic is the client ID of HTTP Basic credentials with an empty
// password and a non-empty user (both form-encoded, RFC 6749 §2.3.1): how
// a client without a secret names itself in the header. ok is false for
// any other request; err is invalid_client for Basic credentials that
// are not form-encoded.
func PublicBasic(r *http.Request) (id string, ok bool, err error) {
	return publicBasic(r.BasicAuth())
}

// publicBasic is PublicBasic of credentials already read by
// [http.Request.BasicAuth].
func publicBasic(user, pass string, basic bool) (id string, ok bool, err error) {
	if !basic || pass != "" || user == "" {
		return "", false, nil
	}
	id, err = url.QueryUnescape(user)
	if err != nil {
		return "", false, invalidClient(errors.New("basic credentials not form-encoded"))
	}
	return id, id != "", nil
}

// invalidClient is the one answer to every credential failure (401,
// docs/security.md T-09): the cause goes to logs, never to the caller, so
// unknown clients, wrong secrets and replayed assertions look the same.
func invalidClient(cause error) *oauth2.Error {
	return &oauth2.Error{
		Code:        oauth2.ErrorInvalidClient,
		Description: "client authentication failed",
		Reason:      ReasonAuthFailed,
		Status:      http.StatusUnauthorized,
		Err:         cause,
	}
}

// unavailable is the answer when storage cannot say: fail closed, and let
// the client retry (docs/security.md D-07).
func unavailable(cause error) *oauth2.Error {
	return &oauth2.Error{
		Code:        oauth2.ErrorTemporarilyUnavailable,
		Description: "client authentication unavailable",
		Status:      http.StatusServiceUnavailable,
		Err:         cause,
	}
}

// loadClient gets an enabled client by ID, mapping not-found and disabled
// to invalid_client and a storage failure to 503.
func (a *Authenticator) loadClient(ctx context.Context, id string) (storage.Client, error) {
	c, _, err := a.loadClientFrom(ctx, id, false)
	return c, err
}

// loadClientFrom is loadClient that, with useCache and a Cache, may answer
// from memory; cached says it did.
func (a *Authenticator) loadClientFrom(ctx context.Context, id string, useCache bool) (c storage.Client, cached bool, err error) {
	if id == "" || len(id) > maxClientIDLen {
		return storage.Client{}, false, invalidClient(errors.New("client_id missing or too long"))
	}
	if useCache && a.Cache != nil {
		c, cached, err = a.Cache.CachedClient(ctx, id)
	} else {
		c, err = a.Store.GetClient(ctx, id)
	}
	return c, cached, clientErr(c, err)
}

// clientErr maps a client lookup to the authentication answer.
func clientErr(c storage.Client, err error) error {
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return invalidClient(errors.New("unknown client"))
	case err != nil:
		return unavailable(err)
	case c.Disabled:
		return invalidClient(errors.New("client disabled"))
	}
	return nil
}

// publicClient returns the enabled public client (auth method none) id
// names; any other client must authenticate.
func (a *Authenticator) publicClient(ctx context.Context, id string) (storage.Client, error) {
	c, err := a.loadClient(ctx, id)
	if err != nil {
		return storage.Client{}, err
	}
	if c.AuthMethod != oauth2.AuthMethodNone {
		return storage.Client{}, invalidClient(errors.New("client_id without credentials"))
	}
	return c, nil
}

// HashSecret is the digest stored for a client secret.
func (a *Authenticator) HashSecret(s string) []byte { return secret.Digest(a.Pepper, s) }
