package app_test

import (
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	xoauth2 "golang.org/x/oauth2"

	"github.com/opensts/sts/internal/storage"
)

// postAuthorize sends an authorization request as a form POST to
// /oauth2/authorize, as an auto-submitting form on the relying party's
// page does (another site: Sec-Fetch-Site cross-site, its Origin), wants
// it answered 303 See Other to the GET of the same request on sts (a 307
// or 308 would have the browser POST again, an absolute address could
// leave sts), and follows the answer like a browser while it stays on
// sts; it returns the first answer that leaves sts or is a page.
func (e *codeEnv) postAuthorize(t *testing.T, form url.Values) (*http.Response, string) {
	t.Helper()
	resp, body := e.post(t, "/oauth2/authorize", form, map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": "https://rp.example"})
	loc, err := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusSeeOther || err != nil || loc.IsAbs() || loc.Host != "" || loc.Path != "/oauth2/authorize" {
		t.Fatalf("POST /oauth2/authorize = %d to %q, want 303 to the GET of the request on sts", resp.StatusCode, resp.Header.Get("Location"))
	}
	if got := loc.Query(); got.Encode() != form.Encode() {
		t.Fatalf("POST /oauth2/authorize sent on to %q, want the same parameters %q", got.Encode(), form.Encode())
	}
	for range 5 {
		loc := resp.Header.Get("Location")
		if resp.StatusCode/100 != 3 || !strings.HasPrefix(loc, "/") && !strings.HasPrefix(loc, e.base+"/") {
			return resp, body
		}
		if strings.HasPrefix(loc, "/") {
			loc = e.base + loc
		}
		resp, body = mustGet(t, e.browser, loc)
	}
	t.Fatalf("POST /oauth2/authorize: too many redirects within sts")
	return nil, ""
}

// authParams is conf's authorization request as form fields.
func authParams(t *testing.T, conf *xoauth2.Config, opts ...xoauth2.AuthCodeOption) url.Values {
	t.Helper()
	u, err := url.Parse(conf.AuthCodeURL(randText(t), opts...))
	if err != nil {
		t.Fatal(err)
	}
	return u.Query()
}

// TestAuthorizationRequestByPost: OIDC Core §3.1.2.1 has the
// authorization endpoint take the request by POST (form-encoded) as well
// as by GET. A POST that carries the request's parameters and none of the
// consent form's own fields (sts_consent_csrf, sts_consent_decision) is
// answered as the GET with those parameters, wherever it comes from: the
// sign-in, the consent screen, or at once with remembered consent; it
// never decides anything itself. The consent form's own POST keeps its anti-CSRF value and its
// same-origin rule, so a cross-site POST approves nothing
// (docs/security.md T-153).
func TestAuthorizationRequestByPost(t *testing.T) {
	t.Parallel()
	e := newCodeEnv(t)
	ctx := t.Context()
	conf := e.oauthConfig(e.conf, e.secret, e.callback.URL+"/cb")
	provider, err := oidc.NewProvider(ctx, e.base)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("NobodySignedInSignsInAndComesBack", func(t *testing.T) {
		form := authParams(t, conf, xoauth2.S256ChallengeOption(xoauth2.GenerateVerifier()), oidc.Nonce(randText(t)))
		resp, body := e.postAuthorize(t, form)
		loc, _ := url.Parse(resp.Header.Get("Location"))
		if resp.StatusCode != http.StatusFound || !strings.HasSuffix(loc.Path, "/login") {
			t.Fatalf("POST signed out = %d %q to %q, want the sign-in page", resp.StatusCode, body, loc)
		}
		back, err := url.Parse(loc.Query().Get("return_to"))
		if err != nil || back.Path != "/oauth2/authorize" {
			t.Fatalf("return_to = %q, want the authorization request", loc.Query().Get("return_to"))
		}
		for _, k := range []string{"client_id", "redirect_uri", "state", "nonce", "code_challenge", "scope"} {
			if back.Query().Get(k) != form.Get(k) {
				t.Errorf("return_to %s = %q, want %q", k, back.Query().Get(k), form.Get(k))
			}
		}
	})

	e.signIn(t, e.user)
	verifier, nonce := xoauth2.GenerateVerifier(), randText(t)
	form := authParams(t, conf, xoauth2.S256ChallengeOption(verifier), oidc.Nonce(nonce))

	// RFC 6749 §3.1: parameters the endpoint does not know are ignored.
	// A relying party's framework may add its own hidden csrf field (or
	// any other) to the form it posts; the consent form's fields are
	// namespaced (sts_consent_*), so such a POST is still the request.
	// A consent form rendered before the fields were namespaced (csrf,
	// decision) is one too: it shows the screen again and decides nothing.
	t.Run("RelyingPartyFieldsAreIgnored", func(t *testing.T) {
		f := url.Values{}
		for k, v := range form {
			f[k] = v
		}
		f.Set("csrf", "rp-framework-token")
		f.Set("decision", "approve")
		resp, page := e.postAuthorize(t, f)
		if resp.StatusCode != http.StatusOK || !strings.Contains(page, "Allow") {
			t.Fatalf("POST with the relying party's csrf and decision fields = %d %.80q, want the consent screen", resp.StatusCode, page)
		}
		old := url.Values{}
		for k, v := range consentForm(t, page) {
			old[strings.TrimPrefix(k, "sts_consent_")] = v
		}
		old.Set("decision", "approve")
		if resp, page := e.post(t, "/oauth2/authorize", old, nil); resp.StatusCode != http.StatusSeeOther {
			t.Errorf("same-origin consent form with the old field names = %d %q %.80q, want 303 to the request", resp.StatusCode, resp.Header.Get("Location"), page)
		}
		if _, err := e.store.GetConsent(ctx, e.user.ID, e.conf.ID); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("consent after a POST with the relying party's fields: %v, want none", err)
		}
	})

	// The consent decision is refused from another site: without an
	// anti-CSRF value, and with a valid one, which only the cross-origin
	// check refuses (docs/security.md T-94, T-153).
	t.Run("CrossSiteWithADecisionApprovesNothing", func(t *testing.T) {
		_, page := e.postAuthorize(t, form)
		valid := consentForm(t, page)
		noCSRF := url.Values{}
		for k, v := range form {
			noCSRF[k] = v
		}
		for _, tc := range []struct {
			name string
			form url.Values
		}{
			{"the request with a decision", noCSRF},
			{"the consent screen's own form", valid},
		} {
			t.Run(tc.name, func(t *testing.T) {
				tc.form.Set("sts_consent_decision", "approve")
				resp, body := e.post(t, "/oauth2/authorize", tc.form, map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": "https://rp.example"})
				if resp.StatusCode != http.StatusForbidden || resp.Header.Get("Location") != "" || !strings.Contains(body, "cross-origin") {
					t.Errorf("cross-site decision = %d %q (to %q), want 403 from the cross-origin check", resp.StatusCode, body, resp.Header.Get("Location"))
				}
				if _, err := e.store.GetConsent(ctx, e.user.ID, e.conf.ID); !errors.Is(err, storage.ErrNotFound) {
					t.Errorf("consent after a cross-site decision: %v, want none", err)
				}
			})
		}
	})

	t.Run("ConsentScreenThenCode", func(t *testing.T) {
		resp, page := e.postAuthorize(t, form)
		if resp.StatusCode != http.StatusOK || !strings.Contains(page, "Allow") {
			t.Fatalf("POST signed in = %d %q, want the consent screen", resp.StatusCode, page)
		}
		// Showing the screen decided nothing.
		if _, err := e.store.GetConsent(ctx, e.user.ID, e.conf.ID); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("consent after the POST request alone: %v, want none", err)
		}
		// The person allows on the screen (same origin).
		cf := consentForm(t, page)
		cf.Set("sts_consent_decision", "approve")
		resp, body := e.post(t, "/oauth2/authorize", cf, nil)
		code := e.codeFrom(t, resp, body, form.Get("state"))
		tok, err := conf.Exchange(ctx, code, xoauth2.VerifierOption(verifier))
		if err != nil {
			t.Fatalf("x/oauth2 Exchange: %v", err)
		}
		raw, _ := tok.Extra("id_token").(string)
		idt, err := provider.Verifier(&oidc.Config{ClientID: e.conf.ID}).Verify(ctx, raw)
		if err != nil || idt.Nonce != nonce || idt.Subject != e.user.ID {
			t.Fatalf("go-oidc Verify = %+v, %v; want nonce %q sub %q", idt, err, nonce, e.user.ID)
		}
	})

	t.Run("RememberedConsentSilent", func(t *testing.T) {
		v := xoauth2.GenerateVerifier()
		f := authParams(t, conf, xoauth2.S256ChallengeOption(v), oidc.Nonce(randText(t)), xoauth2.SetAuthURLParam("prompt", "none"))
		resp, body := e.postAuthorize(t, f)
		code := e.codeFrom(t, resp, body, f.Get("state"))
		if tok, err := conf.Exchange(ctx, code, xoauth2.VerifierOption(v)); err != nil || tok.AccessToken == "" {
			t.Fatalf("Exchange of the POST request's code = %+v, %v", tok, err)
		}
	})

	// A request too large to send on as a URL is a clear page, not a
	// redirect the browser's GET would meet with the server's bare 431
	// (docs/security.md T-153).
	t.Run("OversizedRequestIsAPage", func(t *testing.T) {
		xsite := map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": "https://rp.example"}
		for _, tc := range []struct {
			name, extra string
		}{
			// 60,000 bytes as a browser may send them, unencoded, which
			// percent-encoding triples in the URL.
			{"non-ASCII", "&pad=" + strings.Repeat("\u00e9", 30000)},
			{"ASCII", "&login_hint=" + strings.Repeat("a", 50000)},
			{"just over the cap", "&login_hint=" + strings.Repeat("a", 8<<10)},
		} {
			t.Run(tc.name, func(t *testing.T) {
				body := authParams(t, conf, xoauth2.S256ChallengeOption(xoauth2.GenerateVerifier()), oidc.Nonce(randText(t))).Encode() + tc.extra
				req, _ := http.NewRequest(http.MethodPost, e.base+"/oauth2/authorize", strings.NewReader(body))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				for k, v := range xsite {
					req.Header.Set(k, v)
				}
				resp, err := e.browser.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				page, _ := io.ReadAll(resp.Body)
				if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" || !strings.Contains(string(page), "too large") {
					t.Errorf("POST of a %d-byte request = %d to a %d-byte Location %.80q, want a 400 page saying it is too large",
						len(body), resp.StatusCode, len(resp.Header.Get("Location")), page)
				}
			})
		}
		// A large request under the cap is still sent on.
		f := authParams(t, conf, xoauth2.S256ChallengeOption(xoauth2.GenerateVerifier()), oidc.Nonce(randText(t)))
		f.Set("login_hint", strings.Repeat("a", 6<<10))
		resp, body := e.postAuthorize(t, f)
		if loc, _ := url.Parse(resp.Header.Get("Location")); resp.StatusCode != http.StatusFound || loc.Query().Get("code") == "" {
			t.Errorf("POST of a %d-byte request = %d %.80q to %q, want a code (consent is remembered)", len(f.Encode()), resp.StatusCode, body, loc)
		}
	})

	t.Run("ErrorsGoToTheClient", func(t *testing.T) {
		f := authParams(t, conf, xoauth2.S256ChallengeOption(xoauth2.GenerateVerifier()), xoauth2.SetAuthURLParam("request_uri", "https://rp.example/r"))
		resp, _ := e.postAuthorize(t, f)
		loc, _ := url.Parse(resp.Header.Get("Location"))
		if resp.StatusCode != http.StatusFound || !strings.HasPrefix(loc.String(), e.callback.URL) ||
			loc.Query().Get("error") != "request_uri_not_supported" || loc.Query().Get("state") != f.Get("state") {
			t.Errorf("POST with request_uri = %d to %q, want request_uri_not_supported with the state", resp.StatusCode, loc)
		}
	})
}
