package loadgen

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
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
	// Bodies, when set, are the form bodies sent round-robin instead of
	// exchanges built from Tokens (IntrospectBodies, ClientCredentialsBody).
	Bodies []string
	// ClientID, when set, authenticates every request with HTTP Basic and
	// ClientSecret (RFC 6749 §2.3.1). A bare handler ignores the header but
	// receives it all the same, so both targets get the same bytes.
	ClientID, ClientSecret string
	// Expect, when set, must accept the body of a 200 answer for the
	// request to count as a success (ExpectActive, ExpectAccessToken).
	Expect func(body []byte) bool
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
	// Transports, when set, carry the requests, one per connection
	// (len == Concurrency, from NewTransports), so that a
	// measured run keeps the connections its warm-up opened (under
	// overload, a new connection waits in the server's accept queue, which
	// is not the latency of an admitted request); by default each Run
	// opens its own.
	Transports Transports
	// Phases, when set, traces every request (net/http/httptrace) and
	// fills the Result's connection and phase figures: whether it opened
	// a connection, how long that took, and how long the answer took
	// once the request was written.
	Phases bool
}

// Result is what a run measured.
type Result struct {
	Requests int64
	// Errors are the requests that failed: transport errors, non-200
	// answers and 200 answers Expect refused.
	Errors int64
	// Rejected are the 200 answers Expect refused (counted in Errors too).
	Rejected  int64
	Statuses  map[int]int64 // HTTP status → count; 0 for transport errors
	Elapsed   time.Duration
	Latencies []time.Duration // sorted, one per successful request (a 200 Expect accepted)
	// FirstError is the first failure seen, to say what went wrong.
	FirstError string

	// With Config.Phases, these split the figures by connection:
	// NewConns counts the requests (any outcome) that opened a connection
	// instead of reusing a kept one; Connect is, per such request, the
	// time to get it (dial, TCP handshake: what a full accept queue
	// delays); Kept are the latencies of the served requests that went on
	// a kept connection, and Wait, per served request, the time from the
	// request written to the first byte of the answer (the server's
	// queueing and service, and the kernel's between). All sorted.
	NewConns int64
	// Broken counts the transport errors (no answer) of requests sent on
	// a kept connection: a connection the server closed or reset under
	// the client, with the first such error in FirstBroken.
	Broken      int64
	FirstBroken string
	// Closing counts the answers that closed their connection
	// (Connection: close), by status.
	Closing map[int]int64
	Connect []time.Duration
	Kept    []time.Duration
	Wait    []time.Duration
}

// phases is one request's trace: what Config.Phases records.
type phases struct {
	getConn, gotConn, wrote, firstByte time.Time
	reused, closing                    bool
}

func (p *phases) trace() *httptrace.ClientTrace {
	return &httptrace.ClientTrace{
		GetConn:              func(string) { p.getConn = time.Now() },
		GotConn:              func(i httptrace.GotConnInfo) { p.gotConn, p.reused = time.Now(), i.Reused },
		WroteRequest:         func(httptrace.WroteRequestInfo) { p.wrote = time.Now() },
		GotFirstResponseByte: func() { p.firstByte = time.Now() },
	}
}

