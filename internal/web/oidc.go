package web

import (
	"bytes"
	"cmp"
	"compress/flate"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/opensts/sts/internal/audit"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/sts"
)

// OIDCProvider is an upstream OpenID Connect provider people sign in with
// (web.login.oidc in docs/configuration.md).
type OIDCProvider struct {
	ID, DisplayName, Issuer, ClientID, ClientSecret string
	Scopes                                          []string
	// LinkClaim is "email" (used only when email_verified is true) or "sub"
	// (the user the upstream identity, issuer and subject, created or
	// claimed; see linkSubject).
	LinkClaim string
	// OrgID, when set, confines linking to this organization and creates a
	// user there for a person without one.
	OrgID string
}

// actionPrincipalCreate is the audit action the admin API records for a
// new principal; a first upstream sign-in records the same.
const actionPrincipalCreate = "principal.create"

// actionUpstreamIdentityCreate is the audit action of a first sign-in that
// claims a user made for its subject (docs/security.md T-104).
const actionUpstreamIdentityCreate = "principal.upstream_identity.create"

// loginFlowTTL bounds how long a person may take at the provider.
const loginFlowTTL = 10 * time.Minute

// oidcFlow is what the browser keeps between leaving for the provider and
// coming back: state, nonce and PKCE verifier in an HttpOnly cookie that
// only this browser has. The callback's state must equal the cookie's,
// so a callback URL planted by someone else (login CSRF) finds no match
// (docs/security.md T-89).
type oidcFlow struct {
	Provider string `json:"p"`
	State    string `json:"s"`
	Nonce    string `json:"n"`
	Verifier string `json:"v"`
	ReturnTo string `json:"r"`
	Expires  int64  `json:"e"`
	// Fresh is set when the sign-in is a re-authentication (sudo mode,
	// docs/security.md T-141): the flow's start (Unix seconds), which the
	// ID token's auth_time may precede by reauthSkew at most.
	Fresh int64 `json:"f,omitempty"`
}

type upstream struct {
	cfg OIDCProvider

	mu       sync.Mutex
	provider *oidc.Provider
}

func (u *upstream) discover(ctx context.Context) (*oidc.Provider, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.provider != nil {
		return u.provider, nil
	}
	p, err := oidc.NewProvider(ctx, u.cfg.Issuer)
	if err != nil {
		return nil, err
	}
	u.provider = p
	return p, nil
}

func (h *Handler) flowCookie() string {
	if h.signedIn.secure {
		return "__Host-sts_login"
	}
	return "sts_login"
}

// A browser keeps a cookie of at most 4096 bytes, name and value (RFC
// 6265 §6.1, as chromium and Firefox do), and drops a longer one without
// a word. The flow carries the page to return to, which for an
// authorization request is the whole request: with a long state or
// id_token_hint, well within what /oauth2/authorize takes, one cookie
// was dropped, and the callback, finding no flow, failed every time
// (docs/security.md T-184). So the flow's value is spread over the flow
// cookie and, past flowChunk bytes, further cookies named after it
// ("-1", "-2", …), the first saying how many ("2.…"); a value that fits
// in one cookie is written as before, without the count.
//
// The cookies are Path=/ (__Host-) and live loginFlowTTL, so every
// request to the origin carries them, with the session's: a reverse proxy
// refuses a Cookie line over its buffer (nginx's default
// large_client_header_buffers, 8 KiB) on every page, the sign-in page
// included, before sts could clear them. So all the flow's cookies,
// names and values, are at most maxFlowBytes together (every request
// /oauth2/authorize accepts fits, compressed; about 4 KB of incompressible
// return_to), leaving 2 KiB of the line to the session and the rest.
const (
	flowChunk    = 3800
	maxFlowBytes = 6 << 10
	// maxFlowChunks bounds the cookies of one flow read or cleared; a
	// flow of maxFlowBytes has two, an earlier release wrote up to four.
	maxFlowChunks = 4
	// flowDeflated marks a value whose JSON is compressed (compress/flate);
	// it is no base64url character, nor a digit of the chunk count.
	flowDeflated = "~"
	// flowCompressAbove is the longest flow JSON kept uncompressed, and
	// maxFlowJSON the longest a compressed one may inflate to.
	flowCompressAbove = 1 << 10
	maxFlowJSON       = 16 << 10
)

// flowTooLong refuses a sign-in whose page to return to cannot be kept.
const flowTooLong = "The page to come back to after signing in is too long to carry through the sign-in provider. " +
	"Sign in first, then start again from the application."

// A browser may have several sign-ins through providers under way at
// once: two tabs, each sent to sign in (a second sts page, an
// application's authorization request), each at the provider. One flow
// cookie for the browser held only the last start's flow, so the other
// tab came back to a state it did not know, "Sign-in did not complete",
// and that refusal cleared the flow the second tab needed too
// (docs/security.md T-201). So each flow has cookies of its own, named
// after its state (flowSlot): the callback reads and clears only the
// flow its state names. The flows of one browser together stay within
// maxFlowBytes and maxFlows: a start that would pass either drops the
// flows begun longest ago first.
const maxFlows = 4

// flowSlot is the name of the first cookie of the flow whose state is
// state: the flow cookie's name, a dot, and 12 hex digits of the state's
// SHA-256 (the state itself is not put in a name).
func (h *Handler) flowSlot(state string) string {
	d := sha256.Sum256([]byte(state))
	return h.flowCookie() + "." + hex.EncodeToString(d[:6])
}

// flowCookieN is the name of cookie i of the flow whose first cookie is
// slot (0 is slot itself). An earlier release kept the browser's one
// flow under h.flowCookie(), which the callback still reads.
func flowCookieN(slot string, i int) string {
	if i == 0 {
		return slot
	}
	return slot + "-" + strconv.Itoa(i)
}

