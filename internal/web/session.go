package web

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/opensts/sts/internal/audit"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/sts"
)

// Cookie names. The __Host- prefix makes a browser refuse the cookie
// unless it is Secure, has Path=/ and no Domain, so it cannot be set by a
// sibling domain or over plain HTTP; browsers therefore refuse it on an
// http:// issuer (development, tests), where the plain name is used.
const (
	CookieSecure   = "__Host-sts_session"
	CookieInsecure = "sts_session"
	// touchEvery bounds how often a session's last use is written.
	touchEvery = storage.WebSessionTouchEvery
	// MaxSessions is how many sessions a person keeps: a sign-in past it
	// ends their oldest (docs/security.md T-208).
	MaxSessions = 50
)

// Store is the storage the pages need.
type Store interface {
	storage.SessionStore
	storage.PrincipalStore
	storage.OrganizationStore
	storage.AuditStore
	storage.UpstreamIdentityStore
	storage.UnitOfWork
}

// SignedIn knows who is signed in to a request, and sends people to sign
// in. The authorization endpoint uses it:
//
//	id, ok, err := signedIn.Principal(r)
//	if err != nil { /* 503: try again */ }
//	if !ok { signedIn.SignIn(w, r, r.URL.RequestURI()); return }
//
// It is safe for concurrent use.
type SignedIn struct {
	store    Store
	secure   bool
	idle     time.Duration
	absolute time.Duration
	now      func() time.Time
	logger   *slog.Logger
	// accepts is [MethodAccepted] of the configured upstream providers: a
	// session begun through one no longer configured is refused.
	accepts func(method string) bool
}

// session is a valid session and its principal.
type session struct {
	rec       storage.WebSession
	principal storage.Principal
}

// CookieName is the session cookie's name for this issuer.
func (s *SignedIn) CookieName() string {
	if s.secure {
		return CookieSecure
	}
	return CookieInsecure
}

// Principal returns the ID of the principal signed in to r, if any: the
// session cookie names a stored session that is neither idle nor past its
// absolute end, whose upstream provider (if it began through one) is
// still configured with the same issuer and client, and whose principal
// exists and is not disabled. An error is a session storage could not
// read just now: it may be live (docs/security.md T-146).
func (s *SignedIn) Principal(r *http.Request) (string, bool, error) {
	se, ok, err := s.find(r)
	if err != nil || !ok {
		return "", false, err
	}
	return se.principal.ID, true, nil
}

// AuthTime returns when the person of the session r carries
// authenticated, as recorded at sign-in: a sign-in link's use, or the
// upstream provider's auth_time, which may be long before the session
// began (the provider answered from its own earlier sign-in), and zero
// when the provider did not say (docs/security.md T-178). The
// authorization endpoint reads it for the ID token's auth_time and for
// max_age and prompt=login (OIDC Core §2, §3.1.2.1); it implements
// authorize.SignedInAt. An error is as Principal's.
func (s *SignedIn) AuthTime(r *http.Request) (time.Time, bool, error) {
	se, ok, err := s.find(r)
	if err != nil || !ok {
		return time.Time{}, false, err
	}
	return se.rec.AuthAt, true, nil
}

// Session is Principal, the session's lineage (which a code records: the
// family it begins without offline_access ends with the session and the
// sessions that continue it, docs/security.md ), its start (sudo mode's measure, T-140: every
// sign-in starts a new session, T-82) and AuthTime from one read of the
// session (authorize.SignedInSession), so the authorization endpoint
// reads it once a request (docs/security.md T-146).
func (s *SignedIn) Session(r *http.Request) (string, string, time.Time, time.Time, bool, error) {
	se, ok, err := s.find(r)
	if err != nil || !ok {
		return "", "", time.Time{}, time.Time{}, false, err
	}
	return se.principal.ID, se.rec.Lineage, se.rec.CreatedAt, se.rec.AuthAt, true, nil
}

// SignIn sends the browser to the sign-in page, which returns it to
// returnTo after sign-in. returnTo must be a path on this server
// ("/oauth2/authorize?..."); anything else (another host, a scheme,
// "//host", a backslash) is replaced by /tokens, so the sign-in cannot be
// turned into an open redirect (docs/security.md T-85).
func (s *SignedIn) SignIn(w http.ResponseWriter, r *http.Request, returnTo string) {
	http.Redirect(w, r, "/login?return_to="+url.QueryEscape(LocalPath(returnTo)), http.StatusSeeOther)
}

