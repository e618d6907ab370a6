package loadgen

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// RFC 8693 request vocabulary the generator sends.
const (
	grantTokenExchange = "urn:ietf:params:oauth:grant-type:token-exchange"
	tokenTypeJWT       = "urn:ietf:params:oauth:token-type:jwt"
)

// Config is one load run.
type Config struct {
	// URL is the token endpoint, e.g. http://127.0.0.1:8080/oauth2/token.
	URL string
	// Pool and Audience are sent as the pool and audience parameters; empty
	// ones are left out.
	Pool, Audience string
	// Tokens are the subject tokens, used round-robin.
	Tokens []string
	// Concurrency is the number of connections, each with one request in
	// flight.
	Concurrency int
	// Duration bounds the run.
	Duration time.Duration
	// Rate, when positive, caps the total request rate (for latency at a
	// given load rather than at saturation).
	Rate float64
	// Timeout bounds each request; default 10 s.
	Timeout time.Duration
}

// Result is what a run measured.
type Result struct {
	Requests  int64
	Errors    int64
	Statuses  map[int]int64 // HTTP status → count; 0 for transport errors
	Elapsed   time.Duration
	Latencies []time.Duration // sorted, one per completed request
	// FirstError is the first failure seen, to say what went wrong.
	FirstError string
}

// Run drives cfg.Concurrency connections against cfg.URL until
// cfg.Duration has passed or ctx ends.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if len(cfg.Tokens) == 0 || cfg.Concurrency <= 0 || cfg.Duration <= 0 {
		return nil, fmt.Errorf("loadgen: need tokens, a positive concurrency and a positive duration")
	}
	bodies := make([]string, len(cfg.Tokens))
	for i, tok := range cfg.Tokens {
		v := url.Values{"grant_type": {grantTokenExchange}, "subject_token": {tok}, "subject_token_type": {tokenTypeJWT}}
		if cfg.Audience != "" {
			v.Set("audience", cfg.Audience)
		}
		if cfg.Pool != "" {
			v.Set("pool", cfg.Pool)
		}
		bodies[i] = v.Encode()
	}
	tr := &http.Transport{MaxIdleConnsPerHost: cfg.Concurrency, MaxConnsPerHost: cfg.Concurrency, DisableCompression: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: max(cfg.Timeout, 10*time.Second)}
	var limiter *rate.Limiter
	if cfg.Rate > 0 {
		limiter = rate.NewLimiter(rate.Limit(cfg.Rate), 1)
	}

	ctx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()
	var next atomic.Uint64
	var mu sync.Mutex
	res := &Result{Statuses: map[int]int64{}}
	var wg sync.WaitGroup
	start := time.Now()
	for range cfg.Concurrency {
		wg.Go(func() {
			lat := make([]time.Duration, 0, 1<<14)
			statuses := map[int]int64{}
			var firstErr string
			for ctx.Err() == nil {
				if limiter != nil && limiter.Wait(ctx) != nil {
					break
				}
				body := bodies[next.Add(1)%uint64(len(bodies))]
				t0 := time.Now()
				status, msg := post(ctx, client, cfg.URL, body)
				if ctx.Err() != nil && status == 0 {
					break // cut off by the end of the run, not a failure
				}
				lat = append(lat, time.Since(t0))
				statuses[status]++
				if status != http.StatusOK && firstErr == "" {
					firstErr = msg
				}
			}
			mu.Lock()
			defer mu.Unlock()
			res.Latencies = append(res.Latencies, lat...)
			for s, n := range statuses {
				res.Statuses[s] += n
			}
			if res.FirstError == "" {
				res.FirstError = firstErr
			}
		})
	}
	wg.Wait()
	res.Elapsed = time.Since(start)
	slices.Sort(res.Latencies)
	for s, n := range res.Statuses {
		res.Requests += n
		if s != http.StatusOK {
			res.Errors += n
		}
	}
	return res, nil
}

// post sends one exchange and returns the status (0 on a transport error)
// and, on failure, a short description.
func post(ctx context.Context, c *http.Client, u, body string) (int, string) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(body))
	if err != nil {
		return 0, err.Error()
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := c.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp.StatusCode, ""
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	return resp.StatusCode, fmt.Sprintf("%s: %s", resp.Status, strings.TrimSpace(string(b)))
}

// Percentile returns the p-th percentile (0 < p ≤ 100) of the sorted
// latencies, or 0 when there are none.
func (r *Result) Percentile(p float64) time.Duration {
	if len(r.Latencies) == 0 {
		return 0
	}
	i := int(float64(len(r.Latencies))*p/100+0.5) - 1
	return r.Latencies[min(max(i, 0), len(r.Latencies)-1)]
}

// Throughput is completed requests per second.
func (r *Result) Throughput() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Requests) / r.Elapsed.Seconds()
}