func (h *Handler) setFlowCookie(w http.ResponseWriter, name, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: value, Path: "/", Secure: h.signedIn.secure, HttpOnly: true,
		SameSite: http.SameSiteLaxMode, MaxAge: maxAge})
}

// encodeFlow is f as the flow cookies' value: its JSON, base64url. The
// JSON keeps "&", "<" and ">" as they are (json.Marshal writes each as
// six bytes, and an authorization request's return_to is full of "&").
// A JSON longer than flowCompressAbove is compressed first and marked
// with flowDeflated, which base64url never starts with, so that every
// request /oauth2/authorize accepts fits under maxFlowBytes (docs/security.md
// T-184). The secrets compressed with the attacker-influenced return_to
// (state, nonce, verifier) are fresh for each flow, so no guess at them
// can be tried twice.
func encodeFlow(f oidcFlow) string {
	var b bytes.Buffer
	e := json.NewEncoder(&b)
	e.SetEscapeHTML(false)
	_ = e.Encode(f)
	plain := bytes.TrimSuffix(b.Bytes(), []byte("\n"))
	if len(plain) <= flowCompressAbove {
		return base64.RawURLEncoding.EncodeToString(plain)
	}
	var z bytes.Buffer
	w, _ := flate.NewWriter(&z, flate.BestCompression) // the level is valid
	_, _ = w.Write(plain)                              // to a bytes.Buffer
	_ = w.Close()
	return flowDeflated + base64.RawURLEncoding.EncodeToString(z.Bytes())
}

// flowDecodes counts the flow values decoded, the work a start's
// planted cookies could multiply (docs/security.md T-202).
var flowDecodes atomic.Int64

// decodeFlowJSON is the JSON of a flow cookies' value v, inflated when v
// is marked so; no flow's JSON is longer than maxFlowJSON.
func decodeFlowJSON(v string) ([]byte, error) {
	flowDecodes.Add(1)
	z, deflated := strings.CutPrefix(v, flowDeflated)
	b, err := base64.RawURLEncoding.DecodeString(z)
	if err != nil || !deflated {
		return b, err
	}
	b, err = io.ReadAll(io.LimitReader(flate.NewReader(bytes.NewReader(b)), maxFlowJSON+1))
	if err != nil {
		return nil, fmt.Errorf("flow cookie: %w", err)
	}
	if len(b) > maxFlowJSON {
		return nil, errors.New("flow cookie inflates past its bound")
	}
	return b, nil
}

// flowChunks is v split into the values of the cookies of the flow whose
// first cookie is slot, or nil when they would be more than maxFlowBytes
// together, names included.
func flowChunks(slot, v string) []string {
	n := (len(v) + flowChunk - 1) / flowChunk
	parts := make([]string, n)
	total := 0
	for i := range n {
		parts[i] = v[i*flowChunk : min(len(v), (i+1)*flowChunk)]
		if i == 0 && n > 1 {
			parts[i] = strconv.Itoa(n) + "." + parts[i]
		}
		total += len(flowCookieN(slot, i)) + len("=") + len(parts[i])
	}
	if total > maxFlowBytes {
		return nil
	}
	return parts
}

// flowJar is the values of a request's cookies of the flow cookie's
// form, by name (the first of a name, as r.Cookie reads), and the names
// of the first cookies of at most maxFlows+1 flows, in the order the
// request carries them. The Cookie line is parsed once: a line of 64 KiB
// holds thousands of names, and reading each with r.Cookie, a parse of
// the whole line, made one unauthenticated start cost seconds of CPU
// (docs/security.md T-202).
type flowJar struct {
	values map[string]string
	firsts []string
}

func (h *Handler) flowJar(r *http.Request) flowJar {
	j := flowJar{values: map[string]string{}}
	base := h.flowCookie()
	for _, c := range r.Cookies() {
		if !strings.HasPrefix(c.Name, base) {
			continue
		}
		if _, dup := j.values[c.Name]; dup {
			continue
		}
		j.values[c.Name] = c.Value
		tag, tagged := strings.CutPrefix(c.Name, base+".")
		if (c.Name == base || tagged && !strings.Contains(tag, "-")) && len(j.firsts) <= maxFlows {
			j.firsts = append(j.firsts, c.Name)
		}
	}
	return j
}

// keepFlow stores f in this browser's cookies, beside the other flows
// under way in it, or reports false when f alone would be more than
// maxFlowBytes. Other flows are dropped, those begun longest ago first,
// until all fit in maxFlowBytes and maxFlows. Only the first maxFlows+1
// other flows the request carries are read or cleared (a browser sts
// wrote to carries no more); any further ones were planted by the client
// itself and are left to expire, so the work of a start, and the
// Set-Cookie it answers, stay bounded whatever the Cookie line holds
// (docs/security.md T-202).
func (h *Handler) keepFlow(w http.ResponseWriter, r *http.Request, f oidcFlow) bool {
	slot := h.flowSlot(f.State)
	parts := flowChunks(slot, encodeFlow(f))
	if parts == nil {
		return false
	}
	size := 0
	for i, part := range parts {
		size += len(flowCookieN(slot, i)) + len("=") + len(part)
		h.setFlowCookie(w, flowCookieN(slot, i), part, int(loginFlowTTL/time.Second))
	}
	type other struct {
		slot    string
		size    int
		expires int64
	}
	jar := h.flowJar(r)
	var others []other
	for _, name := range jar.firsts {
		if name == slot {
			continue
		}
		o := other{slot: name}
		for i := range maxFlowChunks {
			if v, ok := jar.values[flowCookieN(name, i)]; ok {
				o.size += len(flowCookieN(name, i)) + len("=") + len(v)
			}
		}
		if of, err := jar.readFlow(name); err == nil {
			o.expires = of.Expires // unreadable: 0, dropped first
		}
		others = append(others, o)
	}
	slices.SortFunc(others, func(a, b other) int { return cmp.Compare(b.expires, a.expires) })
	kept := 1
	for _, o := range others {
		if kept < maxFlows && size+o.size <= maxFlowBytes {
			kept++
			size += o.size
			continue
		}
		h.dropFlow(w, jar, o.slot, 0)
	}
	h.dropFlow(w, jar, slot, len(parts)) // those an earlier, longer flow of this state left
	return true
}