// SignInAgain is SignIn for a sign-in that must be a fresh
// authentication (authorize.SignInAgain: a relying party's prompt=login
// or max_age): the sign-in page is opened as the page asking to sign in
// again opens it (reauth=1), so a sign-in through an upstream provider
// asks it max_age=0 and checks its auth_time (docs/security.md T-141,
// T-178).
func (s *SignedIn) SignInAgain(w http.ResponseWriter, r *http.Request, returnTo string) {
	http.Redirect(w, r, "/login?return_to="+url.QueryEscape(LocalPath(returnTo))+"&reauth=1", http.StatusSeeOther)
}

// LocalPath returns p if it is a path on this server (CheckLocalPath),
// else "/tokens".
func LocalPath(p string) string {
	if CheckLocalPath(p) != nil {
		return "/tokens"
	}
	return p
}

// CheckLocalPath says why p is not a path on this server, the only place
// a return_to may send a browser (docs/security.md T-85): it must begin
// with one "/", carry no scheme, host, backslash or control character
// (a tab, a line break, NUL, DEL), and no "." or ".." segment, neither as
// written nor once percent-decoded ("/%2F%2Fhost", "/%5Chost",
// "/%2e%2e/x", "/x%0d%0aSet-Cookie:…").
// `sts login-link --return-to` refuses what it refuses.
func CheckLocalPath(p string) error {
	if p == "" || !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") || strings.Contains(p, "\\") {
		return errors.New("want a path on this server: one leading /, no // or backslash")
	}
	// No page of ours has a control character anywhere in its path,
	// query or fragment; decoded, one is a line break or a NUL to
	// whatever reads the Location (a proxy, a log, a client library).
	if strings.ContainsFunc(p, unicode.IsControl) || strings.ContainsFunc(percentDecoded(p), unicode.IsControl) {
		return errors.New("want a path on this server: no control character (tab, line break, NUL), as sent or percent-encoded")
	}
	u, err := url.Parse(p)
	// The decoded path is held to the same rule: "/%2F%2Fhost" or
	// "/%5Chost" is no page of ours, and a proxy or browser that decodes
	// it would see another host.
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || !strings.HasPrefix(u.Path, "/") ||
		strings.HasPrefix(u.Path, "//") || strings.Contains(u.Path, "\\") {
		return errors.New("want a path on this server: no scheme or host, nor // or a backslash once percent-decoded")
	}
	// A dot segment names another page than the one it seems to, and
	// the path the redirect sends is not p as written: see hasDotSegment.
	if hasDotSegment(p) {
		return errors.New(`want a path on this server without "." or ".." segments`)
	}
	return nil
}

// hasDotSegment reports whether p, up to its first "?", has a "." or ".."
// segment (between "/" and "/", "#" or the end), as sent or with "%2e"
// for a dot. LocalPath judges p as sent, but the path followed is
// another: http.Redirect cleans everything before the "?"
// ("/a/../%2F%2Fhost" becomes "/%2F%2Fhost", and so does
// "/x#/../../%2F%2Fhost"), and a browser resolves "%2e%2e" as ".."
// (WHATWG URL). No page of ours has such a segment (docs/security.md T-85).
func hasDotSegment(p string) bool {
	head, _, _ := strings.Cut(p, "?")
	for _, seg := range strings.FieldsFunc(head, func(r rune) bool { return r == '/' || r == '#' }) {
		switch strings.ReplaceAll(strings.ToLower(seg), "%2e", ".") {
		case ".", "..":
			return true
		}
	}
	return false
}

