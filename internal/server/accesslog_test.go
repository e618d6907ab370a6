package server

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// countingContext counts the lookups made through it once armed.
type countingContext struct {
	context.Context
	armed   atomic.Bool
	lookups atomic.Int64
}

func (c *countingContext) Value(key any) any {
	if c.armed.Load() {
		c.lookups.Add(1)
	}
	return c.Context.Value(key)
}

// TestAccessLogOffReadsNothing: with the access log's level off (serve's
// benchmark configuration logs at warn), a request that logs at info costs
// the log nothing after its handler: no request ID or client address is
// looked up for a line that is not written (docs/performance.md,
// client_credentials tenth pass). With the level on, the line has them.
func TestAccessLogOffReadsNothing(t *testing.T) {
	for _, level := range []slog.Level{slog.LevelWarn, slog.LevelInfo} {
		var out strings.Builder
		logger := slog.New(slog.NewJSONHandler(&out, &slog.HandlerOptions{Level: level}))
		ctx := &countingContext{Context: context.Background()}
		h := observe(logger, NewMetrics(), time.Now)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, "ok")
			ctx.armed.Store(true) // what the handler itself reads is not the log's
		}))
		r := httptest.NewRequestWithContext(ctx, http.MethodPost, "/oauth2/token", nil)
		r.RemoteAddr = "192.0.2.1:40000"
		h.ServeHTTP(httptest.NewRecorder(), r)
		switch n := ctx.lookups.Load(); {
		case level == slog.LevelWarn && (n != 0 || out.Len() != 0):
			t.Errorf("access log at warn: %d context lookups and %q written after the handler, want none", n, out.String())
		case level == slog.LevelInfo && (!strings.Contains(out.String(), `"client_ip":"192.0.2.1"`) || !strings.Contains(out.String(), `"status":200`)):
			t.Errorf("access log at info: %q, want the line with its status and client address", out.String())
		}
	}
}
