package api

import (
	"compress/gzip"
	"errors"
	"io"
	"net/http"

	"connectrpc.com/connect"

	"github.com/opensts/sts/internal/clientip"
	"github.com/opensts/sts/internal/ratelimit"
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

// readLimit caps a handler's decoded messages at max bytes, compressed or
// not: the message limit plus the bounded gzip decompressor (the only
// compression connect handlers accept).
func readLimit(max int64) connect.HandlerOption {
	return connect.WithHandlerOptions(
		connect.WithReadMaxBytes(int(max)),
		connect.WithCompression("gzip",
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

// remoteIP is the client address the server resolved for r (the TCP peer,
// or the client behind a trusted proxy), from which every per-IP limit
// takes its key with ratelimit.IPBucket.
func remoteIP(r *http.Request) string { return clientip.FromRequest(r) }