// percentDecoded is p with every "%XX" (two hex digits) decoded once,
// anywhere (path, query, fragment), and anything else as sent: unlike
// url.PathUnescape it never fails, so a stray "%" elsewhere does not hide
// an encoded control character from CheckLocalPath.
func percentDecoded(p string) string {
	if !strings.Contains(p, "%") {
		return p
	}
	b := make([]byte, 0, len(p))
	for i := 0; i < len(p); i++ {
		if p[i] == '%' && i+2 < len(p) && isHex(p[i+1]) && isHex(p[i+2]) {
			v, _ := strconv.ParseUint(p[i+1:i+3], 16, 8)
			b = append(b, byte(v))
			i += 2
			continue
		}
		b = append(b, p[i])
	}
	return string(b)
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func digest(v string) []byte {
	d := sha256.Sum256([]byte(v))
	return d[:]
}

func (s *SignedIn) lookup(r *http.Request) (session, bool) {
	se, ok, _ := s.find(r)
	return se, ok
}

// lookupFailed logs a session read that failed, unless the browser went
// away while it waited: nobody reads that page, and it is no outage
// (docs/security.md F-111).
func (s *SignedIn) lookupFailed(ctx context.Context, err error) {
	if !sts.CallerGone(ctx, err) {
		s.logger.ErrorContext(ctx, "web: session lookup failed", "error", err)
	}
}

// find is the live session r carries, if any. An error is storage that
// could not say (the session may be live): what ends a session must
// not take it for none (docs/security.md T-146).
func (s *SignedIn) find(r *http.Request) (session, bool, error) {
	c, err := r.Cookie(s.CookieName())
	if err != nil || len(c.Value) != 43 {
		return session{}, false, nil
	}
	ctx := r.Context()
	rec, err := s.store.GetWebSessionByDigest(ctx, digest(c.Value))
	if err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			return session{}, false, nil
		}
		s.lookupFailed(ctx, err)
		return session{}, false, err
	}
	now := s.now()
	if !s.live(rec, now) {
		s.end(ctx, rec.ID, "expired")
		return session{}, false, nil
	}
	if !s.accepts(rec.Method) {
		s.end(ctx, rec.ID, "sign-in provider removed or changed")
		return session{}, false, nil
	}
	// GetPrincipal reads storage on every use, also through the record
	// cache (which serves a copy only to CachedPrincipal), so a principal
	// disabled on another replica ends the session at once, before it
	// creates a PAT or approves a consent (docs/security.md A-20).
	p, err := s.store.GetPrincipal(ctx, rec.PrincipalID)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		s.lookupFailed(ctx, err)
		return session{}, false, err
	}
	if err != nil || p.Disabled || p.OrgID != rec.OrgID {
		s.end(ctx, rec.ID, "principal disabled or deleted")
		return session{}, false, nil
	}
	if now.Sub(rec.LastSeenAt) >= touchEvery {
		if err := s.store.TouchWebSession(ctx, rec.ID, storage.Now(now)); err == nil {
			rec.LastSeenAt = storage.Now(now)
		}
	}
	return session{rec: rec, principal: p}, true, nil
}

// live reports whether rec is within its bounds at now: used within the
// idle timeout, and signed in less than the absolute timeout ago, both as
// configured now (storage.WebSession.Ended, by which the refresh grant
// judges a family's session too). The stored expiry is the absolute
// timeout at sign-in; a lowered web.session.absolute_timeout must bound
// the sessions already begun too (docs/security.md A-71).
func (s *SignedIn) live(rec storage.WebSession, now time.Time) bool {
	return rec.Ended(now, s.idle, s.absolute) == ""
}

// oidcMethod is the method of a session begun through upstream provider
// p: "oidc:<id>:<fingerprint>", the fingerprint naming the provider's
// issuer and client. A session is accepted only while a provider with
// that method is configured, so removing the provider, or repointing its
// id at another issuer or client, ends the sessions it began (a provider
// found compromised is removed without waiting for
// web.session.absolute_timeout; docs/security.md A-51).
func oidcMethod(p OIDCProvider) string {
	d := sha256.Sum256([]byte(p.Issuer + "\x00" + p.ClientID))
	return "oidc:" + p.ID + ":" + hex.EncodeToString(d[:8])
}

// MethodAccepted is the rule by which a session of a method may be used
// while providers are configured: any method but an upstream provider's,
// and a provider's only while it is configured as it was at sign-in. A
// session stored as "oidc:<id>", before methods named the issuer and
// client, is refused. The pages judge their sessions by it, and the
// refresh grant and introspection the session a refresh family is bound
// to (tokens.SessionBounds; docs/security.md ).
func MethodAccepted(providers []OIDCProvider) func(method string) bool {
	methods := map[string]bool{}
	for _, p := range providers {
		methods[oidcMethod(p)] = true
	}
	return func(method string) bool {
		return !strings.HasPrefix(method, "oidc:") || methods[method]
	}
}

// methodLabel is how the session list shows a method: an upstream
// provider's id without its fingerprint.
func methodLabel(method string) string {
	if id, ok := strings.CutPrefix(method, "oidc:"); ok {
		id, _, _ = strings.Cut(id, ":")
		return "oidc:" + id
	}
	return method
}

