package server

import (
	"net/http"

	"github.com/opensts/sts/internal/clientip"
)

// clientIP resolves the request's client address once (through the trusted
// proxies, if any) and stores it in the context, where every per-IP consumer
// reads it with clientip.FromRequest.
func clientIP(v *clientip.Resolver) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			next.ServeHTTP(w, r.WithContext(clientip.WithIP(r.Context(), v.Resolve(r))))
		})
	}
}
