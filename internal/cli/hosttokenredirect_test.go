package cli_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/opensts/sts/internal/storage"
)

// TestHostTokenSecretsStayWithTheServer: `sts host-token` sends STS_TOKEN,
// and the SCM token it stores, to the --server origin only, as every
// remote command does (docs/security.md T-100, T-161). A server that
// answers with a redirect (a proxy or sign-in gateway in front of the API,
// or whoever controls that answer) is refused with an error that says so:
// neither another port of the same host, which Go's client would send the
// Authorization header on to, nor another host, to which a 307 replays
// the request body with the token in it, receives either secret.
func TestHostTokenSecretsStayWithTheServer(t *testing.T) {
	const pat = "sts_pat_HostTokenCLIMustNotLeaveTheServer0000"
	const scm = "gho_ScmTokenThatMustNotLeaveTheServer"
	var mu sync.Mutex
	var seen []string
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		seen = append(seen, r.Header.Get("Authorization")+" "+string(b))
		mu.Unlock()
		http.Error(w, "no", http.StatusNotFound)
	}))
	t.Cleanup(other.Close)
	tokenFile := filepath.Join(t.TempDir(), "token")
	writeFile(t, tokenFile, scm+"\n")
	setenv(t, "STS_TOKEN", pat)
	setenv(t, "STS_SERVER", "")
	for name, target := range map[string]string{
		"same host, another port": other.URL,
		"another host":            strings.Replace(other.URL, "127.0.0.1", "localhost", 1),
	} {
		t.Run(name, func(t *testing.T) {
			server := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, target+r.URL.Path, http.StatusTemporaryRedirect)
			}))
			t.Cleanup(server.Close)
			for _, args := range [][]string{
				{"host-token", "create", "--server", server.URL, "--runner", storage.NewID(), "--subject", storage.NewID(),
					"--host", "github.com", "--token-file", tokenFile},
				{"host-token", "update", storage.NewID(), "--server", server.URL, "--token-file", tokenFile},
				{"host-token", "list", "--server", server.URL},
			} {
				code, out, errOut := runCLI(t, args...)
				if code == 0 {
					t.Errorf("%s through a redirect succeeded: %q", args[1], out)
				}
				if !strings.Contains(errOut, "redirect") {
					t.Errorf("%s: the error does not say the server redirected: %q", args[1], errOut)
				}
				if strings.Contains(out+errOut, pat) || strings.Contains(out+errOut, scm) {
					t.Errorf("%s printed a secret: %q %q", args[1], out, errOut)
				}
			}
			mu.Lock()
			defer mu.Unlock()
			for _, s := range seen {
				if strings.Contains(s, pat) {
					t.Errorf("the other origin received STS_TOKEN: %q", s)
				}
				if strings.Contains(s, scm) {
					t.Errorf("the other origin received the SCM token: %q", s)
				}
			}
			seen = nil
		})
	}
}