// readFlow is the flow this browser's cookies hold whose first cookie is
// slot.
func (h *Handler) readFlow(r *http.Request, slot string) (oidcFlow, error) {
	return h.flowJar(r).readFlow(slot)
}

func (j flowJar) readFlow(slot string) (oidcFlow, error) {
	var f oidcFlow
	v, ok := j.values[slot]
	if !ok {
		return f, http.ErrNoCookie
	}
	if count, first, ok := strings.Cut(v, "."); ok {
		n, err := strconv.Atoi(count)
		if err != nil || n < 2 || n > maxFlowChunks {
			return f, errors.New("malformed flow cookie")
		}
		var all strings.Builder
		all.WriteString(first)
		for i := 1; i < n; i++ {
			c, ok := j.values[flowCookieN(slot, i)]
			if !ok {
				return f, fmt.Errorf("flow cookie %d of %d: %w", i+1, n, http.ErrNoCookie)
			}
			all.WriteString(c)
		}
		v = all.String()
	}
	b, err := decodeFlowJSON(v)
	if err != nil {
		return f, err
	}
	return f, json.Unmarshal(b, &f)
}

// callbackSlot is the first cookie of the flow a callback whose state is
// state comes back to: the flow of that state, else the one flow an
// earlier release kept, if the request carries it.
func (h *Handler) callbackSlot(j flowJar, state string) string {
	slot := h.flowSlot(state)
	if _, ok := j.values[slot]; !ok {
		if _, ok := j.values[h.flowCookie()]; ok {
			return h.flowCookie()
		}
	}
	return slot
}

// dropFlow clears the cookies of the flow whose first cookie is slot,
// from cookie first on, that the request carries.
func (h *Handler) dropFlow(w http.ResponseWriter, j flowJar, slot string, first int) {
	for i := first; i < maxFlowChunks; i++ {
		if _, ok := j.values[flowCookieN(slot, i)]; ok {
			h.setFlowCookie(w, flowCookieN(slot, i), "", -1)
		}
	}
}

func (h *Handler) oauthConfig(u *upstream, p *oidc.Provider) *oauth2.Config {
	scopes := u.cfg.Scopes
	if len(scopes) == 0 {
		scopes = []string{"email", "profile"}
	}
	if !slices.Contains(scopes, oidc.ScopeOpenID) {
		scopes = append([]string{oidc.ScopeOpenID}, scopes...)
	}
	return &oauth2.Config{ClientID: u.cfg.ClientID, ClientSecret: u.cfg.ClientSecret, Endpoint: p.Endpoint(),
		RedirectURL: strings.TrimSuffix(h.o.Issuer, "/") + "/login/oidc/" + u.cfg.ID + "/callback", Scopes: scopes}
}

// clientContext is ctx carrying the client go-oidc and x/oauth2 call the
// provider with.
func (h *Handler) clientContext(ctx context.Context) context.Context {
	return oidc.ClientContext(ctx, h.o.HTTPClient)
}

// upstreamClient is a copy of c (a 10 s-timeout client when nil) that
// follows no redirect of a request other than GET: the code exchange
// POSTs the code, the PKCE verifier and the client secret, and a token
// endpoint's 307 or 308 had them sent again to whatever its Location
// named (a 302 still sent the secret in the Authorization header to
// another port of the same host name). Such a redirect is now the
// exchange's answer, a failed sign-in, as the trace exporter does
// (docs/security.md T-188, T-189). Discovery and key fetches (GET) keep
// c's own rule.
func upstreamClient(c *http.Client) *http.Client {
	if c == nil {
		c = &http.Client{Timeout: 10 * time.Second}
	}
	cp := *c
	follow := c.CheckRedirect
	cp.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if via[0].Method != http.MethodGet {
			return http.ErrUseLastResponse
		}
		if follow != nil {
			return follow(req, via)
		}
		if len(via) >= 10 { // net/http's own limit
			return errors.New("stopped after 10 redirects")
		}
		return nil
	}
	return &cp
}

// oidcStartPage answers GET /login/oidc/{id}, a link to the start of a
// sign-in, with the sign-in page: a sign-in starts only from that page's
// form (oidcStart). A link or image of another site would otherwise send
// the browser to the provider, which approves at once a person signed in
// there, and sign the browser in as that person, replacing whatever
// session it had (login CSRF, docs/security.md T-137).
func (h *Handler) oidcStartPage(w http.ResponseWriter, r *http.Request) {
	if _, ok := h.upstreams[r.PathValue("id")]; !ok {
		http.NotFound(w, r)
		return
	}
	returnTo := LocalPath(r.URL.Query().Get("return_to"))
	http.Redirect(w, r, "/login?return_to="+url.QueryEscape(returnTo), http.StatusSeeOther)
}

