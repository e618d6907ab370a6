package api

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	gitpodv1 "github.com/opensts/sts/internal/gen/gitpod/v1"
	"github.com/opensts/sts/internal/gen/gitpod/v1/gitpodv1connect"
)

// BenchmarkGetAuthenticatedIdentity measures the PAT-authenticated
// GetAuthenticatedIdentity over real HTTP on loopback (Connect protocol,
// keep-alive, GOMAXPROCS×parallel clients) against the same RPC with
// authentication replaced by a fixed identity. docs/performance.md target: pat
// throughput ≥ 80% of unauthenticated, read from one run as the ratio of
// ns/op. The PAT cache is warm after the first call.
func BenchmarkGetAuthenticatedIdentity(b *testing.B) {
	e := newEnv(b, nil)
	fixed, err := (&Authenticator{PATs: e.pats}).Authenticate(b.Context(), "Bearer "+e.secret)
	if err != nil {
		b.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		noAuth *Identity
		token  string
	}{
		{"pat", nil, e.secret},
		{"unauthenticated", fixed, ""},
	} {
		b.Run(tc.name, func(b *testing.B) {
			h := &Handler{Store: e.h.Store, PATs: e.h.PATs, Issuer: e.h.Issuer, Verifier: e.h.Verifier,
				Audience: e.h.Audience, Logger: e.h.Logger, Now: e.h.Now, noAuth: tc.noAuth}
			mux := http.NewServeMux()
			h.Mount(mux)
			srv := httptest.NewServer(mux)
			defer srv.Close()
			tr := &http.Transport{MaxIdleConnsPerHost: 64}
			defer tr.CloseIdleConnections()
			client := gitpodv1connect.NewIdentityServiceClient(&http.Client{Transport: tr}, srv.URL)
			var mu sync.Mutex
			var lat []time.Duration
			b.SetParallelism(4)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				ctx := as(tc.token)
				var mine []time.Duration
				for pb.Next() {
					start := time.Now()
					if _, err := client.GetAuthenticatedIdentity(ctx, &gitpodv1.GetAuthenticatedIdentityRequest{}); err != nil {
						b.Error(err)
						return
					}
					mine = append(mine, time.Since(start))
				}
				mu.Lock()
				lat = append(lat, mine...)
				mu.Unlock()
			})
			b.StopTimer()
			if len(lat) > 0 {
				slices.Sort(lat)
				b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
			}
		})
	}
}
