package server

import (
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/opensts/sts/internal/clientip"
)

// unmatchedRoute labels requests no pattern matched (404, 405).
const unmatchedRoute = "unmatched"

// routeLabel is the ServeMux pattern that matched r, without its method
// ("/oauth2/token"), or "unmatched". The raw path is never used as a label
// or log key: it is client-chosen and unbounded.
func routeLabel(r *http.Request) string {
	p := r.Pattern
	if p == "" {
		return unmatchedRoute
	}
	if i := strings.IndexByte(p, ' '); i >= 0 {
		p = strings.TrimLeft(p[i:], " ")
	}
	return p
}

// isOpsRoute reports the routes orchestrators poll; they log at debug so
// they do not drown the requests that matter.
func isOpsRoute(route string) bool {
	switch route {
	case "/livez", "/readyz", "/metrics":
		return true
	}
	return false
}

// observe logs one line per request and records its metrics. It logs the
// method, route pattern, status, size, duration and request ID, and
// deliberately nothing else: headers (Authorization, cookies), query
// strings and bodies may carry tokens.
//
// It reads r.Pattern after the handler ran, which works because the mux
// sets it on the same *http.Request this middleware passed down.
func observe(logger *slog.Logger, m *Metrics, now func() time.Time) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := now()
			sw := wrap(w)
			next.ServeHTTP(sw, r)
			elapsed := now().Sub(start)
			route, status := routeLabel(r), sw.Status()
			m.observe(route, r.Method, status, elapsed.Seconds())

			level := slog.LevelInfo
			switch {
			case isOpsRoute(route), sw.shed:
				// A shed request is counted in sts_http_shed_total; a line
				// per request would make an overload wait on the log.
				level = slog.LevelDebug
			case status >= 500:
				level = slog.LevelError
			}
			if !logger.Enabled(r.Context(), level) {
				// No line: its attributes (the request ID and client
				// address are context lookups) would be built for
				// nothing (TestAccessLogOffReadsNothing).
				return
			}
			logger.LogAttrs(r.Context(), level, "http request",
				slog.String("method", r.Method),
				slog.String("route", route),
				slog.Int("status", status),
				slog.Int64("bytes", sw.bytes),
				slog.Duration("duration", elapsed),
				slog.String("request_id", RequestID(r.Context())),
				slog.String("client_ip", clientip.FromRequest(r)),
				slog.String("user_agent", userAgent(r)),
			)
		})
	}
}

// userAgent is the User-Agent header, bounded so that a client cannot make
// one log line arbitrarily long.
func userAgent(r *http.Request) string {
	ua := r.UserAgent()
	if len(ua) > 256 {
		ua = ua[:256]
	}
	return ua
}