// oidcStart sends the browser to the provider. It answers only the
// sign-in page's form: from our origin (http.CrossOriginProtection) and
// carrying this browser's anti-CSRF value (startCSRF), so another site
// cannot start a sign-in in someone's browser (docs/security.md T-137).
func (h *Handler) oidcStart(w http.ResponseWriter, r *http.Request) {
	u, ok := h.upstreams[r.PathValue("id")]
	if !ok {
		http.NotFound(w, r)
		return
	}
	returnTo := LocalPath(r.PostFormValue("return_to"))
	want, ok := h.browserCSRF(r)
	if !ok || subtle.ConstantTimeCompare([]byte(r.PostFormValue("csrf")), []byte(want)) != 1 {
		h.o.Logger.InfoContext(r.Context(), "web: upstream sign-in start refused", "provider", u.cfg.ID,
			"reason", "not sent by this browser's sign-in page")
		h.render(w, r, http.StatusForbidden, "message", "Sign-in failed", nil, messageData{
			Text: "Start the sign-in from the sign-in page.",
			Link: "/login?return_to=" + url.QueryEscape(returnTo), LinkText: "Go to the sign-in page"})
		return
	}
	ctx := h.clientContext(r.Context())
	p, err := u.discover(ctx)
	if err != nil {
		h.o.Logger.ErrorContext(ctx, "web: upstream discovery failed", "provider", u.cfg.ID, "error", err)
		h.message(w, r, http.StatusServiceUnavailable, "Try again", "The sign-in provider cannot be reached; try again shortly.")
		return
	}
	f := oidcFlow{Provider: u.cfg.ID, State: randomValue(), Nonce: randomValue(), Verifier: oauth2.GenerateVerifier(),
		ReturnTo: returnTo, Expires: h.now().Add(loginFlowTTL).Unix()}
	opts := []oauth2.AuthCodeOption{oidc.Nonce(f.Nonce), oauth2.S256ChallengeOption(f.Verifier)}
	if h.reauthenticating(r) {
		// max_age=0 asks the provider to authenticate the person now,
		// whatever session it has, and makes auth_time REQUIRED in the ID
		// token (OIDC Core §3.1.2.1); the callback checks it. Not
		// prompt=login, which Google refuses.
		f.Fresh = h.now().Unix()
		opts = append(opts, oauth2.SetAuthURLParam("max_age", "0"))
	}
	if !h.keepFlow(w, r, f) {
		h.o.Logger.InfoContext(r.Context(), "web: upstream sign-in start refused", "provider", u.cfg.ID,
			"reason", "return_to too long to keep", "return_to_bytes", len(returnTo))
		h.message(w, r, http.StatusBadRequest, "Sign-in failed", flowTooLong)
		return
	}
	url := h.oauthConfig(u, p).AuthCodeURL(f.State, opts...)
	http.Redirect(w, r, url, http.StatusFound)
}

// reauthenticating reports whether the sign-in r starts is a
// re-authentication for sudo mode (docs/security.md T-141): the browser
// has a session whose sign-in is older than web.session.reauth_after, or
// the sign-in page was opened from the page asking to sign in again
// (askReauth), whose session may have ended since. Either only makes the
// sign-in stricter, so the form's word is enough for the second. A
// first sign-in is not one; a session storage could not read just now
// may be live and old, so it is one too (docs/security.md T-146): taken
// for none, the provider could answer from its own earlier sign-in and
// the new session pass sudo mode.
func (h *Handler) reauthenticating(r *http.Request) bool {
	if r.PostFormValue("reauth") == "1" {
		return true
	}
	se, ok, err := h.signedIn.find(r)
	return err != nil || ok && !h.signedInRecently(se)
}

const badUpstream = "Sign-in did not complete. Start again from the sign-in page."

// errOrganizationGone is link's refusal of a first sign-in into the
// provider's organization once it is deleted (docs/security.md T-156).
var errOrganizationGone = errors.New("the provider's organization no longer exists")

// organizationGone is the page for it: signing in again cannot help, and
// the organization is not named.
const organizationGone = "You have no account here yet, and the sign-in provider cannot create one: " +
	"the organization it adds people to no longer exists. An administrator must give you an account " +
	"or change the provider's organization; signing in again will not help."

// reauthSkew is how much earlier than the start of a re-authentication
// the provider's auth_time may be: the two clocks differ a little.
const reauthSkew = time.Minute

// The refusals of a re-authentication the provider did not make
// (docs/security.md T-141), for sudo mode's forms; and for an
// application's demand (T-178), which come with a link to try again.
const (
	staleReauth = "The sign-in provider did not ask you to sign in again: it answered from an earlier sign-in there. " +
		"Creating, regenerating or widening an access token needs a fresh sign-in. Sign out at the provider and try again, " +
		"or ask an administrator for a sign-in link (sts login-link)."
	untimedReauth = "The sign-in provider did not say when you signed in (its ID token has no auth_time, or one in the future), so this cannot count " +
		"as signing in again. Creating, regenerating or widening an access token needs a fresh sign-in: " +
		"ask an administrator for a sign-in link (sts login-link)."
	staleAppReauth = "The sign-in provider did not ask you to sign in again: it answered from an earlier sign-in there. " +
		"The application asked for a fresh sign-in. Sign out at the provider and sign in again, " +
		"or ask an administrator for a sign-in link (sts login-link)."
	untimedAppReauth = "The sign-in provider did not say when you signed in (its ID token has no auth_time, or one in the future), so this cannot count " +
		"as signing in again, which the application asked for: ask an administrator for a sign-in link (sts login-link)."
)

// authorizePath is the authorization endpoint's path (internal/authorize),
// a return_to of which is a relying party's request.
const authorizePath = "/oauth2/authorize"

