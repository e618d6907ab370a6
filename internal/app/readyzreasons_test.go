package app_test

import (
	"github.com/opensts/sts/internal/config"

	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestReadyzShowsFixedReasonsOnly (docs/security.md F-103): /readyz
// answers anyone, so a failing check names a fixed reason and the detail
// goes to the log under the check's name. Before, every check but
// token_endpoints showed its error, stripped only of what a list of
// patterns recognised: an organization the file's pool names
// (trust_config) and a database host name without a dot (storage) were
// shown to an unauthenticated caller.
func TestReadyzShowsFixedReasonsOnly(t *testing.T) {
	for _, tc := range []struct {
		name, check, secret string
		change              func(t *testing.T, cfg *config.Config)
	}{
		{"a pool's organization", "trust_config", "orgzzsecret", func(t *testing.T, cfg *config.Config) {
			p := examplePools()
			cfg.Organizations = nil
			cfg.Pools = p.Pools
			cfg.Pools[0].Organization = "orgzzsecret"
			onPostgres(t, cfg)
		}},
		{"the database's host", "storage", "dbzzsecret", func(t *testing.T, cfg *config.Config) {
			onPostgres(t, cfg)
			cfg.Storage.DSN = "postgres://sts@dbzzsecret:5432/sts?connect_timeout=1"
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(t)
			tc.change(t, &cfg)
			cfg.Derive()
			if err := cfg.Validate(); err != nil {
				t.Fatal(err)
			}
			logs := &logBuffer{}
			runApp(t, cfg, logs)
			base := "http://" + cfg.Listen
			client := &http.Client{Timeout: 5 * time.Second}
			var body string
			for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
				code, failing := readyzBody(t, client, base)
				if code != http.StatusServiceUnavailable {
					t.Fatalf("/readyz = %d %v, want 503", code, failing)
				}
				if failing[tc.check] != "" && failing[tc.check] != "waiting for storage" {
					resp, err := client.Get(base + "/readyz")
					if err != nil {
						t.Fatal(err)
					}
					b, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					body = string(b)
					break
				}
			}
			if body == "" {
				t.Fatalf("/readyz never named %s's failure (log:\n%s)", tc.check, logs)
			}
			if strings.Contains(body, tc.secret) {
				t.Errorf("/readyz shows the configuration's %q: %s", tc.secret, body)
			}
			if !strings.Contains(logs.String(), tc.secret) || !strings.Contains(logs.String(), "check="+tc.check) {
				t.Errorf("the log does not name the check %s with its detail %q:\n%s", tc.check, tc.secret, logs)
			}
		})
	}
}
