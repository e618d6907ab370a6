package server

import (
	"context"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/opensts/sts/internal/oauth2"
)

// Check is one named readiness condition, such as "storage" or
// "master_key". Run returns nil when the condition holds, else an error
// whose text is shown on /readyz: keep it short and free of secrets (it
// is also stripped of DSNs, addresses, host, user and database names).
type Check struct {
	Name string
	Run  func(ctx context.Context) error
}

// checkTimeout bounds each readiness check so a hung dependency makes
// /readyz answer 503 rather than hang the orchestrator's probe.
const checkTimeout = 2 * time.Second

// readyBody is the JSON of /readyz: Failing maps each failing check to its
// reason and is absent when every check passes.
type readyBody struct {
	Status  string            `json:"status"`
	Failing map[string]string `json:"failing,omitempty"`
}

func livez(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "alive"})
}

// readyz runs every check concurrently and answers 200 when all pass, else
// 503 listing every failing check, so an operator sees all reasons at once.
func readyz(checks []Check) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), checkTimeout)
		defer cancel()
		var (
			mu      sync.Mutex
			wg      sync.WaitGroup
			failing = map[string]string{}
		)
		for _, c := range checks {
			wg.Go(func() {
				if err := c.Run(ctx); err != nil {
					mu.Lock()
					// One line per reason: driver errors span several.
					// No DSNs, addresses, user or database names: /readyz
					// answers anyone.
					failing[c.Name] = redactCheck(strings.Join(strings.Fields(err.Error()), " "))
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if len(failing) > 0 {
			oauth2.SetRetryAfter(w.Header(), 0)
			writeJSON(w, http.StatusServiceUnavailable, readyBody{Status: "not ready", Failing: failing})
			return
		}
		writeJSON(w, http.StatusOK, readyBody{Status: "ready"})
	}
}

// redactions strip from a check's message what tells an unauthenticated
// caller where storage lives and who connects to it: DSNs and URLs,
// connection parameters, quoted database, role and user names, file paths,
// addresses and host names. The kind of failure ("connection refused",
// "does not exist", "sealed: …") stays.
var redactions = []struct {
	re   *regexp.Regexp
	with string
}{
	{regexp.MustCompile(`[A-Za-z][A-Za-z0-9+.-]*://\S+`), "<dsn>"},
	{regexp.MustCompile("`[^`]*`"), "<dsn>"},
	{regexp.MustCompile(`(?i)\b(host|hostaddr|port|user|username|dbname|database|password|sslmode|service|options|application_name)=\S+`), "<redacted>"},
	{regexp.MustCompile(`(?i)\b(database|role|user|relation|schema|db)\s+"[^"]*"`), `$1 "<redacted>"`},
	{regexp.MustCompile(`(^|[\s:(=])/[^\s:)]+`), "$1<path>"},
	{regexp.MustCompile(`\[[0-9A-Fa-f:.%]+\](:\d+)?`), "<address>"},
	{regexp.MustCompile(`\b\d{1,3}(\.\d{1,3}){3}(:\d+)?\b`), "<address>"},
	{regexp.MustCompile(`(?i)\b[0-9a-f]{0,4}(:[0-9a-f]{0,4}){2,7}\b`), "<address>"},
	{regexp.MustCompile(`\b(?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,}(:\d+)?\b`), "<host>"},
	{regexp.MustCompile(`\b[A-Za-z0-9-]+:\d{1,5}\b`), "<address>"},
}

// redactCheck is a failing check's message as /readyz shows it.
func redactCheck(msg string) string {
	for _, r := range redactions {
		msg = r.re.ReplaceAllString(msg, r.with)
	}
	return msg
}