// refuseReauth answers a re-authentication the provider did not make:
// stale is whether it answered from an earlier sign-in (else it did not
// say when). A relying party's request (returnTo at the authorization
// endpoint) is told so, with a link to sign in again back to it; anyone
// else is on sudo mode's way (docs/security.md T-141, T-178).
func (h *Handler) refuseReauth(w http.ResponseWriter, r *http.Request, returnTo string, stale bool) {
	if u, err := url.Parse(returnTo); err != nil || u.Path != authorizePath {
		text := untimedReauth
		if stale {
			text = staleReauth
		}
		h.message(w, r, http.StatusUnauthorized, "Sign-in failed", text)
		return
	}
	text := untimedAppReauth
	if stale {
		text = staleAppReauth
	}
	h.render(w, r, http.StatusUnauthorized, "message", "Sign-in failed", nil, messageData{Text: text,
		Link: "/login?return_to=" + url.QueryEscape(returnTo) + "&reauth=1", LinkText: "Sign in again"})
}

// authenticatedAt is when the provider's ID token says it authenticated
// the person (auth_time), never later than now; zero when it does not
// say, and when it says a time more than reauthSkew ahead of sts's clock
// or before 1970, which no clock's drift explains: taken for now, it
// would meet any demand (docs/security.md T-178).
func (h *Handler) authenticatedAt(authTime *float64) time.Time {
	now := h.now()
	if authTime == nil || !(*authTime >= 0 && *authTime <= float64(now.Add(reauthSkew).Unix())) {
		return time.Time{}
	}
	if at := time.Unix(int64(*authTime), 0); at.Before(now) {
		return at
	}
	return now
}

// oidcCallback finishes the sign-in: state bound to this browser, code
// redeemed with the PKCE verifier, ID token verified (issuer, audience,
// expiry, signature, nonce), then the principal found by the link claim.
func (h *Handler) oidcCallback(w http.ResponseWriter, r *http.Request) {
	u, ok := h.upstreams[r.PathValue("id")]
	if !ok {
		http.NotFound(w, r)
		return
	}
	ctx := h.clientContext(r.Context())
	refuse := func(reason string, err error) {
		h.o.Logger.InfoContext(ctx, "web: upstream sign-in refused", "provider", u.cfg.ID, "reason", reason, "error", err)
		h.message(w, r, http.StatusUnauthorized, "Sign-in failed", badUpstream)
	}
	q := r.URL.Query()
	// The flow the state names, not another tab's (docs/security.md
	// T-201). It is single-use: its cookies go whatever the outcome.
	jar := h.flowJar(r)
	slot := h.callbackSlot(jar, q.Get("state"))
	f, err := jar.readFlow(slot)
	h.dropFlow(w, jar, slot, 0)
	switch {
	case err != nil:
		refuse("no sign-in in progress in this browser", err)
		return
	case f.Provider != u.cfg.ID || h.now().Unix() > f.Expires:
		refuse("sign-in flow expired or for another provider", nil)
		return
	case q.Get("state") == "" || subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(f.State)) != 1:
		refuse("state mismatch", nil)
		return
	case q.Get("error") != "":
		refuse("provider refused: "+q.Get("error"), nil)
		return
	}
	p, err := u.discover(ctx)
	if err != nil {
		refuse("discovery", err)
		return
	}
	if reason := responseIssuer(p, u.cfg.Issuer, q); reason != "" {
		refuse(reason, nil)
		return
	}
	tok, err := h.oauthConfig(u, p).Exchange(ctx, q.Get("code"), oauth2.VerifierOption(f.Verifier))
	if err != nil {
		refuse("code exchange", err)
		return
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := p.Verifier(&oidc.Config{ClientID: u.cfg.ClientID, Now: h.now}).Verify(ctx, raw)
	if err != nil {
		refuse("id token", err)
		return
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(f.Nonce)) != 1 {
		refuse("nonce mismatch", nil)
		return
	}
	var claims struct {
		Email         string    `json:"email"`
		EmailVerified claimBool `json:"email_verified"`
		Name          string    `json:"name"`
		Username      string    `json:"preferred_username"`
		AuthTime      *float64  `json:"auth_time"`
		AZP           *string   `json:"azp"`
	}
	if err := idt.Claims(&claims); err != nil {
		refuse("claims", err)
		return
	}
	// go-oidc checks that the audience includes our client ID, not whom
	// the token was issued to: an azp, when present (an empty one too),
	// must be our client ID, as Keycloak's broker checks. A token for
	// several audiences need not carry one: OpenID Connect Core with
	// errata set 2 dropped that step of §3.1.3.7, and providers send such
	// tokens (docs/security.md T-242, F-116).
	if claims.AZP != nil && *claims.AZP != u.cfg.ClientID {
		refuse("id token: issued to another client (azp)", nil)
		return
	}
	authenticated := h.authenticatedAt(claims.AuthTime)
	if f.Fresh != 0 {
		// A re-authentication: the provider must have authenticated the
		// person since the flow began (docs/security.md T-141). The
		// session the browser has, if any, stays as it is.
		reason := ""
		switch {
		case claims.AuthTime == nil:
			reason = "re-authentication: no auth_time"
		case authenticated.IsZero():
			reason = "re-authentication: auth_time out of range"
		case authenticated.Before(time.Unix(f.Fresh, 0).Add(-reauthSkew)):
			reason = "re-authentication: auth_time " + authenticated.UTC().Format(time.RFC3339) + " before the flow began"
		}
		if reason != "" {
			h.o.Logger.InfoContext(ctx, "web: upstream sign-in refused", "provider", u.cfg.ID, "reason", reason)
			h.refuseReauth(w, r, f.ReturnTo, !authenticated.IsZero())
			return
		}
	}
	if strings.IndexByte(idt.Subject, 0) >= 0 || strings.IndexByte(claims.Email, 0) >= 0 {
		// No stored text holds a NUL (PostgreSQL refuses it, SQLSTATE
		// 22021), and sub and email become stored text: the upstream
		// identity, the user's name and email. Refused before any write,
		// the same on both backends (docs/security.md T-252).
		refuse("sub or email holds a NUL character", nil)
		return
	}
	principal, err := h.link(r.Context(), pageCaller(w, r, ""), u.cfg, idt.Issuer, idt.Subject, claims.Email, bool(claims.EmailVerified))
	if errors.Is(err, errOrganizationGone) {
		h.o.Logger.InfoContext(ctx, "web: upstream sign-in refused", "provider", u.cfg.ID, "reason", err.Error())
		h.message(w, r, http.StatusUnauthorized, "Sign-in failed", organizationGone)
		return
	}
	var refused linkRefusal
	if err != nil && !errors.As(err, &refused) && !errors.Is(err, storage.ErrAlreadyExists) && !errors.Is(err, storage.ErrNotFound) {
		// Storage failed to look up or record the identity: an outage,
		// not a refused person, so "try again", logged as an error; a row
		// taken or gone meanwhile (a concurrent sign-in, a deleted user)
		// stays a refusal (docs/security.md F-118).
		h.o.Logger.ErrorContext(ctx, "web: upstream sign-in failed", "provider", u.cfg.ID, "error", err)
		h.message(w, r, http.StatusServiceUnavailable, "Try again", "The server could not complete the sign-in; try again shortly.")
		return
	}
	if err != nil {
		refuse(err.Error(), nil)
		return
	}
	// The session records when the provider says it authenticated the
	// person, which the authorization endpoint judges a relying party's
	// demand by, and tells as auth_time: an answer from the provider's
	// earlier sign-in, or one that does not say when, is no fresh
	// authentication, whatever the sign-in page was asked
	// (docs/security.md T-178).
	h.finishSignIn(w, r, principal, oidcMethod(u.cfg), f.ReturnTo, authenticated)
}

