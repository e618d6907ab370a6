package web_test

import (
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestBrowserBehindTLSProxy: sts served over plain http behind a proxy
// that ends TLS (the https issuer is the proxy's URL), as
// docs/configuration.md (tls) describes. A person signs in with a
// one-time link in chromium and creates a token; the session cookie the
// browser is given is __Host- and Secure, the browser sends it back, and
// every answer through the proxy, its refusals included, carries
// Strict-Transport-Security.
func TestBrowserBehindTLSProxy(t *testing.T) {
	front := httptest.NewUnstartedServer(nil)
	front.StartTLS()
	t.Cleanup(front.Close)
	s := startServer(t, "issuer: "+front.URL+"\n")
	back, _ := url.Parse("http://" + s.Addr)
	var mu sync.Mutex
	var setCookies, sentCookies []string
	var noHSTS []string
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(back)
			pr.Out.Host = pr.In.Host
			pr.SetXForwarded()
			mu.Lock()
			sentCookies = append(sentCookies, pr.In.Header.Values("Cookie")...)
			mu.Unlock()
		},
		ModifyResponse: func(resp *http.Response) error {
			mu.Lock()
			defer mu.Unlock()
			setCookies = append(setCookies, resp.Header.Values("Set-Cookie")...)
			if resp.Header.Get("Strict-Transport-Security") == "" {
				noHSTS = append(noHSTS, resp.Request.Method+" "+resp.Request.URL.Path+" "+resp.Status)
			}
			return nil
		},
	}
	front.Config.Handler = rp

	ctx := browser(t, chromedp.Flag("ignore-certificate-errors", true))
	do(t, ctx, "sign in through the proxy", chromedp.Navigate(s.loginLink(t, "admin")), chromedp.WaitVisible(heading("Access Tokens")))
	do(t, ctx, "create", chromedp.SendKeys(byLabel("Token name"), "behind a proxy"),
		chromedp.Click(button("Create access token")), chromedp.WaitVisible(byLabel("Your new access token")))
	do(t, ctx, "a page that is not there", chromedp.Navigate(front.URL+"/tokens-nope"))

	mu.Lock()
	defer mu.Unlock()
	var session string
	for _, c := range setCookies {
		if strings.HasPrefix(c, "__Host-sts_session=") {
			session = c
		}
		if strings.HasPrefix(c, "sts_session=") {
			t.Errorf("behind an https issuer the session cookie has no __Host- prefix: %q", c)
		}
	}
	if session == "" || !strings.Contains(session, "; Secure") || !strings.Contains(session, "; HttpOnly") {
		t.Fatalf("session cookie %q, want __Host-sts_session, Secure, HttpOnly (all Set-Cookie: %q)", session, setCookies)
	}
	if !strings.Contains(strings.Join(sentCookies, "; "), "__Host-sts_session=") {
		t.Errorf("chromium never sent the session cookie back through the proxy: %q", sentCookies)
	}
	if len(noHSTS) > 0 {
		t.Errorf("answers through the https proxy without Strict-Transport-Security: %q", noHSTS)
	}
}
