package api

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	gitpodv1 "github.com/opensts/sts/internal/gen/gitpod/v1"
	"github.com/opensts/sts/internal/gen/gitpod/v1/gitpodv1connect"
	"github.com/opensts/sts/internal/pat"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/storage/sqlstore"
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

// BenchmarkGetAuthenticatedIdentityScaling is the pat case of
// BenchmarkGetAuthenticatedIdentity on SQLite and PostgreSQL (a schema of
// its own; skipped when STS_TEST_POSTGRES_DSN is unset) with 1 or 100 000
// PATs stored (setup-s is how long storing them took: on SQLite direct
// CreatePAT calls in one transaction, on PostgreSQL one INSERT … SELECT
// over unnest of the IDs and digests, copying the env's PAT), requests
// round-robin over 1, 1 000 or 100 000 of them (the PAT cache holds
// 100 000 for DefaultCacheTTL, 5 s; ttl=1h keeps them for an hour, to see
// the bound apart from the TTL). Each request builds its client context,
// in every case alike. The cache is warmed by one Authenticate per PAT
// before the clock starts (docs/performance.md, "Cost as the work grows").
func BenchmarkGetAuthenticatedIdentityScaling(b *testing.B) {
	for _, backend := range []string{"sqlite", "postgres"} {
		b.Run("storage="+backend, func(b *testing.B) { benchGetAuthenticatedIdentityScaling(b, backend) })
	}
}

func benchGetAuthenticatedIdentityScaling(b *testing.B, backend string) {
	for _, stored := range []int{1, 100_000} {
		b.Run(fmt.Sprintf("stored=%d", stored), func(b *testing.B) {
			var e *env
			if backend == "postgres" {
				e = newEnvOn(b, newPostgresStore(b), nil)
			} else {
				e = newEnv(b, nil)
			}
			secrets := []string{e.secret}
			var setup time.Duration
			if stored > 1 && backend == "postgres" {
				began := time.Now()
				ids := make([]string, 0, stored-1)
				digests := make([][]byte, 0, stored-1)
				for len(secrets) < stored {
					sec := pat.PrefixPAT.Generate()
					secrets = append(secrets, sec)
					ids = append(ids, storage.NewID())
					digests = append(digests, pat.Digest(testPepper, sec))
				}
				db := e.store.(*sqlstore.Store).DB()
				if _, err := db.ExecContext(b.Context(), `INSERT INTO pats (id, org_id, owner_id, description, scopes, digest,
						created_at, expires_at, last_used_at)
					SELECT u.id, org_id, owner_id, description, scopes, u.digest, created_at, expires_at, last_used_at
					FROM pats, unnest($1::text[], $2::bytea[]) AS u(id, digest) WHERE pats.digest = $3`,
					ids, digests, pat.Digest(testPepper, e.secret)); err != nil {
					b.Fatal(err)
				}
				if _, err := db.ExecContext(b.Context(), `ANALYZE pats`); err != nil {
					b.Fatal(err)
				}
				setup = time.Since(began)
			} else if stored > 1 {
				began := time.Now()
				now := time.Now()
				err := e.store.WithTx(b.Context(), func(tx storage.Tx) error {
					for len(secrets) < stored {
						sec := pat.PrefixPAT.Generate()
						if err := tx.CreatePAT(b.Context(), storage.PAT{ID: storage.NewID(), OrgID: e.org.ID, OwnerID: e.user.ID,
							Scopes: []string{pat.ScopeFull}, Digest: pat.Digest(testPepper, sec), CreatedAt: storage.Now(now),
							ExpiresAt: storage.Now(now.Add(30 * 24 * time.Hour))}); err != nil {
							return err
						}
						secrets = append(secrets, sec)
					}
					return nil
				})
				if err != nil {
					b.Fatal(err)
				}
				setup = time.Since(began)
			}
			mux := http.NewServeMux()
			e.h.Mount(mux)
			srv := httptest.NewServer(mux)
			defer srv.Close()
			tr := &http.Transport{MaxIdleConnsPerHost: 64}
			defer tr.CloseIdleConnections()
			client := gitpodv1connect.NewIdentityServiceClient(&http.Client{Transport: tr}, srv.URL)
			for _, tc := range []struct {
				rot int
				ttl time.Duration
			}{{1, 0}, {1_000, 0}, {100_000, 0}, {100_000, time.Hour}} {
				rot := tc.rot
				if rot > len(secrets) {
					continue
				}
				name := fmt.Sprintf("pats=%d", rot)
				if tc.ttl != 0 {
					name += ",ttl=" + tc.ttl.String()
				}
				b.Run(name, func(b *testing.B) {
					e.pats.CacheTTL = tc.ttl
					for _, sec := range secrets[:rot] {
						if _, err := e.pats.Authenticate(b.Context(), sec); err != nil {
							b.Fatal(err)
						}
					}
					var next atomic.Uint64
					b.SetParallelism(4)
					b.ReportAllocs()
					b.ResetTimer()
					b.RunParallel(func(pb *testing.PB) {
						for pb.Next() {
							ctx := as(secrets[next.Add(1)%uint64(rot)])
							if _, err := client.GetAuthenticatedIdentity(ctx, &gitpodv1.GetAuthenticatedIdentityRequest{}); err != nil {
								b.Error(err)
								return
							}
						}
					})
					b.StopTimer()
					b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
					b.ReportMetric(setup.Seconds(), "setup-s")
				})
			}
		})
	}
}