// responseIssuer says why the authorization response q may not be taken
// as one from provider p, whose issuer is issuer, or "". Its iss
// parameter (RFC 9207), when sent, must be the issuer exactly; a provider
// whose metadata says it sends one (authorization_response_iss_parameter_supported)
// must. Each provider has a callback of its own, but a response another
// provider sent there (a mix-up) is then refused before its code is
// redeemed at this one (docs/security.md T-243).
func responseIssuer(p *oidc.Provider, issuer string, q url.Values) string {
	if sent, ok := q["iss"]; ok {
		if len(sent) != 1 || sent[0] != issuer {
			return "authorization response from another issuer"
		}
		return ""
	}
	var meta struct {
		Supported bool `json:"authorization_response_iss_parameter_supported"`
	}
	if err := p.Claims(&meta); err == nil && meta.Supported {
		return "authorization response without the iss its provider sends"
	}
	return ""
}

// claimBool is a boolean claim as providers send it: JSON true, or the
// string "true", which some send in ID tokens as go-oidc allows in
// UserInfo. Anything else, the string "false" or a value of another type,
// is false, not an error that would refuse the whole sign-in (a provider
// linking by subject never looks at email_verified), and never true
// (docs/security.md F-115).
type claimBool bool

func (b *claimBool) UnmarshalJSON(data []byte) error {
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		return err
	}
	*b = claimBool(v == true || v == "true")
	return nil
}

// linkRefusal is why link refuses an upstream identity: the sign-in is
// refused (401), where any other error of link is storage failing, which
// is answered "try again" (503; docs/security.md F-118).
type linkRefusal string

func (e linkRefusal) Error() string { return string(e) }

// refusal is reason as a linkRefusal.
func refusal(reason string) error { return linkRefusal(reason) }

// link finds (or, with an organization configured, creates) the user
// principal the upstream identity (iss, sub) stands for. from is the
// sign-in's request as the audit trail names it, its actor the user the
// events are about (docs/security.md D-21).
func (h *Handler) link(ctx context.Context, from audit.Caller, cfg OIDCProvider, iss, sub, email string, verified bool) (storage.Principal, error) {
	if sub == "" {
		return storage.Principal{}, refusal("subject missing")
	}
	var orgs []string
	if cfg.OrgID != "" {
		orgs = []string{cfg.OrgID}
	} else {
		all, err := h.o.Store.ListOrganizations(ctx)
		if err != nil {
			return storage.Principal{}, err
		}
		for _, o := range all {
			orgs = append(orgs, o.ID)
		}
	}
	if cfg.LinkClaim == "sub" {
		return h.linkSubject(ctx, from, cfg, orgs, iss, sub)
	}
	if email == "" || !verified {
		return storage.Principal{}, refusal("email missing or not verified")
	}
	if p, found, err := h.byEmail(ctx, orgs, email); found || err != nil {
		return p, err
	}
	if cfg.OrgID == "" {
		return storage.Principal{}, refusal("no principal for this identity")
	}
	// The user is made with the pair (iss, sub) bound to it, which only one
	// first sign-in can bind: of two at once (two tabs), the second fails
	// here and finds the user the first made by its email, where both
	// used to make a user with the email and every later sign-in matched
	// two. The pair decides nothing else here: the person is whoever holds
	// the email, so when the pair's user no longer has it (an
	// administrator gave that user to someone else by changing its email)
	// the sign-in makes a user of its own, unbound, as before.
	p, err := h.createUser(ctx, from, cfg, email, email, &storage.UpstreamIdentity{OrgID: cfg.OrgID, Issuer: iss, Subject: sub})
	if errors.Is(err, storage.ErrAlreadyExists) {
		if q, found, err := h.byEmail(ctx, orgs, email); found || err != nil {
			return q, err
		}
		return h.createUser(ctx, from, cfg, email, email, nil)
	}
	return p, err
}

