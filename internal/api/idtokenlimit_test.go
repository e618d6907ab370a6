package api

import (
	"context"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/durationpb"

	gitpodv1 "github.com/opensts/sts/internal/gen/gitpod/v1"
	stsv1 "github.com/opensts/sts/internal/gen/sts/v1"
	"github.com/opensts/sts/internal/pat"
	"github.com/opensts/sts/internal/ratelimit"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/tokens"
)

// callAs is as, and also returns the call's info, whose ResponseHeader
// holds the response headers once the call returns.
func callAs(token string) (context.Context, connect.CallInfo) {
	ctx, info := connect.NewClientContext(context.Background())
	info.RequestHeader().Set("Authorization", "Bearer "+token)
	return ctx, info
}

// accessToken is one of our access tokens for the env's user with the
// identity:id_token scope, issued to client (a registered client's ID, or
// none) and exchanged at pool (or none), as the token endpoint mints them.
func (e *env) accessToken(t *testing.T, client, pool string) string {
	t.Helper()
	now := time.Now()
	c := tokens.AccessClaims{Subject: e.user.ID, Audience: tokens.Audience{testIssuer}, ClientID: client,
		IssuedAt: tokens.NewNumericDate(now), Expiry: tokens.NewNumericDate(now.Add(15 * time.Minute)),
		Scope: pat.ScopeIDToken, OrgID: e.org.ID, Principal: string(e.user.Kind)}
	if pool != "" {
		c.Pool, c.Provider = pool, "gh"
	}
	tok, _, err := e.h.Issuer.MintAccessToken(t.Context(), c)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestGetIDTokenRateLimited is docs/security.md A-57. GetIDToken signs a
// token on every call for an audience the caller picks, and it had no
// limit of its own: a workload its pool's bucket held back at the token
// endpoint went on minting ID tokens with the access token it already
// had, and one PAT could make the server sign as fast as its CPU allowed,
// for everyone's cost. Each call now takes from the buckets the token
// endpoint charges for the credential, the very same ones (rate_limits,
// here in memory): the pool's for a token exchanged at a pool, the
// client's for a token issued to a client, else the principal's (a PAT).
// A refused call is resource_exhausted with the rate-limit headers and
// Retry-After, signs nothing, and leaves a refused event (reason
// rate_limited); other principals and pools keep their buckets. Over
// Connect, Connect JSON, gRPC and gRPC-Web with the generated client.
func TestGetIDTokenRateLimited(t *testing.T) {
	t.Parallel()
	sa := &stubTokenAudit{}
	e := newEnv(t, func(h *Handler) { h.SetTokenAudit(sa, false) })
	clientID := storage.NewID()
	second := e.mintPAT(e.user.ID, pat.ScopeFull) // the user's second PAT
	for name, c := range e.protocols() {
		t.Run(name, func(t *testing.T) {
			// Fresh buckets for each protocol: client and principal 2,
			// pool 3, none refilling within the test.
			lim := ratelimit.Limits{
				PerClient: ratelimit.NewMemory(ratelimit.Rule{Rate: 0.001, Burst: 2}, ratelimit.MemoryOptions{}),
				PerPool:   ratelimit.NewMemory(ratelimit.Rule{Rate: 0.001, Burst: 3}, ratelimit.MemoryOptions{}),
			}
			e.h.SetTokenLimits(lim)
			before := len(sa.events())
			req := &gitpodv1.GetIDTokenRequest{Audience: []string{"sts.amazonaws.com"}}
			// allowed calls GetIDToken with credential and wants a token
			// and the binding bucket's headers.
			allowed := func(what, credential string, limit, left int) {
				t.Helper()
				ctx, info := callAs(credential)
				r, err := c.identity.GetIDToken(ctx, req)
				h := info.ResponseHeader()
				if err != nil || r.GetToken() == "" || h.Get("X-RateLimit-Limit") != strconv.Itoa(limit) ||
					h.Get("RateLimit-Remaining") != strconv.Itoa(left) || h.Get("Retry-After") != "" {
					t.Fatalf("%s: GetIDToken = %v, headers %v; want a token, limit %d with %d left", what, err, h, limit, left)
				}
			}
			// refused calls GetIDToken with credential and wants
			// resource_exhausted, no token, and the headers of the empty
			// bucket with Retry-After (about 1000 s: one token a 1000 s).
			refused := func(what, credential string, limit int) {
				t.Helper()
				ctx, _ := callAs(credential)
				r, err := c.identity.GetIDToken(ctx, req)
				ce, _ := err.(*connect.Error)
				if connect.CodeOf(err) != connect.CodeResourceExhausted || r.GetToken() != "" || ce == nil {
					t.Fatalf("%s: GetIDToken = %v, %v; want resource_exhausted and no token", what, r, err)
				}
				m := ce.Meta()
				retry, _ := strconv.Atoi(m.Get("Retry-After"))
				if retry < 900 || retry > 1000 || m.Get("X-RateLimit-Limit") != strconv.Itoa(limit) || m.Get("X-RateLimit-Remaining") != "0" ||
					m.Get("RateLimit-Limit") != strconv.Itoa(limit) {
					t.Errorf("%s: refusal headers %v; want Retry-After ≈1000, limit %d, none left", what, m, limit)
				}
			}

			// A PAT: its principal's bucket, whichever of its PATs asks.
			allowed("the user's PAT", e.secret, 2, 1)
			allowed("the user's second PAT", second, 2, 0)
			refused("the user's PAT, bucket spent", e.secret, 2)
			refused("the user's second PAT, bucket spent", second, 2)
			// Another principal is not affected.
			allowed("the admin's PAT", e.admin, 2, 1)

			// A token of pool ci: the pool's bucket, not the principal's
			// (spent above). The token endpoint takes from the same
			// bucket: once exchanges there have spent it, GetIDToken is
			// refused too.
			ci := e.accessToken(t, "", "ci")
			allowed("a token of pool ci", ci, 3, 2)
			for range 2 {
				if d, _ := lim.AllowBy("", "", "ci"); !d.Allowed {
					t.Fatalf("token endpoint at pool ci refused early: %+v", d)
				}
			}
			if d, by := lim.AllowBy("", "", "ci"); d.Allowed || by != ratelimit.Pool {
				t.Fatalf("token endpoint at pool ci = %+v by %v, want refused per pool", d, by)
			}
			refused("a token of pool ci, whose bucket the token endpoint spent", ci, 3)
			// Another pool is not affected.
			allowed("a token of pool cd", e.accessToken(t, "", "cd"), 3, 2)

			// A token issued to a registered client: the client's bucket.
			issued := e.accessToken(t, clientID, "")
			allowed("a client's token", issued, 2, 1)
			allowed("a client's token", issued, 2, 0)
			refused("a client's token, bucket spent", issued, 2)

			// Each refusal left a refused event, reason rate_limited, and
			// signed nothing; each issue an issued one.
			var issuedN, refusedN int
			for _, ev := range sa.events()[before:] {
				switch {
				case ev.Action != ActionTokenIDToken:
					t.Errorf("unexpected event %+v", ev)
				case ev.Outcome == outcomeIssued:
					issuedN++
				case ev.Outcome == outcomeRefused && strings.Contains(ev.Detail, `"reason":"rate_limited"`):
					refusedN++
				default:
					t.Errorf("event %+v, want issued or refused rate_limited", ev)
				}
			}
			if issuedN != 7 || refusedN != 4 {
				t.Errorf("%d issued and %d refused events, want 7 and 4", issuedN, refusedN)
			}
		})
	}
}

// TestCreateExchangeTokenRateLimited is docs/security.md A-57 for
// ExchangeToken: it signs an access token on each call but presents no
// credential of ours (the exchange token is one, spent atomically, so a
// refusal after it would spend it), so the token it signs is paid for
// when CreateExchangeToken makes the exchange token, by the credential
// asking for it, from the buckets GetIDToken takes from. A refused call
// stores nothing. The admin's bucket of 2 is shared by every protocol:
// the first two calls are admitted, every later one refused.
func TestCreateExchangeTokenRateLimited(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.h.SetTokenLimits(ratelimit.Limits{PerClient: ratelimit.NewMemory(ratelimit.Rule{Rate: 0.001, Burst: 2}, ratelimit.MemoryOptions{})})
	protocols := e.protocols()
	names := slices.Sorted(maps.Keys(protocols))
	for i, name := range append(names, names...) {
		c := protocols[name]
		_, err := c.principal.CreateExchangeToken(as(e.admin), &stsv1.CreateExchangeTokenRequest{
			PrincipalId: e.user.ID, ValidFor: durationpb.New(time.Minute)})
		if i < 2 {
			if err != nil {
				t.Errorf("%s: CreateExchangeToken %d = %v, want an exchange token", name, i, err)
			}
			continue
		}
		if connect.CodeOf(err) != connect.CodeResourceExhausted {
			t.Errorf("%s: CreateExchangeToken %d = %v, want resource_exhausted", name, i, err)
		}
		// GetIDToken takes from the same bucket (the admin's PAT).
		if _, err := c.identity.GetIDToken(as(e.admin), &gitpodv1.GetIDTokenRequest{Audience: []string{"rp"}}); connect.CodeOf(err) != connect.CodeResourceExhausted {
			t.Errorf("%s: GetIDToken with the admin's bucket spent = %v, want resource_exhausted", name, err)
		}
	}
	// Exactly the admitted calls made exchange tokens.
	evs, err := e.store.ListAudit(t.Context(), storage.AuditFilter{Action: pat.ActionExchangeMint})
	if err != nil || len(evs) != 2 {
		t.Errorf("exchange tokens created: %d events (%v), want 2", len(evs), err)
	}
}
