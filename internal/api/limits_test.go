package api

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/opensts/sts/internal/clientip"
	"github.com/opensts/sts/internal/ratelimit"
)

// gzipBomb is a gzip stream of n bytes that decode as a protobuf message
// with one huge string field (field 1), about n/1000 bytes compressed.
func gzipBomb(t *testing.T, n int) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	head := protowire.AppendTag(nil, 1, protowire.BytesType)
	head = protowire.AppendVarint(head, uint64(n))
	zw.Write(head)
	chunk := bytes.Repeat([]byte{'a'}, 1<<16)
	for left := n; left > 0; left -= len(chunk) {
		zw.Write(chunk[:min(left, len(chunk))])
	}
	zw.Close()
	return buf.Bytes()
}

// TestCompressedBodiesBounded: a 64 MiB message gzipped into a request
// that fits the wire limit is refused after at most the message limit
// (plus one byte) is inflated, on the public ExchangeToken (Connect and
// gRPC framing) and on the gRPC health check. The refusal does not report
// the inflated size: had the server inflated the whole bomb to measure it,
// the size would be in the message.
func TestCompressedBodiesBounded(t *testing.T) {
	e := newEnv(t, nil)
	const inflated = 64 << 20
	bomb := gzipBomb(t, inflated)
	if len(bomb) > 100<<10 {
		t.Fatalf("bomb is %d bytes compressed", len(bomb))
	}
	grpcFrame := func(b []byte) []byte {
		out := make([]byte, 5, 5+len(b))
		out[0] = 1 // compressed
		binary.BigEndian.PutUint32(out[1:], uint32(len(b)))
		return append(out, b...)
	}
	for name, req := range map[string]func() *http.Request{
		"connect ExchangeToken": func() *http.Request {
			r, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/gitpod.v1.IdentityService/ExchangeToken", bytes.NewReader(bomb))
			r.Header.Set("Content-Type", "application/proto")
			r.Header.Set("Content-Encoding", "gzip")
			return r
		},
		"grpc ExchangeToken": func() *http.Request {
			r, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/gitpod.v1.IdentityService/ExchangeToken", bytes.NewReader(grpcFrame(bomb)))
			r.Header.Set("Content-Type", "application/grpc")
			r.Header.Set("Grpc-Encoding", "gzip")
			r.Header.Set("Te", "trailers")
			return r
		},
		"grpc health Check": func() *http.Request {
			r, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/grpc.health.v1.Health/Check", bytes.NewReader(grpcFrame(bomb)))
			r.Header.Set("Content-Type", "application/grpc")
			r.Header.Set("Grpc-Encoding", "gzip")
			r.Header.Set("Te", "trailers")
			return r
		},
	} {
		t.Run(name, func(t *testing.T) {
			res, err := e.srv.Client().Do(req())
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			msg := string(body) + res.Header.Get("Grpc-Message") + res.Trailer.Get("Grpc-Message")
			status := res.Header.Get("Grpc-Status") + res.Trailer.Get("Grpc-Status")
			if res.StatusCode == http.StatusOK && status == "0" {
				t.Fatalf("bomb accepted: %s", msg)
			}
			if strings.Contains(msg, "67108") || !strings.Contains(msg, "larger than") {
				t.Errorf("status %d grpc-status %q message %q: want a refusal that did not inflate the whole body", res.StatusCode, status, msg)
			}
		})
	}
}

// TestExchangeTokenRateLimited: the public ExchangeToken takes a token
// from the per-IP bucket before doing any work, and answers
// resource_exhausted with Retry-After once it is empty.
func TestExchangeTokenRateLimited(t *testing.T) {
	e := newEnv(t, func(h *Handler) {
		h.PublicLimit = ratelimit.NewMemory(ratelimit.Rule{Rate: 0.001, Burst: 2}, ratelimit.MemoryOptions{})
	})
	call := func() *http.Response {
		r, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/gitpod.v1.IdentityService/ExchangeToken", strings.NewReader(`{"exchangeToken":"x"}`))
		r.Header.Set("Content-Type", "application/json")
		res, err := e.srv.Client().Do(r)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return res
	}
	for i := range 2 {
		if res := call(); res.StatusCode == http.StatusTooManyRequests {
			t.Fatalf("call %d limited", i)
		}
	}
	res := call()
	if res.StatusCode != http.StatusTooManyRequests || res.Header.Get("Retry-After") == "" {
		t.Errorf("third call = %d, Retry-After %q; want 429 with Retry-After", res.StatusCode, res.Header.Get("Retry-After"))
	}
	// Authenticated procedures are not charged to the public bucket.
	r, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/gitpod.v1.IdentityService/GetAuthenticatedIdentity", strings.NewReader(`{}`))
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("Authorization", "Bearer "+e.secret)
	res2, err := e.srv.Client().Do(r)
	if err != nil {
		t.Fatal(err)
	}
	res2.Body.Close()
	if res2.StatusCode != http.StatusOK {
		t.Errorf("GetAuthenticatedIdentity = %d", res2.StatusCode)
	}
}

// TestExchangeTokenIPv6Prefix is docs/security.md T-79: an IPv6 client
// holds at least a /64 and can send each call from a new address in it.
// The public ExchangeToken must charge the /64 (ratelimit.IPBucket, the
// key of every other per-IP limit), so 50 addresses of one /64 share a
// bucket of 2, while a neighbouring /64 keeps its own.
func TestExchangeTokenIPv6Prefix(t *testing.T) {
	e := newEnv(t, func(h *Handler) {
		h.PublicLimit = ratelimit.NewMemory(ratelimit.Rule{Rate: 0.001, Burst: 2}, ratelimit.MemoryOptions{})
	})
	call := func(ip string) int {
		r := httptest.NewRequest(http.MethodPost, "/gitpod.v1.IdentityService/ExchangeToken", strings.NewReader(`{"exchangeToken":"x"}`))
		r.Header.Set("Content-Type", "application/json")
		// As the server's middleware stores the resolved client address.
		r = r.WithContext(clientip.WithIP(r.Context(), ip))
		w := httptest.NewRecorder()
		e.srv.Config.Handler.ServeHTTP(w, r)
		return w.Code
	}
	allowed := 0
	for i := range 50 {
		if call(fmt.Sprintf("2001:db8:1:2::%x", i+1)) != http.StatusTooManyRequests {
			allowed++
		}
	}
	if allowed != 2 {
		t.Errorf("50 addresses of one /64, burst 2: %d calls allowed, want 2", allowed)
	}
	if got := call("2001:db8:1:3::1"); got == http.StatusTooManyRequests {
		t.Errorf("a client of another /64 = %d, want its own bucket", got)
	}
}
