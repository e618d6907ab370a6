package cli_test

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/opensts/sts/internal/cli"
)

// TestMainEnvGivesServerAndToken: the environment given to cli.MainEnv,
// not the process's, supplies STS_SERVER (the default of --server) and
// STS_TOKEN (the bearer token) of the remote commands, both admin nouns
// and host-token.
func TestMainEnvGivesServerAndToken(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var auth []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		auth = append(auth, r.Header.Get("Authorization"))
		mu.Unlock()
		http.Error(w, "no", http.StatusTeapot)
	}))
	defer srv.Close()
	for _, args := range [][]string{{"org", "list"}, {"host-token", "list"}} {
		var out, errb bytes.Buffer
		code := cli.MainEnv(t.Context(), args, []string{"STS_SERVER=" + srv.URL}, &out, &errb)
		if code != cli.ExitUsage || !strings.Contains(errb.String(), "STS_TOKEN") {
			t.Errorf("sts %v with STS_SERVER and no STS_TOKEN = %d, %q; want a usage error naming STS_TOKEN", args, code, errb.String())
		}
		errb.Reset()
		code = cli.MainEnv(t.Context(), args, []string{"STS_SERVER=" + srv.URL, "STS_TOKEN=env-token"}, &out, &errb)
		if code != cli.ExitFailure {
			t.Errorf("sts %v against a failing server = %d, %q; want %d", args, code, errb.String(), cli.ExitFailure)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(auth) != 2 || auth[0] != "Bearer env-token" || auth[1] != "Bearer env-token" {
		t.Errorf("the server saw Authorization %q; want the given STS_TOKEN once per command", auth)
	}
}
