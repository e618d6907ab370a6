package cli_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// TestRemoteTokenStaysWithTheServer: with --server, STS_TOKEN goes to that
// server only. A redirect elsewhere (a proxy or sign-in gateway in front
// of the API) is refused with an error that says so, and the other host
// never sees the token (docs/security.md T-100).
func TestRemoteTokenStaysWithTheServer(t *testing.T) {
	t.Parallel()
	const token = "sts_pat_ThisMustNotLeaveTheServer000000000000"
	var mu sync.Mutex
	var seen []string
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Header.Get("Authorization"))
		mu.Unlock()
		http.Error(w, "no", http.StatusNotFound)
	}))
	t.Cleanup(other.Close)
	// The same address under another name is another host to the client.
	elsewhere := strings.Replace(other.URL, "127.0.0.1", "localhost", 1)
	server := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, elsewhere+r.URL.Path, http.StatusTemporaryRedirect)
	}))
	t.Cleanup(server.Close)
	setenv(t, "STS_TOKEN", token)
	setenv(t, "STS_SERVER", "")
	code, out, errOut := runCLI(t, "org", "list", "--server", server.URL)
	if code == 0 {
		t.Fatalf("org list through a redirect elsewhere succeeded: %q", out)
	}
	if !strings.Contains(errOut, "redirect") {
		t.Errorf("the error does not say the server redirected: %q", errOut)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, h := range seen {
		if strings.Contains(h, token) {
			t.Fatalf("the other host received STS_TOKEN: %q", h)
		}
	}
	if strings.Contains(out+errOut, token) {
		t.Error("the token was printed")
	}
}
