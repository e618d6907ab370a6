package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/storage"
)

// Check is one named readiness condition, such as "storage" or
// "master_key". Run returns nil when the condition holds, else an error.
// /readyz answers anyone, so it shows only the [Reason] in that error's
// chain, or hiddenReason when there is none; the error itself goes to the
// log under the check's name (docs/security.md F-103).
type Check struct {
	Name string
	Run  func(ctx context.Context) error
}

// Reason is a failing check's reason as /readyz may show it: a fixed text
// of ours that names nothing of the deployment (no DSN, host, path,
// organization, pool or provider). Wrap the detail with it
// (fmt.Errorf("%w: %w", reason, err)) so the log keeps the detail.
type Reason string

func (r Reason) Error() string { return string(r) }

// hiddenReason is what /readyz shows for a failure that carries no Reason.
const hiddenReason = "failing; see the server log"

// publicReason is err's Reason, or hiddenReason.
func publicReason(err error) string {
	if r, ok := errors.AsType[Reason](err); ok {
		return string(r)
	}
	return hiddenReason
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
// A failure whose error says more than its public reason is logged, once
// per change, under the check's name: the probe runs every few seconds, and
// anyone may call it.
func readyz(checks []Check, logger *slog.Logger) http.HandlerFunc {
	var (
		logMu  sync.Mutex
		logged = map[string]string{} // check name → error text last logged
	)
	note := func(ctx context.Context, name string, err error, reason string) {
		logMu.Lock()
		defer logMu.Unlock()
		if err == nil {
			delete(logged, name)
			return
		}
		msg := err.Error()
		if msg == reason || logged[name] == msg {
			return
		}
		logged[name] = msg
		logger.WarnContext(ctx, "readiness check failing", "check", name, "reason", reason, "error", msg)
	}
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
				err := c.Run(ctx)
				if err == nil {
					note(ctx, c.Name, nil, "")
					return
				}
				reason := publicReason(err)
				note(ctx, c.Name, err, reason)
				mu.Lock()
				failing[c.Name] = reason
				mu.Unlock()
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

// storageCheck is the built-in "storage" check: the store's health, its
// reason a timeout or unavailable.
func storageCheck(store storage.Store) Check {
	return Check{Name: "storage", Run: func(ctx context.Context) error {
		err := store.Health(ctx)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, context.DeadlineExceeded):
			return fmt.Errorf("%w: %w", Reason("timeout"), err)
		}
		return fmt.Errorf("%w: %w", Reason("unavailable; see the server log"), err)
	}}
}
