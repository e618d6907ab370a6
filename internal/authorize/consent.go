package authorize

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/opensts/sts/internal/secret"
	"github.com/opensts/sts/internal/storage"
)

// headers are the security headers of every answer (docs/security.md
// T-94): no script at all, no framing, no caching, no referrer. formTo is
// the origin the consent form's answer redirects to, which form-action
// must admit (browsers apply it to the redirect after a submission); ""
// admits only this server.
func headers(w http.ResponseWriter, formTo string) {
	h := w.Header()
	// The page's only subresource is the web pages' stylesheet.
	csp := "default-src 'none'; style-src 'self'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
	if formTo != "" {
		csp += " " + formTo
	}
	h.Set("Content-Security-Policy", csp)
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
}

func (h *Handler) page(w http.ResponseWriter, pe *pageError) {
	headers(w, "")
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(pe.status)
	_ = pages.ExecuteTemplate(w, "error.html", struct{ Message string }{pe.msg})
}

type field struct{ Name, Value string }
type scopeView struct{ Name, Description string }

// scopeDescriptions explain the scopes OpenID Connect defines; any other
// scope is shown by its name.
var scopeDescriptions = map[string]string{
	"openid":         "confirm who you are (an ID token)",
	"email":          "your email address",
	"profile":        "your name",
	"offline_access": "keep access while you are away (a refresh token)",
}

func (h *Handler) consent(w http.ResponseWriter, pid string, p storage.Principal, q *request, now time.Time) {
	v := q.values()
	v.Set(csrfField, h.csrf(pid, q, now))
	hidden := make([]field, 0, len(v))
	for _, k := range []string{"client_id", "redirect_uri", "response_type", "scope", "state", "nonce", "code_challenge", "code_challenge_method", "prompt", "max_age", "id_token_hint", csrfField} {
		if val := v.Get(k); val != "" {
			hidden = append(hidden, field{k, val})
		}
	}
	for _, r := range v["resource"] {
		hidden = append(hidden, field{"resource", r})
	}
	scopes := make([]scopeView, 0, len(q.scopes))
	for _, s := range q.scopes {
		scopes = append(scopes, scopeView{s, scopeDescriptions[s]})
	}
	name := q.client.Name
	if name == "" {
		name = q.client.ID
	}
	who := p.Name
	if p.Email != "" {
		who += " <" + p.Email + ">"
	}
	if strings.TrimSpace(who) == "" {
		who = p.ID
	}
	headers(w, origin(q.redirectURI))
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_ = pages.ExecuteTemplate(w, "consent.html", struct {
		ClientName, ClientID, Principal, RedirectURI, Action, Decision string
		Scopes                                                         []scopeView
		Hidden                                                         []field
	}{name, q.client.ID, who, q.redirectURI, Path, decisionField, scopes, hidden})
}

// origin is the form-action source of a registered redirect URI's
// origin, scheme://host[:port], "" for none: the end-session question
// without post_logout_redirect_uri adds no source to form-action.
//
// A source names its host with letters, digits, "-" and "." only (CSP
// Level 3, host-source). An IPv6 literal, such as the loopback address
// [::1] that RFC 8252 §7.3 names for native applications and that sts
// registers, cannot be written there: chromium drops "http://[::1]:8080"
// from the policy, form-action is then 'self' alone, and the redirect
// after Allow or Sign out is stopped, the person left on the page
// (docs/security.md T-145). Such a host is "*", still bound to the
// scheme and port. A private-use scheme's URI (com.example.app:/cb, RFC
// 8252 §7.1) has no host: its source is the scheme, "com.example.app:".
func origin(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" {
		return ""
	}
	if u.Host == "" && u.Scheme != "http" && u.Scheme != "https" {
		return u.Scheme + ":"
	}
	host := u.Hostname()
	if host == "" || strings.ContainsFunc(host, func(r rune) bool {
		return !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '-' || r == '.')
	}) {
		host = "*"
	}
	if p := u.Port(); p != "" {
		host += ":" + p
	}
	return u.Scheme + "://" + host
}

// StrictTransportSecurity is sent with every answer of the endpoints here
// when the issuer is https (docs/security.md T-106), as internal/web sends
// it with the pages: a year, without includeSubDomains.
const StrictTransportSecurity = "max-age=31536000"

// transportSecurity wraps next so that every answer, the sign-in
// redirect and a refused cross-origin form included, carries
// Strict-Transport-Security when issuer is https; next itself when not.
func transportSecurity(issuer string, next http.Handler) http.Handler {
	if u, err := url.Parse(issuer); err != nil || u.Scheme != "https" {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Strict-Transport-Security", StrictTransportSecurity)
		next.ServeHTTP(w, r)
	})
}

// csrf is the consent form's anti-CSRF value: an HMAC over the principal,
// the exact request and the time it was rendered, so it is good for one
// person, one request and ConsentFormLifetime (docs/security.md T-94).
func (h *Handler) csrf(pid string, q *request, now time.Time) string {
	return formValue(secret.SubKey(h.Pepper, "authorize consent form"), pid+"\x00"+q.values().Encode(), now)
}

func (h *Handler) checkCSRF(tok, pid string, q *request, now time.Time) bool {
	return formValueOK(secret.SubKey(h.Pepper, "authorize consent form"), tok, pid+"\x00"+q.values().Encode(), now)
}

// formValue is a rendered form's anti-CSRF value: the time now and an
// HMAC under key over msg and that time.
func formValue(key []byte, msg string, now time.Time) string {
	ts := strconv.FormatInt(now.Unix(), 10)
	return ts + "." + base64.RawURLEncoding.EncodeToString(formMAC(key, msg, ts))
}

func formMAC(key []byte, msg, ts string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(msg + "\x00" + ts))
	return m.Sum(nil)
}

// formValueOK reports whether tok is formValue's answer for key and msg,
// rendered at most ConsentFormLifetime ago.
func formValueOK(key []byte, tok, msg string, now time.Time) bool {
	ts, sig, ok := strings.Cut(tok, ".")
	if !ok {
		return false
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return false
	}
	issued := time.Unix(sec, 0)
	if now.Sub(issued) > ConsentFormLifetime || issued.After(now.Add(time.Minute)) {
		return false
	}
	got, err := base64.RawURLEncoding.DecodeString(sig)
	return err == nil && hmac.Equal(got, formMAC(key, msg, ts))
}
