package server

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Check is one named readiness condition, such as "storage" or
// "master_key". Run returns nil when the condition holds, else an error
// whose text is shown on /readyz: keep it short and free of secrets.
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
					failing[c.Name] = strings.Join(strings.Fields(err.Error()), " ")
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if len(failing) > 0 {
			writeJSON(w, http.StatusServiceUnavailable, readyBody{Status: "not ready", Failing: failing})
			return
		}
		writeJSON(w, http.StatusOK, readyBody{Status: "ready"})
	}
}
