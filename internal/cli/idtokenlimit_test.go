package cli_test

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"connectrpc.com/connect"

	gitpodv1 "github.com/opensts/sts/internal/gen/gitpod/v1"
	"github.com/opensts/sts/internal/gen/gitpod/v1/gitpodv1connect"
	stsv1 "github.com/opensts/sts/internal/gen/sts/v1"
	"github.com/opensts/sts/internal/gen/sts/v1/stsv1connect"
	"github.com/opensts/sts/internal/ststest/redistest"
)

// TestServeIDTokenRateLimits is docs/security.md A-57 against a real `sts
// serve`, with the buckets in memory and (STS_TEST_REDIS_URL) in Redis:
// GetIDToken takes from the buckets the token endpoint charges for the
// credential. A workload whose pool's bucket its exchanges at
// /oauth2/token have spent is refused by GetIDToken with the access token
// it already holds (resource_exhausted, Retry-After, the rate-limit
// headers) over Connect, Connect JSON and gRPC, while another pool's
// workload is served; a PAT's ID tokens are limited per principal (every
// PAT of the principal shares the bucket), another principal's are not.
// The refusals are counted per procedure and logged with their reason.
func TestServeIDTokenRateLimits(t *testing.T) {
	t.Parallel()
	for _, backend := range []string{"memory", "redis"} {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			// Pool IDs no other test's Redis keys share; principal IDs are
			// new anyway.
			suffix := strings.ToLower(rand.Text()[:8])
			u := ""
			if backend == "redis" {
				u = redistest.URL(t)
				setenv(t, "STS_RATE_LIMITS_REDIS_URL", u)
				setenv(t, "STS_RATE_LIMITS_REDIS_TIMEOUT", "5s") // a slow reply must not decide in memory here
				redistest.DeleteOnCleanup(t, u, "*:pool:*-"+suffix)
			}
			testServeIDTokenRateLimits(t, suffix, u)
		})
	}
}