// trim ends p's oldest sessions beyond MaxSessions, never rec, the one
// this sign-in just made. Every sign-in makes a session and none is ended
// but by signing out, a timeout or the person's list, so a script or a
// provider that signs a person in silently made rows without bound, each
// read and drawn by every /tokens and every "End session" after
// (docs/security.md T-208). rec is kept by its id, not by being the
// newest: another replica's clock a little ahead, or this one stepped
// back, leaves it older than the rest. One statement ends them all, one
// log line and one audit event say how many (a backlog from before the
// bound costs one sign-in a statement, not one each). A failure leaves
// the extra ones to the next sign-in or their timeouts: the sign-in
// stands.
func (s *SignedIn) trim(w http.ResponseWriter, r *http.Request, p storage.Principal, rec storage.WebSession) {
	ctx, cancel := storage.Detach(r.Context())
	defer cancel()
	n, err := s.store.TrimWebSessions(ctx, p.ID, rec.ID, MaxSessions)
	if err != nil {
		s.logger.ErrorContext(ctx, "web: ending sessions beyond the bound failed", "principal", p.ID, "error", err)
		return
	}
	if n == 0 {
		return
	}
	s.logger.InfoContext(ctx, "web sessions ended", "principal", p.ID, "ended", n,
		"reason", "more than the sessions a person keeps")
	detail := fmt.Sprintf("%d sessions beyond the %d a person keeps", n, MaxSessions)
	if err := s.store.AppendAudit(ctx, pageCaller(w, r, p.ID).Event(s.now(), p.OrgID, ActionSessionEnd, "principal:"+p.ID, "success", detail)); err != nil {
		s.logger.ErrorContext(ctx, "web: audit append failed", "action", ActionSessionEnd, "error", err)
	}
}

// end deletes session id; an error says the session may still be live.
func (s *SignedIn) end(ctx context.Context, id, reason string) error {
	_, err := s.endFound(ctx, id, reason)
	return err
}

// endFound is end, also saying whether this call deleted the session
// (false: it had ended already).
func (s *SignedIn) endFound(ctx context.Context, id, reason string) (bool, error) {
	dctx, cancel := storage.Detach(ctx)
	defer cancel()
	err := s.store.DeleteWebSession(dctx, id)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		s.logger.ErrorContext(ctx, "web: ending session failed", "session_id", id, "error", err)
		return false, err
	}
	s.logger.InfoContext(ctx, "web session ended", "session_id", id, "reason", reason)
	return err == nil, nil
}

