package api

import (
	"compress/gzip"
	"context"
	"errors"
	"io"
	"net/http"

	"connectrpc.com/connect"

	"github.com/opensts/sts/internal/clientip"
	"github.com/opensts/sts/internal/ratelimit"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/sts"
)

// errInflatedTooLarge ends a decompression that passed its cap.
var errInflatedTooLarge = errors.New("decompressed message over the limit")

// cappedGzip is connect's gzip decompressor with a hard cap on the bytes
// it inflates. connect.WithReadMaxBytes alone stops reading the message at
// the limit but then inflates the rest to report its size, so a 62 KiB
// body could cost 64 MiB of inflation; this reader fails at limit+1
// bytes instead, and the message is refused as resource_exhausted either
// way.
type cappedGzip struct {
	gz   gzip.Reader
	max  int64
	left int64
}

func (c *cappedGzip) Read(p []byte) (int, error) {
	if c.left <= 0 {
		return 0, errInflatedTooLarge
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.gz.Read(p)
	c.left -= int64(n)
	return n, err
}

func (c *cappedGzip) Reset(r io.Reader) error {
	c.left = c.max + 1 // connect reads limit+1 bytes to detect "over"
	return c.gz.Reset(r)
}

func (c *cappedGzip) Close() error { return c.gz.Close() }

// messageCompression is the one compression of a message every service
// reads and names in its accept headers; headerRefusal judges a call's by
// it too, so the two cannot drift.
const messageCompression = "gzip"

// readLimit caps a handler's decoded messages at max bytes, compressed or
// not: the message limit plus the bounded gzip decompressor (the only
// compression connect handlers accept).
func readLimit(max int64) connect.HandlerOption {
	return connect.WithHandlerOptions(
		connect.WithReadMaxBytes(int(max)),
		connect.WithCompression(messageCompression,
			func() connect.Decompressor { return &cappedGzip{max: max} },
			func() connect.Compressor { return gzip.NewWriter(nil) },
		),
	)
}

// limitPublic charges requests to the public procedures (those that need
// no credential, such as ExchangeToken) to the per-IP bucket before any
// work, and answers resource_exhausted (HTTP 429 on Connect) with the
// rate-limit headers once the bucket is empty. The bucket is the client's
// ratelimit.IPBucket, its /64 for IPv6: an IPv6 client holds at least a
// /64 and would otherwise take a fresh bucket with each address in it
// (docs/security.md T-79). A nil limiter disables it.
func limitPublic(lim ratelimit.Limiter, ew *connect.ErrorWriter, w http.ResponseWriter, r *http.Request) bool {
	if lim == nil {
		return true
	}
	d := lim.Allow(ratelimit.PrefixIP + ratelimit.IPBucket(remoteIP(r)))
	ratelimit.WriteHeaders(w.Header(), d) // nothing for a disabled rule
	if d.Allowed {
		return true
	}
	_ = ew.Write(w, r, connect.NewError(connect.CodeResourceExhausted, errors.New("rate limited; retry later")))
	return false
}

// SetPublicLimit makes the public procedures take from l instead of
// PublicLimit: serve hands it the per-IP bucket it keeps in Redis when
// rate_limits.redis_url is set, so the replicas share it as they share
// every other limit (docs/security.md T-155). A nil l disables the limit.
// Safe while serving.
func (h *Handler) SetPublicLimit(l ratelimit.Limiter) { h.publicLimit.Store(&l) }

// publicLimiter is the per-IP bucket of the public procedures: the one
// SetPublicLimit supplied, else PublicLimit.
func (h *Handler) publicLimiter() ratelimit.Limiter {
	if l := h.publicLimit.Load(); l != nil {
		return *l
	}
	return h.PublicLimit
}

// FailedAuth is what holds back a source address whose bearer credentials
// fail authentication (docs/security.md T-247): one for every procedure
// (F-117), charging the public procedures' per-IP bucket (publicLimiter).
// serve hands the same one to UserInfo and introspection, so an address
// refused at one is refused at all (T-248).
func (h *Handler) FailedAuth() *ratelimit.FailedAuth {
	h.failedAuthOnce.Do(func() { h.failedAuth = &ratelimit.FailedAuth{Limit: h.publicLimiter} })
	return h.failedAuth
}

// remoteIP is the client address the server resolved for r (the TCP peer,
// or the client behind a trusted proxy), from which every per-IP limit
// takes its key with ratelimit.IPBucket.
func remoteIP(r *http.Request) string { return clientip.FromRequest(r) }

// reasonRateLimited is the audit reason of a call a rate limit refused,
// the token endpoint's (grants.ReasonRateLimited).
const reasonRateLimited = "rate_limited"

// errRateLimited refuses a call whose credential's bucket is empty
// (resource_exhausted, HTTP 429 on Connect, as ExchangeToken's per-IP
// refusal); limitCredential has put the rate-limit headers, Retry-After
// included, on the response.
var errRateLimited = sts.Errorf(sts.ResourceExhausted, "rate limited; retry later")

// SetTokenLimits makes the procedures that sign a token for the caller's
// credential take from l, the token endpoints' buckets (rate_limits, in
// memory or in Redis): GetIDToken, and CreateExchangeToken for the access
// token ExchangeToken signs in return. Safe while serving. Until it is
// called they take from none (a test double): serve calls it before Ready.
func (h *Handler) SetTokenLimits(l ratelimit.Limits) { h.tokenLimits.Store(&l) }

// limitCredential charges id's credential to the buckets the token
// endpoint charged when it was issued, before a procedure signs a token
// for it (docs/security.md A-57): its registered client's
// (rate_limits.per_client) and the pool it was exchanged at
// (rate_limits.per_pool), or, with neither (a PAT, a token issued to no
// client outside any pool), its principal's, under per_client's rule
// (ratelimit.Limits.AllowCredential). Without it the bearer API minted ID
// tokens as fast as the CPU signs them, for a workload its pool's bucket
// holds back at the token endpoint too. It answers errRateLimited once a
// bucket is empty, and writes the binding bucket's headers on every
// answer, as the token endpoint does; a refusal is logged as the token
// endpoint's are, its per-procedure count is the interceptor's.
func (h *Handler) limitCredential(ctx context.Context, id *Identity) error {
	l := h.tokenLimits.Load()
	if l == nil {
		return nil
	}
	client, pool := credentialBuckets(id)
	d, by := l.AllowCredential(client, pool, id.PrincipalID)
	ci, ok := connect.CallInfoForHandlerContext(ctx)
	if ok {
		ratelimit.WriteHeaders(ci.ResponseHeader(), d) // nothing when every bucket is disabled
	}
	if d.Allowed {
		return nil
	}
	procedure := ""
	if ok {
		procedure = ci.Spec().Procedure
	}
	h.logger().InfoContext(ctx, "api: call refused", "procedure", procedure, "code", connect.CodeResourceExhausted.String(),
		"reason", reasonRateLimited, "bucket", by.String(), "principal", id.PrincipalID, "client", client, "pool", pool,
		"request_id", id.RequestID)
	return errRateLimited
}

// credentialBuckets names the client and pool buckets of id's
// credential: for one of our access tokens, the registered client it was
// issued to (a client_id that is a client's UUID; ExchangeToken's
// "sts-api" names none) and the pool it was exchanged at; a PAT has
// neither.
func credentialBuckets(id *Identity) (client, pool string) {
	if c := id.Claims; c != nil {
		if storage.IsUUID(c.ClientID) {
			client = c.ClientID
		}
		pool = c.Pool
	}
	return client, pool
}
