package app_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	xoauth2 "golang.org/x/oauth2"

	"github.com/opensts/sts/internal/config"
	"github.com/opensts/sts/internal/storage/sqlstore"
	"github.com/opensts/sts/internal/ststest/pgtest"
	"github.com/opensts/sts/internal/web"
)

// TestStateAndNonceCharacters: a state or nonce that is not text (a
// control character: C0, DEL, C1; or bytes that are not UTF-8) is
// refused at /oauth2/authorize with the same page whether or not someone
// is signed in, and for prompt=none too. Such a request used to be
// served to whoever was signed in, while for nobody signed in it went to
// sign in with a return_to the sign-in refuses (a control character,
// docs/security.md T-85), so the person landed on /tokens and the
// client never heard back; a nonce not UTF-8 failed to be stored with
// the code on PostgreSQL (docs/security.md T-133). Any other state or
// nonce, printable ASCII or not, comes back from the sign-in as it went.
func TestStateAndNonceCharacters(t *testing.T) {
	t.Parallel()
	e := newCodeEnv(t)
	e.signIn(t, e.user)
	anon := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	back := e.callback.URL + "/cb"
	request := func(edit func(url.Values)) string {
		v := url.Values{"client_id": {e.conf.ID}, "redirect_uri": {back}, "response_type": {"code"}, "scope": {"openid"},
			"state": {"s"}, "nonce": {"n"}, "code_challenge": {"E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"}, "code_challenge_method": {"S256"}}
		edit(v)
		return e.base + "/oauth2/authorize?" + v.Encode()
	}
	for name, edit := range map[string]func(url.Values){
		"a state with a tab":                func(v url.Values) { v.Set("state", "x\ty") },
		"a state with a line break":         func(v url.Values) { v.Set("state", "x\ny") },
		"a state with DEL":                  func(v url.Values) { v.Set("state", "x\x7fy") },
		"a state with a C1 control (NEL)":   func(v url.Values) { v.Set("state", "x\u0085y") },
		"a state not UTF-8":                 func(v url.Values) { v.Set("state", "x\xffy") },
		"a state repeated, one bad":         func(v url.Values) { v["state"] = []string{"s", "x\ny"} },
		"a nonce with a line break":         func(v url.Values) { v.Set("nonce", "a\nb") },
		"a nonce with NUL":                  func(v url.Values) { v.Set("nonce", "a\x00b") },
		"a nonce with a C1 control (NEL)":   func(v url.Values) { v.Set("nonce", "a\u0085b") },
		"a nonce not UTF-8":                 func(v url.Values) { v.Set("nonce", "n\xff") },
		"a nonce cut inside a character":    func(v url.Values) { v.Set("nonce", "caf\xc3") },
		"a silent request with a bad nonce": func(v url.Values) { v.Set("nonce", "a\nb"); v.Set("prompt", "none") },
	} {
		for who, c := range map[string]*http.Client{"signed in": e.browser, "nobody signed in": anon} {
			resp, page := mustGet(t, c, request(edit))
			if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" ||
				!strings.Contains(page, "The request&#39;s") {
				t.Errorf("%s, %s: %d to %q, want the 400 page", name, who, resp.StatusCode, resp.Header.Get("Location"))
			}
		}
	}
	// What is fine is not refused, and nobody signed in is sent to sign
	// in with a return_to the sign-in follows, which carries the state
	// and nonce intact.
	for name, edit := range map[string]func(url.Values){
		"every printable ASCII character in the state": func(v url.Values) { v.Set("state", " !\"#$%&'()*+,-./09:;<=>?@AZ[\\]^_`az{|}~") },
		"a state not ASCII":                            func(v url.Values) { v.Set("state", "café") },
		"a UTF-8 return path as the state":             func(v url.Values) { v.Set("state", "/dokumente/übersicht") },
		"a JSON state":                                 func(v url.Values) { v.Set("state", `{"returnTo":"/a b?c=d&e=%2F","n":1}`) },
		"a URL-encoded state with a line break":        func(v url.Values) { v.Set("state", url.QueryEscape("{\"x\":\"a\nb\"}")) },
		"a nonce not ASCII":                            func(v url.Values) { v.Set("nonce", "café ☕") },
	} {
		u := request(edit)
		sent, _ := url.Parse(u)
		resp, _ := mustGet(t, anon, u)
		loc, err := url.Parse(resp.Header.Get("Location"))
		if resp.StatusCode != http.StatusFound || err != nil {
			t.Errorf("%s, nobody signed in: %d to %q, want the sign-in", name, resp.StatusCode, resp.Header.Get("Location"))
			continue
		}
		rt := loc.Query().Get("return_to")
		if web.CheckLocalPath(rt) != nil || !strings.HasPrefix(rt, "/oauth2/authorize?") {
			t.Errorf("%s: return_to %q is not followed after the sign-in: %v", name, rt, web.CheckLocalPath(rt))
			continue
		}
		after, _ := url.Parse(rt)
		for _, p := range []string{"state", "nonce"} {
			if got, want := after.Query().Get(p), sent.Query().Get(p); got != want {
				t.Errorf("%s: the %s after the sign-in is %q, want %q", name, p, got, want)
			}
		}
	}
}

// TestStateAndNonceNotASCIIComeBack: a state and a nonce that are UTF-8
// text but not ASCII are served on SQLite and PostgreSQL: the state comes
// back with the code, the nonce in the ID token (docs/security.md T-133).
func TestStateAndNonceNotASCIIComeBack(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"SQLite", "PostgreSQL"} {
		t.Run(name, func(t *testing.T) {
			var edits []func(*config.Config)
			if name == "PostgreSQL" {
				dsn := pgtest.DSN(t)
				edits = append(edits, func(c *config.Config) {
					c.Storage.Type, c.Storage.DSN = sqlstore.DriverPostgres, dsn
					c.Issuer, c.IssuerDerived = "http://"+c.Listen, false // required on PostgreSQL (F-32)
				})
			}
			e := newCodeEnv(t, edits...)
			ctx := t.Context()
			e.signIn(t, e.user)
			conf := e.oauthConfig(e.conf, e.secret, e.callback.URL+"/cb")
			verifier, state, nonce := xoauth2.GenerateVerifier(), "/dokumente/übersicht", "café ☕"
			_, page := mustGet(t, e.browser, conf.AuthCodeURL(state, xoauth2.S256ChallengeOption(verifier), oidc.Nonce(nonce)))
			form := consentForm(t, page)
			form.Set("sts_consent_decision", "approve")
			resp, body := e.post(t, "/oauth2/authorize", form, nil)
			tok, err := conf.Exchange(ctx, e.codeFrom(t, resp, body, state), xoauth2.VerifierOption(verifier))
			if err != nil {
				t.Fatal(err)
			}
			provider, err := oidc.NewProvider(ctx, e.base)
			if err != nil {
				t.Fatal(err)
			}
			raw, _ := tok.Extra("id_token").(string)
			idt, err := provider.Verifier(&oidc.Config{ClientID: e.conf.ID}).Verify(ctx, raw)
			if err != nil || idt.Nonce != nonce {
				t.Fatalf("ID token %v, %v; want nonce %q", idt, err, nonce)
			}
		})
	}
}