// Run drives cfg.Concurrency connections against cfg.URL until
// cfg.Duration has passed or ctx ends.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if (len(cfg.Tokens) == 0 && len(cfg.Bodies) == 0) || cfg.Concurrency <= 0 || cfg.Duration <= 0 {
		return nil, fmt.Errorf("loadgen: need tokens or bodies, a positive concurrency and a positive duration")
	}
	bodies := cfg.Bodies
	if len(bodies) == 0 {
		bodies = make([]string, len(cfg.Tokens))
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
	}
	var authz string
	if cfg.ClientID != "" {
		authz = BasicAuth(cfg.ClientID, cfg.ClientSecret)
	}
	trs := cfg.Transports
	if trs == nil {
		trs = NewTransports(cfg.Concurrency)
		defer trs.CloseIdleConnections()
	}
	if len(trs) != cfg.Concurrency {
		return nil, fmt.Errorf("loadgen: %d transports for %d connections", len(trs), cfg.Concurrency)
	}
	var limiter *rate.Limiter
	if cfg.Rate > 0 {
		limiter = rate.NewLimiter(rate.Limit(cfg.Rate), 1)
	}

	// Requests begun before the end of the run finish under the caller's
	// context: cutting one off would close its connection, and a measured
	// run that reuses the warm-up's connections (Transports) would then
	// open a new one.
	reqCtx := ctx
	ctx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()
	var next atomic.Uint64
	var mu sync.Mutex
	res := &Result{Statuses: map[int]int64{}}
	var wg sync.WaitGroup
	start := time.Now()
	for i := range cfg.Concurrency {
		// Each worker its own connection: with one pool for all, a paced
		// run used one or two of them and dialed the rest mid-run.
		client := &http.Client{Transport: trs[i], Timeout: max(cfg.Timeout, 10*time.Second)}
		wg.Go(func() {
			lat := make([]time.Duration, 0, 1<<14)
			statuses := map[int]int64{}
			var errs, rejected int64
			var firstErr string
			var buf bytes.Buffer // this connection's answer, reused
			var ph *phases
			var newConns, broken int64
			closed := map[int]int64{}
			var firstBroken string
			var connect, kept, wait []time.Duration
			if cfg.Phases {
				ph = new(phases)
			}
			for ctx.Err() == nil {
				if limiter != nil && limiter.Wait(ctx) != nil {
					break
				}
				body := bodies[next.Add(1)%uint64(len(bodies))]
				t0 := time.Now()
				rctx := reqCtx
				if ph != nil {
					*ph = phases{}
					rctx = httptrace.WithClientTrace(reqCtx, ph.trace())
				}
				var closing *bool
				if ph != nil {
					closing = &ph.closing
				}
				status, msg := post(rctx, client, cfg.URL, body, authz, cfg.Expect, &buf, closing)
				if reqCtx.Err() != nil && status == 0 {
					break // cut off by the caller, not a failure
				}
				d := time.Since(t0)
				statuses[status]++
				fresh := ph != nil && !ph.gotConn.IsZero() && !ph.reused
				if fresh {
					newConns++
					connect = append(connect, ph.gotConn.Sub(ph.getConn))
				}
				if ph != nil && ph.closing {
					closed[status]++
				}
				if ph != nil && status == 0 && !ph.gotConn.IsZero() && ph.reused {
					broken++
					if firstBroken == "" {
						firstBroken = msg
					}
				}
				if msg == "" {
					// Latency is of served requests: a shed 503 answers
					// fast and would flatter the percentiles.
					lat = append(lat, d)
					if ph != nil {
						if !fresh {
							kept = append(kept, d)
						}
						if !ph.wrote.IsZero() && !ph.firstByte.IsZero() {
							wait = append(wait, ph.firstByte.Sub(ph.wrote))
						}
					}
					continue
				}
				errs++
				if status == http.StatusOK {
					rejected++
				}
				if firstErr == "" {
					firstErr = msg
				}
			}
			mu.Lock()
			defer mu.Unlock()
			res.Latencies = append(res.Latencies, lat...)
			res.NewConns += newConns
			res.Broken += broken
			for s, n := range closed {
				if res.Closing == nil {
					res.Closing = map[int]int64{}
				}
				res.Closing[s] += n
			}
			if res.FirstBroken == "" {
				res.FirstBroken = firstBroken
			}
			res.Connect = append(res.Connect, connect...)
			res.Kept = append(res.Kept, kept...)
			res.Wait = append(res.Wait, wait...)
			for s, n := range statuses {
				res.Statuses[s] += n
				res.Requests += n
			}
			res.Errors += errs
			res.Rejected += rejected
			if res.FirstError == "" {
				res.FirstError = firstErr
			}
		})
	}
	wg.Wait()
	res.Elapsed = time.Since(start)
	for _, l := range [][]time.Duration{res.Latencies, res.Connect, res.Kept, res.Wait} {
		slices.Sort(l)
	}
	return res, nil
}

// post sends one request and returns the status (0 on a transport error)
// and, on failure, a short description; a success has none. A 200 answer
// fails when expect refuses its body, which is read into buf.
func post(ctx context.Context, c *http.Client, u, body, authz string, expect func([]byte) bool, buf *bytes.Buffer, closing *bool) (int, string) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(body))
	if err != nil {
		return 0, err.Error()
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if authz != "" {
		req.Header.Set("Authorization", authz)
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	if closing != nil {
		*closing = resp.Close
	}
	if resp.StatusCode == http.StatusOK {
		if expect == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			return resp.StatusCode, ""
		}
		buf.Reset()
		if _, err := buf.ReadFrom(io.LimitReader(resp.Body, 1<<20)); err != nil {
			return 0, err.Error()
		}
		if expect(buf.Bytes()) {
			return resp.StatusCode, ""
		}
		// The body of a refused answer says what it was instead; cut short,
		// as a non-200 body is.
		return resp.StatusCode, fmt.Sprintf("%s but the answer was refused: %s", resp.Status, bytes.TrimSpace(buf.Bytes()[:min(buf.Len(), 200)]))
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	return resp.StatusCode, fmt.Sprintf("%s: %s", resp.Status, strings.TrimSpace(string(b)))
}

// Transports are a run's keep-alive transports, one connection each.
type Transports []*http.Transport

// NewTransports returns n keep-alive transports of one connection each.
func NewTransports(n int) Transports {
	trs := make(Transports, n)
	for i := range trs {
		trs[i] = &http.Transport{MaxIdleConnsPerHost: 1, MaxConnsPerHost: 1, DisableCompression: true}
	}
	return trs
}

// CloseIdleConnections closes every transport's idle connection.
func (trs Transports) CloseIdleConnections() {
	for _, tr := range trs {
		tr.CloseIdleConnections()
	}
}

// Percentile returns the p-th percentile (0 < p ≤ 100) of the sorted
// latencies, or 0 when there are none.
func (r *Result) Percentile(p float64) time.Duration { return Percentile(r.Latencies, p) }

// Percentile returns the p-th percentile (0 < p ≤ 100) of sorted, or 0
// when it is empty.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted))*p/100+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// Throughput is completed requests per second.
func (r *Result) Throughput() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Requests) / r.Elapsed.Seconds()
}
