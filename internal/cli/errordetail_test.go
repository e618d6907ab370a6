package cli_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/opensts/sts/internal/oauth2"
)

// TestServeErrorDetail: by default a refused token request says what
// OAuth says (error, error_description) and not our stable reason, which
// stays in the metrics; errors.detail: reason puts it in the body too.
func TestServeErrorDetail(t *testing.T) {
	t.Parallel()
	refuse := func(t *testing.T, r *run) map[string]any {
		t.Helper()
		resp, err := http.PostForm(r.base+"/oauth2/token", url.Values{
			"grant_type": {oauth2.GrantTypeTokenExchange}, "subject_token": {"not-a-jwt"},
			"subject_token_type": {oauth2.TokenTypeJWT},
		})
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&m); err != nil || resp.StatusCode != 400 || m["error"] == nil {
			t.Fatalf("refused exchange = %d %v (%v), want 400 with an OAuth error", resp.StatusCode, m, err)
		}
		return m
	}
	t.Run("default none", func(t *testing.T) {
		r := serve(t, "--data-dir", t.TempDir())
		checkServing(t, r)
		if m := refuse(t, r); m["reason"] != nil {
			t.Errorf("refusal body %v carries the reason; want none by default", m)
		}
		resp, err := http.Get(r.base + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(b), `sts_token_requests_total{dialect="oauth2",grant="urn:ietf:params:oauth:grant-type:token-exchange",outcome="refused",reason="token_malformed"}`) {
			t.Errorf("the metrics lack the refusal's reason:\n%s", grepLines(string(b), "sts_token_requests_total"))
		}
	})
	t.Run("reason", func(t *testing.T) {
		setenv(t, "STS_ERRORS_DETAIL", "reason")
		r := serve(t, "--data-dir", t.TempDir())
		checkServing(t, r)
		if m := refuse(t, r); m["reason"] != "token_malformed" {
			t.Errorf("refusal body %v, want reason token_malformed with errors.detail: reason", m)
		}
	})
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