// start signs p in: it ends the session the request came with (if any,
// or fails), stores a new one under a fresh random value and sets the
// cookie. A new value at every sign-in makes session fixation impossible
// (docs/security.md T-82). The session already looked up for the request
// (withLookedUp: POST /login/link reads it before spending the link) is
// the one ended, not read again: a second read failing would fail the
// sign-in after the link was spent (T-146). authAt is when the sign-in
// authenticated p, zero when unknown; it is recorded apart from the
// session's start (docs/security.md T-178).
func (s *SignedIn) start(w http.ResponseWriter, r *http.Request, p storage.Principal, method string, authAt time.Time) error {
	ctx := r.Context()
	var old session
	known, ok := r.Context().Value(lookedUp{}).(*session)
	if ok {
		if known != nil {
			old = *known
		}
		ok = known != nil
	} else {
		var err error
		if old, ok, err = s.find(r); err != nil {
			return err // the old session may be live: it must end first
		}
	}
	// replaced: this sign-in ended the old session itself. One that
	// ended between the read and now (signed out in another tab, ended
	// from the session list, trimmed, or replaced by a sign-in racing in
	// the same browser) ended its lineage's refresh families already.
	replaced := false
	if ok {
		// The old session must end before a new one begins: a copied
		// cookie is worthless after signing in again (T-139), so a
		// failure fails the sign-in, as storing the new one would
		// (T-146).
		var err error
		if replaced, err = s.endFound(ctx, old.rec.ID, "replaced by a new sign-in"); err != nil {
			return err
		}
	}
	value := randomValue()
	now := storage.Now(s.now())
	// The User-Agent is the browser's word and any bytes: held to the
	// audit trail's rule (printable UTF-8, cut on a character), since
	// PostgreSQL refuses invalid UTF-8 and the sign-in would fail for
	// good in that browser (docs/security.md T-132).
	ua := audit.UserAgent(r.UserAgent())
	rec := storage.WebSession{
		ID: storage.NewID(), Digest: digest(value), OrgID: p.OrgID, PrincipalID: p.ID, Method: method,
		UserAgent: ua, CreatedAt: now, LastSeenAt: now, ExpiresAt: now.Add(s.absolute),
	}
	// The same person signing in again over a live session (sudo mode's
	// re-authentication, an application's prompt=login or max_age)
	// continues it, as Keycloak keeps the SSO session across a
	// re-authentication: the new session keeps the old one's lineage, so
	// the refresh families begun in it live on (docs/security.md A-100).
	// Any other sign-in begins a lineage, and a different person signing
	// in over the session ends its families with it. Only the
	// sign-in that ended the old session continues it: the delete is
	// atomic, so a chain has one session at a time and an ended one is
	// never revived.
	rec.Lineage = rec.ID
	if replaced && old.principal.ID == p.ID && old.rec.Lineage != "" {
		rec.Lineage = old.rec.Lineage
		// The lineage keeps its absolute end: a re-authentication
		// inside a Keycloak SSO session does not move SSO Session Max,
		// and a chain of re-sign-ins must not keep a family without
		// offline_access alive past web.session.absolute_timeout
		// (docs/security.md A-103). A timeout lowered since bounds it
		// from the old session's start too.
		rec.ExpiresAt = earliest(rec.ExpiresAt, old.rec.ExpiresAt, old.rec.CreatedAt.Add(s.absolute))
	}
	if !authAt.IsZero() {
		rec.AuthAt = storage.Now(authAt)
	}
	if err := s.store.CreateWebSession(ctx, rec); err != nil {
		return err
	}
	s.trim(w, r, p, rec)
	http.SetCookie(w, &http.Cookie{
		Name: s.CookieName(), Value: value, Path: "/", Secure: s.secure, HttpOnly: true,
		SameSite: http.SameSiteLaxMode, MaxAge: max(1, int(rec.ExpiresAt.Sub(now)/time.Second)),
	})
	s.logger.InfoContext(ctx, "web session started", "session_id", rec.ID, "principal", p.ID, "method", method)
	return nil
}

// earliest is the earliest of ts.
func earliest(ts ...time.Time) time.Time {
	e := ts[0]
	for _, t := range ts[1:] {
		if t.Before(e) {
			e = t
		}
	}
	return e
}

func (s *SignedIn) clearCookie(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{Name: s.CookieName(), Value: "", Path: "/", Secure: s.secure, HttpOnly: true,
		SameSite: http.SameSiteLaxMode, MaxAge: -1})
}

// SignOut ends the session r carries, if any, records it in the audit
// trail (detail says who asked), and clears the cookie. The end-session
// endpoint uses it (internal/authorize.Logout).
//
// An error is a session storage could not end: it is still live, so the
// cookie is kept and nothing is recorded, and the caller says so rather
// than "signed out", which would leave the session to whoever holds a
// copy of the cookie (docs/security.md T-146).
//
// A session storage could not read is an error too, not "no session": it
// may be live.
func (s *SignedIn) SignOut(w http.ResponseWriter, r *http.Request, detail string) (string, bool, error) {
	se, ended, err := s.signOut(w, r, detail)
	if se == nil {
		return "", ended, err
	}
	return se.principal.ID, ended, err
}

// signOut is SignOut, returning the session it ended or could not end
// (nil: none, or one storage could not read).
func (s *SignedIn) signOut(w http.ResponseWriter, r *http.Request, detail string) (*session, bool, error) {
	se, ok, err := s.find(r)
	if err != nil {
		return nil, false, err
	}
	if !ok {
		s.clearCookie(w)
		return nil, false, nil
	}
	if err := s.end(r.Context(), se.rec.ID, detail); err != nil {
		return &se, false, err
	}
	s.clearCookie(w)
	c := pageCaller(w, r, se.principal.ID)
	if err := s.store.AppendAudit(r.Context(), c.Event(s.now(), se.principal.OrgID, ActionSessionEnd, "web_session:"+se.rec.ID, "success", detail)); err != nil {
		s.logger.ErrorContext(r.Context(), "web: audit append failed", "action", ActionSessionEnd, "error", err)
	}
	return &se, true, nil
}
