package cli_test

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/opensts/sts/internal/cli"
)

func runHealthcheck(t *testing.T, url string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := cli.MainEnv(context.Background(), []string{"healthcheck", "--url", url}, environ(t), &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func TestHealthcheck(t *testing.T) {
	t.Parallel()
	status := http.StatusOK
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || r.URL.Path != "/livez" {
			http.Error(w, "unexpected "+r.Method+" "+r.URL.Path, http.StatusNotFound)
			return
		}
		w.WriteHeader(status)
	}))
	defer srv.Close()

	t.Run("200 is healthy", func(t *testing.T) {
		code, stdout, stderr := runHealthcheck(t, srv.URL+"/livez")
		if code != cli.ExitOK || stdout != "" || stderr != "" {
			t.Fatalf("code %d, stdout %q, stderr %q; want 0 and silence", code, stdout, stderr)
		}
	})

	t.Run("503 is unhealthy", func(t *testing.T) {
		status = http.StatusServiceUnavailable
		defer func() { status = http.StatusOK }()
		code, stdout, stderr := runHealthcheck(t, srv.URL+"/livez")
		if code != cli.ExitFailure {
			t.Fatalf("code %d, want %d; stderr %q", code, cli.ExitFailure, stderr)
		}
		if stdout != "" || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, "503") {
			t.Fatalf("stdout %q, stderr %q; want one stderr line naming 503", stdout, stderr)
		}
	})

	t.Run("unreachable is unhealthy", func(t *testing.T) {
		// A port that was just free: nothing listens there.
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		_ = l.Close()
		code, _, stderr := runHealthcheck(t, "http://"+addr+"/livez")
		if code != cli.ExitFailure || strings.Count(stderr, "\n") != 1 {
			t.Fatalf("code %d, stderr %q; want 1 and one line", code, stderr)
		}
	})

	t.Run("default URL is the loopback livez", func(t *testing.T) {
		if cli.DefaultHealthcheckURL != "http://127.0.0.1:8080/livez" {
			t.Fatalf("default URL %q", cli.DefaultHealthcheckURL)
		}
	})
}

// TestHealthcheckUnreadableConfig: without --url, a configuration that
// cannot be loaded fails the check with one line naming the configuration,
// exit 1 (unhealthy, as a container runtime reads it). It probed
// 127.0.0.1:8080 instead, which could be another server's healthy answer,
// or a "connection refused" that said nothing of the configuration.
func TestHealthcheckUnreadableConfig(t *testing.T) {
	t.Parallel()
	bad := t.TempDir() + "/sts.yaml"
	if err := os.WriteFile(bad, []byte("listen: [not, an, address\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	code := cli.MainEnv(context.Background(), []string{"healthcheck", "--config", bad}, environ(t), &stdout, &stderr)
	if code != cli.ExitFailure || stdout.String() != "" || strings.Count(stderr.String(), "\n") != 1 ||
		!strings.Contains(stderr.String(), "config") || strings.Contains(stderr.String(), "8080") {
		t.Fatalf("healthcheck with an unreadable configuration: code %d, stdout %q, stderr %q; "+
			"want %d and one line naming the configuration, no probe of the default URL", code, stdout.String(), stderr.String(), cli.ExitFailure)
	}
}