// byEmail is the one user of orgs with email, if any; a disabled one, or
// several, is an error.
func (h *Handler) byEmail(ctx context.Context, orgs []string, email string) (storage.Principal, bool, error) {
	var found []storage.Principal
	for _, org := range orgs {
		ps, err := h.o.Store.ListPrincipals(ctx, org)
		if err != nil {
			return storage.Principal{}, false, err
		}
		for _, p := range ps {
			if p.Kind == storage.PrincipalUser && equalFoldASCII(p.Email, email) {
				found = append(found, p)
			}
		}
	}
	switch {
	case len(found) > 1:
		return storage.Principal{}, false, refusal("link claim matches several principals")
	case len(found) == 0:
		return storage.Principal{}, false, nil
	case found[0].Disabled:
		return storage.Principal{}, false, refusal("principal disabled")
	}
	return found[0], true, nil
}

// equalFoldASCII reports whether a and b are equal with ASCII letters
// compared without case. strings.EqualFold folds Unicode too: the Kelvin
// sign (U+212A) matched k, so an upstream account verified for an email
// spelled with it signed in as the user holding the ASCII one
// (docs/security.md T-104).
func equalFoldASCII(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range len(a) {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// linkSubject links by subject (docs/security.md T-104). A subject is
// unique only at its issuer (OpenID Connect Core §2), so the person is
// the pair (iss, sub), and:
//
//   - a pair recorded before signs in as the user it is bound to;
//   - otherwise a user an administrator made for the subject is claimed
//     once, and the pair recorded, so no other issuer's subject of the
//     same name can claim it afterwards. It is named "<provider id>:<sub>",
//     or just "<sub>" where iss is the only issuer signing people in to
//     its organization. No user bound to another pair, no instance
//     administrator and no other kind of principal is ever claimed;
//   - otherwise, with the provider's organization set, a first sign-in
//     creates a user named sub there, bound to the pair, unless another
//     principal of the organization has that name.
//
// Anything else is refused with the reason in the log.
//
// Two first sign-ins of one person at once (two tabs) both find the pair
// unbound; the one that commits second fails to bind it, finds it bound
// now, and signs in as the user the other made.
func (h *Handler) linkSubject(ctx context.Context, from audit.Caller, cfg OIDCProvider, orgs []string, iss, sub string) (storage.Principal, error) {
	if p, found, err := h.boundTo(ctx, orgs, iss, sub); found || err != nil {
		return p, err
	}
	p, err := h.bindSubject(ctx, from, cfg, orgs, iss, sub)
	if err != nil {
		if q, found, err2 := h.boundTo(ctx, orgs, iss, sub); found || err2 != nil {
			return q, err2
		}
	}
	return p, err
}

// boundTo is the user the pair (iss, sub) is bound to in one of orgs, if
// any; a disabled one is an error.
func (h *Handler) boundTo(ctx context.Context, orgs []string, iss, sub string) (storage.Principal, bool, error) {
	var bound []storage.UpstreamIdentity
	for _, org := range orgs {
		u, err := h.o.Store.GetUpstreamIdentity(ctx, org, iss, sub)
		if errors.Is(err, storage.ErrNotFound) {
			continue
		}
		if err != nil {
			return storage.Principal{}, false, err
		}
		bound = append(bound, u)
	}
	switch {
	case len(bound) > 1:
		return storage.Principal{}, false, refusal("upstream identity bound to users of several organizations")
	case len(bound) == 0:
		return storage.Principal{}, false, nil
	}
	p, err := h.o.Store.GetPrincipal(ctx, bound[0].PrincipalID)
	if err != nil {
		return storage.Principal{}, false, err
	}
	if p.Disabled {
		return storage.Principal{}, false, refusal("principal disabled")
	}
	return p, true, nil
}

// bindSubject binds the unbound pair (iss, sub): it claims the user made
// for the subject, or creates one (see linkSubject).
func (h *Handler) bindSubject(ctx context.Context, from audit.Caller, cfg OIDCProvider, orgs []string, iss, sub string) (storage.Principal, error) {
	qualified := cfg.ID + ":" + sub
	var named []storage.Principal
	var taken *storage.Principal // the principal of cfg.OrgID named sub but not claimable by that name
	for _, org := range orgs {
		ps, err := h.o.Store.ListPrincipals(ctx, org)
		if err != nil {
			return storage.Principal{}, err
		}
		bare := h.soleIssuer(org, iss)
		for _, p := range ps {
			switch {
			case p.Name == qualified || p.Name == sub && bare:
				named = append(named, p)
			case p.Name == sub && org == cfg.OrgID:
				taken = &p
			}
		}
	}
	switch {
	case len(named) > 1:
		return storage.Principal{}, refusal("link claim matches several principals")
	case len(named) == 1:
		return h.claim(ctx, from, cfg, named[0], iss, sub)
	case cfg.OrgID == "":
		return storage.Principal{}, refusal("no principal for this identity")
	case taken != nil:
		if err := h.claimable(ctx, *taken); err != nil {
			return storage.Principal{}, err
		}
		return storage.Principal{}, refusal("subject is the bare name of a user, and several issuers sign people in to its organization: " +
			"only a user named " + cfg.ID + ":<subject> is claimed through this provider")
	}
	return h.createUser(ctx, from, cfg, sub, "", &storage.UpstreamIdentity{OrgID: cfg.OrgID, Issuer: iss, Subject: sub})
}

// soleIssuer reports whether iss is the issuer of every provider that
// signs people in to organization org: only then does a bare subject
// name one person there.
func (h *Handler) soleIssuer(org, iss string) bool {
	for _, u := range h.upstreams {
		if (u.cfg.OrgID == "" || u.cfg.OrgID == org) && u.cfg.Issuer != iss {
			return false
		}
	}
	return true
}

// claimable says why p may not be claimed by an upstream identity, or nil.
func (h *Handler) claimable(ctx context.Context, p storage.Principal) error {
	switch {
	case p.Kind != storage.PrincipalUser:
		return refusal("subject names a principal that is not a user")
	case p.InstanceAdmin || slices.Contains(h.o.InstanceAdmins, p.ID):
		return refusal("subject names an instance administrator")
	case p.Disabled:
		return refusal("principal disabled")
	}
	ids, err := h.o.Store.ListUpstreamIdentities(ctx, p.ID)
	if err != nil {
		return err
	}
	if len(ids) > 0 {
		return refusal("subject names a user bound to another upstream identity")
	}
	return nil
}

// claim binds (iss, sub) to p, a user made for the subject, with its
// audit event, from's request and p as its actor.
func (h *Handler) claim(ctx context.Context, from audit.Caller, cfg OIDCProvider, p storage.Principal, iss, sub string) (storage.Principal, error) {
	if err := h.claimable(ctx, p); err != nil {
		return storage.Principal{}, err
	}
	now := storage.Now(h.now())
	c := from
	c.Actor = "principal:" + p.ID
	ev := c.Event(now, p.OrgID, actionUpstreamIdentityCreate, "principal:"+p.ID, "success", "first sign-in with "+cfg.ID)
	err := storage.WithEvent(ctx, h.o.Store, func(tx storage.Tx) error {
		return tx.CreateUpstreamIdentity(ctx, storage.UpstreamIdentity{OrgID: p.OrgID, Issuer: iss, Subject: sub,
			PrincipalID: p.ID, CreatedAt: now})
	}, func() storage.AuditEvent { return ev })
	if err != nil {
		return storage.Principal{}, err
	}
	return p, nil
}

// createUser creates the user of a first sign-in in the provider's
// organization, bound to the upstream identity id when it is not nil, with
// its audit event, from's request and the new user as its actor: all
// commit together (docs/design.md#audit). The user is named name as
// displayName makes it follow the name rule; the email is kept as sent.
func (h *Handler) createUser(ctx context.Context, from audit.Caller, cfg OIDCProvider, name, email string, id *storage.UpstreamIdentity) (storage.Principal, error) {
	now := storage.Now(h.now())
	p := storage.Principal{ID: storage.NewID(), OrgID: cfg.OrgID, Kind: storage.PrincipalUser, Name: displayName(name), Email: email,
		CreatedAt: now, UpdatedAt: now}
	c := from
	c.Actor = "principal:" + p.ID
	ev := c.Event(now, p.OrgID, actionPrincipalCreate, "principal:"+p.ID, "success", "first sign-in with "+cfg.ID)
	err := h.o.Store.WithTx(ctx, func(tx storage.Tx) error {
		// The organization was resolved when the server started and may
		// have been deleted since: read it again in the user's unit of
		// work, holding its row until the user commits, so no user is made
		// in an organization that is gone (docs/design.md#owners-held-while-their-rows-are-written,
		// docs/security.md T-156).
		_, err := tx.LockOrganization(ctx, p.OrgID)
		if errors.Is(err, storage.ErrNotFound) {
			return fmt.Errorf("%w: %s", errOrganizationGone, p.OrgID)
		}
		if err != nil {
			return err
		}
		if err := tx.CreatePrincipal(ctx, p); err != nil {
			return err
		}
		if id != nil {
			id.PrincipalID, id.CreatedAt = p.ID, now
			if err := tx.CreateUpstreamIdentity(ctx, *id); err != nil {
				return err
			}
		}
		return tx.AppendAudit(ctx, ev)
	})
	if err != nil {
		return storage.Principal{}, err
	}
	return p, nil
}

// displayName is name, the upstream's subject or email, as a user's name
// may be: the upstream chose it, not the person signing in, so the
// sign-in is not refused for it. A name the rule refuses
// (sts.CheckDisplayText, docs/security.md T-135) has each character
// DisplayRune refuses (and each byte that is not UTF-8) replaced by
// U+FFFD, which shows that something was; a name longer than the API
// accepts (sts.MaxNameBytes, T-138) is then cut there on a character
// boundary. A cut inside a subdivision flag leaves its sequence open,
// which the rule refuses, so the cut name is cleaned once more: all that
// is left to replace then are its flags' tags (4 bytes each), by U+FFFD
// (3 bytes), so the name stays within the limit.
func displayName(name string) string {
	name = displayable(name)
	if len(name) <= sts.MaxNameBytes {
		return name
	}
	return displayable(cutText(name, sts.MaxNameBytes))
}

// displayable is name with each character DisplayRune refuses replaced by
// U+FFFD, or name itself when CheckDisplayText accepts it (a subdivision
// flag is kept).
func displayable(name string) string {
	if sts.CheckDisplayText("name", name) == nil {
		return name
	}
	return strings.Map(func(r rune) rune {
		if sts.DisplayRune(r) {
			return r
		}
		return utf8.RuneError
	}, name)
}

// cutText is the longest prefix of s, valid UTF-8 text, of at most n bytes
// that ends on a character boundary.
func cutText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
