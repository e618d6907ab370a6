package web_test

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"testing"

	"github.com/chromedp/chromedp"
	xoauth2 "golang.org/x/oauth2"
)

// spaScript is what a single-page application runs on its redirect URI:
// discovery, the JWKS, the code redeemed at the token endpoint (a simple
// request), UserInfo with the access token in Authorization (preflighted),
// revocation, and introspection, which answers no browser. Each step
// records the status it could read, or the fetch error a browser raises
// for an answer its origin may not read.
const spaScript = `(async ({client, verifier, redirect, token}) => {
	const out = {};
	const step = async (name, f) => { try { out[name] = await f(); } catch (e) { out[name] = "blocked: " + e; } };
	let meta = {};
	await step("discovery", async () => { const r = await fetch(%q); meta = await r.json(); return r.status; });
	await step("jwks", async () => { const r = await fetch(meta.jwks_uri); return (await r.json()).keys.length > 0 ? r.status : "no keys"; });
	const code = new URLSearchParams(location.search).get("code");
	let at = token;
	if (code) {
		await step("token", async () => {
			const r = await fetch(meta.token_endpoint, {method: "POST", headers: {"Content-Type": "application/x-www-form-urlencoded"},
				body: new URLSearchParams({grant_type: "authorization_code", client_id: client, code, redirect_uri: redirect, code_verifier: verifier})});
			const b = await r.json(); at = b.access_token; out.access_token = at; return r.status;
		});
	}
	await step("userinfo", async () => { const r = await fetch(meta.userinfo_endpoint, {headers: {Authorization: "Bearer " + at}}); return r.status; });
	await step("revoke", async () => {
		const r = await fetch(meta.revocation_endpoint, {method: "POST", headers: {"Content-Type": "application/x-www-form-urlencoded"},
			body: new URLSearchParams({client_id: client, token: "not-a-token"})});
		return r.status;
	});
	await step("introspect", async () => {
		const r = await fetch(meta.introspection_endpoint, {method: "POST", headers: {"Content-Type": "application/x-www-form-urlencoded"},
			body: new URLSearchParams({token: at})});
		return r.status;
	});
	return JSON.stringify(out);
})`

// TestBrowserSPA: a single-page application served from
// http://localhost:PORT, registered as a public client with its redirect
// URI there, signs a person in to sts (http://127.0.0.1:…) in a real
// chromium and, with fetch() from its page, reads discovery and the JWKS,
// redeems the code with PKCE, calls UserInfo and revocation; introspection
// stays unreadable. The same page at http://127.0.0.1:PORT, an origin no
// client registered, still reads discovery but nothing a client endpoint
// answers (docs/api.md, "Cross-origin requests"; docs/security.md T-110).
func TestBrowserSPA(t *testing.T) {
	s := startServer(t)
	spa := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/cb" {
			http.NotFound(w, r)
			return
		}
		io.WriteString(w, "<!doctype html><title>SPA</title><h1>SPA</h1>")
	}))
	t.Cleanup(spa.Close)
	_, port, _ := net.SplitHostPort(spa.Listener.Addr().String())
	home := "http://localhost:" + port
	redirect := home + "/cb"
	sa := s.sts(t, "principal", "create", "--org", "default", "--kind", "service-account", "--name", "spa")
	out := s.sts(t, "client", "create", "--org", "default", "--principal", sa, "--name", "SPA", "--public",
		"--redirect-uri", redirect, "--audience", s.URL, "--scope", "openid")
	id := regexp.MustCompile(`^(\S+)$`).FindStringSubmatch(out) // a public client: the ID alone
	if id == nil {
		t.Fatalf("client create printed %q", out)
	}
	conf := &xoauth2.Config{ClientID: id[1], RedirectURL: redirect, Scopes: []string{"openid"},
		Endpoint: xoauth2.Endpoint{AuthURL: s.URL + "/oauth2/authorize", TokenURL: s.URL + "/oauth2/token"}}
	verifier := xoauth2.GenerateVerifier()

	ctx := browser(t)
	do(t, ctx, "sign in to sts", chromedp.Navigate(s.loginLink(t, "admin")), chromedp.WaitVisible(heading("Access Tokens")))
	do(t, ctx, "consent screen", chromedp.Navigate(conf.AuthCodeURL("st", xoauth2.S256ChallengeOption(verifier))), chromedp.WaitVisible(button("Allow")))
	do(t, ctx, "allow", chromedp.Click(button("Allow")), chromedp.WaitVisible(heading("SPA")))

	script := func(token string) string {
		args, _ := json.Marshal(map[string]string{"client": id[1], "verifier": verifier, "redirect": redirect, "token": token})
		return regexp.MustCompile(`%q`).ReplaceAllLiteralString(spaScript, strconv.Quote(s.URL+"/.well-known/openid-configuration")) + "(" + string(args) + ")"
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(run(t, ctx, "the application's fetches", chromedp.Evaluate[string](script(""), chromedp.EvalAwaitPromise))), &got); err != nil {
		t.Fatal(err)
	}
	for step, want := range map[string]float64{"discovery": 200, "jwks": 200, "token": 200, "userinfo": 200} {
		if got[step] != want {
			t.Errorf("from its registered origin %s, %s = %v, want %v readable", home, step, got[step], want)
		}
	}
	// Revocation answers the public client readably, whatever it says.
	if _, ok := got["revoke"].(float64); !ok {
		t.Errorf("revocation from its registered origin = %v, want a readable answer", got["revoke"])
	}
	if s, ok := got["introspect"].(string); !ok || s[:8] != "blocked:" {
		t.Errorf("introspection from a browser = %v, want blocked (no CORS)", got["introspect"])
	}
	at, _ := got["access_token"].(string)
	if at == "" {
		t.Fatalf("no access token: %v", got)
	}

	// The same page on an origin no client registered.
	other := "http://127.0.0.1:" + port + "/cb"
	do(t, ctx, "the page on another origin", chromedp.Navigate(other), chromedp.WaitVisible(heading("SPA")))
	if err := json.Unmarshal([]byte(run(t, ctx, "fetches from another origin", chromedp.Evaluate[string](script(at), chromedp.EvalAwaitPromise))), &got); err != nil {
		t.Fatal(err)
	}
	if got["discovery"] != 200.0 || got["jwks"] != 200.0 {
		t.Errorf("discovery from another origin = %v, jwks %v, want both readable", got["discovery"], got["jwks"])
	}
	for _, step := range []string{"userinfo", "revoke", "introspect"} {
		if s, ok := got[step].(string); !ok || s[:8] != "blocked:" {
			t.Errorf("%s from an origin no client registered = %v, want blocked", step, got[step])
		}
	}
}