// testServeIDTokenRateLimits runs with pools named *-suffix; redisURL,
// when set, is the Redis whose buckets the test's principals leave.
func testServeIDTokenRateLimits(t *testing.T, suffix, redisURL string) {
	setenv(t, "STS_FEDERATION_ALLOW_LOOPBACK", "true")
	setenv(t, "STS_RATE_LIMITS_PER_IP_RATE", "0") // every request here comes from one address
	setenv(t, "STS_RATE_LIMITS_PER_IP_BURST", "0")
	setenv(t, "STS_RATE_LIMITS_PER_CLIENT_RATE", "0.001")
	setenv(t, "STS_RATE_LIMITS_PER_CLIENT_BURST", "3")
	setenv(t, "STS_RATE_LIMITS_PER_POOL_RATE", "0.001")
	setenv(t, "STS_RATE_LIMITS_PER_POOL_BURST", "3")
	iss := newLoopbackIssuer(t)
	s := startAdminServer(t)
	ctx := t.Context()

	// Two pools trusting the issuer, each bound to a service account that
	// may ask for ID tokens.
	ps := stsv1connect.NewPoolServiceClient(h2cClient(s.admin), s.api)
	ci, cd := "ci-"+suffix, "cd-"+suffix
	for _, pool := range []string{ci, cd} {
		bot := newServiceAccount(t, s.dir, pool+"-bot")
		if _, err := ps.CreatePool(ctx, &stsv1.CreatePoolRequest{PoolId: pool, OrganizationId: s.orgID,
			Condition: `assertion.repository_owner == "acme"`, PrincipalId: bot, Scopes: []string{"identity:id_token"},
			AllowUnauthenticated: true}); err != nil {
			t.Fatalf("CreatePool %s: %v", pool, err)
		}
		if _, err := ps.CreateProvider(ctx, &stsv1.CreateProviderRequest{PoolId: pool, ProviderId: "local", Issuer: iss.url, Audiences: []string{"sts"}}); err != nil {
			t.Fatalf("CreateProvider %s: %v", pool, err)
		}
	}
	// exchange trades a subject token of the issuer at pool (both pools
	// trust it: the pool parameter picks one) for an access token.
	exchange := func(pool string) (int, http.Header, string) {
		t.Helper()
		form := url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:token-exchange"}, "subject_token": {iss.mint(t, "repo:acme/app", "acme")},
			"subject_token_type": {"urn:ietf:params:oauth:token-type:jwt"}, "scope": {"identity:id_token"}, "pool": {pool}}
		resp, err := http.PostForm(s.r.base+"/oauth2/token", form)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body struct {
			AccessToken string `json:"access_token"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&body)
		return resp.StatusCode, resp.Header, body.AccessToken
	}
	adminID := ""
	if redisURL != "" {
		r, err := gitpodv1connect.NewIdentityServiceClient(h2cClient(s.admin), s.api).GetAuthenticatedIdentity(ctx, &gitpodv1.GetAuthenticatedIdentityRequest{})
		if err != nil {
			t.Fatal(err)
		}
		adminID = r.GetSubject().GetId()
		redistest.DeleteOnCleanup(t, redisURL, "*:principal:"+adminID)
	}
	idToken := func(credential string, opts ...connect.ClientOption) error {
		_, err := gitpodv1connect.NewIdentityServiceClient(h2cClient(credential), s.api, opts...).GetIDToken(ctx,
			&gitpodv1.GetIDTokenRequest{Audience: []string{"sts.amazonaws.com"}})
		return err
	}
	protocols := map[string][]connect.ClientOption{"connect": nil, "connect-json": {connect.WithProtoJSON()}, "grpc": {connect.WithGRPC()}}
	refused := func(what, credential string) {
		t.Helper()
		for name, opts := range protocols {
			err := idToken(credential, opts...)
			ce, ok := errors.AsType[*connect.Error](err)
			if !ok || ce.Code() != connect.CodeResourceExhausted {
				t.Errorf("%s over %s: GetIDToken = %v, want resource_exhausted", what, name, err)
				continue
			}
			retry, _ := strconv.Atoi(ce.Meta().Get("Retry-After"))
			if retry < 900 || retry > 1000 || ce.Meta().Get("X-RateLimit-Limit") != "3" || ce.Meta().Get("X-RateLimit-Remaining") != "0" {
				t.Errorf("%s over %s: headers %v; want Retry-After ≈1000, X-RateLimit-Limit 3, none remaining", what, name, ce.Meta())
			}
		}
	}

	// Pool ci: one exchange, one ID token, one more exchange spend its
	// bucket of 3; the next exchange is 429 at the token endpoint, and
	// GetIDToken with the token in hand is refused as well.
	code, h, tok := exchange(ci)
	if code != http.StatusOK || tok == "" || h.Get("X-RateLimit-Remaining") != "2" {
		t.Fatalf("exchange at %s = %d, X-RateLimit-Remaining %q", ci, code, h.Get("X-RateLimit-Remaining"))
	}
	if err := idToken(tok); err != nil {
		t.Fatalf("GetIDToken with the pool's token = %v", err)
	}
	if code, _, _ := exchange(ci); code != http.StatusOK {
		t.Fatalf("second exchange at %s = %d", ci, code)
	}
	if code, h, _ := exchange(ci); code != http.StatusTooManyRequests || h.Get("Retry-After") == "" {
		t.Fatalf("exchange at %s with its bucket spent = %d, Retry-After %q; want 429", ci, code, h.Get("Retry-After"))
	}
	refused("a token of the spent pool", tok)

	// Pool cd keeps its bucket.
	code, _, other := exchange(cd)
	if code != http.StatusOK {
		t.Fatalf("exchange at %s = %d", cd, code)
	}
	if err := idToken(other, connect.WithGRPC()); err != nil {
		t.Errorf("GetIDToken with another pool's token = %v, want an ID token", err)
	}

	// A PAT: its principal's bucket of 3 (rate_limits.per_client's rule),
	// shared by the principal's other PATs; another principal keeps its
	// own.
	for i := range 3 {
		if err := idToken(s.admin); err != nil {
			t.Fatalf("GetIDToken %d with the admin's PAT = %v", i, err)
		}
	}
	refused("the admin's PAT, its bucket spent", s.admin)
	refused("the admin's other PAT", s.notAdmin)
	code, out, e := runCLI(t, "principal", "create", "--data-dir", s.dir, "--org", "default", "--kind", "user", "--name", "grace")
	if code != 0 {
		t.Fatalf("principal create = %d %q %q", code, out, e)
	}
	if redisURL != "" {
		redistest.DeleteOnCleanup(t, redisURL, "*:principal:"+strings.TrimSpace(out))
	}
	code, out, e = runCLI(t, "pat", "create", "--data-dir", s.dir, "--user", "grace", "--expires-in", "1d", "--scope", "identity:id_token")
	grace := patRE.FindString(out)
	if code != 0 || grace == "" {
		t.Fatalf("pat create = %d %q %q", code, out, e)
	}
	if err := idToken(grace, connect.WithProtoJSON()); err != nil {
		t.Errorf("GetIDToken with another principal's PAT = %v, want an ID token", err)
	}

	// Counted per procedure and logged, like the token endpoint's 429s;
	// no credential in the log.
	resp, err := http.Get(s.r.base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := `sts_rpc_requests_total{code="resource_exhausted",procedure="/gitpod.v1.IdentityService/GetIDToken"} ` + strconv.Itoa(3*len(protocols)); !strings.Contains(string(metrics), want) {
		t.Errorf("/metrics lacks %s", want)
	}
	if redisURL != "" {
		// The token endpoint's buckets in Redis, the same keys: no
		// parallel limiter, no decision in memory.
		for _, key := range []string{"*:per_pool:pool:" + ci, "*:per_client:principal:" + adminID} {
			if len(redistest.Keys(t, redisURL, key)) != 1 {
				t.Errorf("no Redis bucket %s", key)
			}
		}
		if strings.Contains(string(metrics), "sts_ratelimit_fallback_total{") {
			t.Error("a decision fell back to memory although Redis answered")
		}
	}
	logs := s.r.stderr.String()
	if !strings.Contains(logs, `"msg":"api: call refused"`) || !strings.Contains(logs, `"reason":"rate_limited"`) || !strings.Contains(logs, `"bucket":"pool"`) {
		t.Errorf("the refusals are not logged with their reason and bucket:\n%s", logs)
	}
	for _, secret := range []string{tok, other, s.admin, s.notAdmin, grace} {
		if strings.Contains(logs, secret) {
			t.Error("a credential reached the server log")
		}
	}
}
