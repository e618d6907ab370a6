package api

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"encoding/binary"
	"fmt"
	"hash/crc32"
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
//
// Compressing the n bytes would cost seconds of CPU under the race
// detector (12 s of this package's run for 64 MiB), so the stream is put
// together from deflate blocks compressed once: the message's head and its
// first bytes, then one block for 1 MiB of 'a' that is repeated. Each ends
// on a sync flush (byte-aligned, not final), and the repeated one is
// compressed with 32 KiB of 'a' as its dictionary, which is what the
// window holds wherever it stands in the stream. TestGzipBombDecodes
// inflates a smaller one and compares it byte for byte.
func gzipBomb(t testing.TB, n int) []byte {
	t.Helper()
	const (
		window = 32 << 10 // how far back a deflate match may reach
		chunk  = 1 << 20  // the 'a's of the repeated block
	)
	head := protowire.AppendTag(nil, 1, protowire.BytesType)
	head = protowire.AppendVarint(head, uint64(n))
	block := func(dict, data []byte) []byte {
		var b bytes.Buffer
		zw, err := flate.NewWriterDict(&b, flate.BestCompression, dict)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := zw.Write(data); err != nil {
			t.Fatal(err)
		}
		if err := zw.Flush(); err != nil {
			t.Fatal(err)
		}
		return b.Bytes()
	}
	// The first block carries what the repeated ones do not: the head and
	// n%chunk 'a's, at least a window of them when a block follows.
	first := n % chunk
	if first < window && n >= chunk {
		first += chunk
	}
	data := append(bytes.Clone(head), bytes.Repeat([]byte{'a'}, first)...)
	// gzip header (RFC 1952): deflate, no flags, no mtime, unknown OS.
	out := []byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff}
	out = append(out, block(nil, data)...)
	crc := crc32.ChecksumIEEE(data)
	as := bytes.Repeat([]byte{'a'}, chunk)
	repeated := block(as[:window], as)
	for left := n - first; left > 0; left -= chunk {
		out = append(out, repeated...)
		crc = crc32.Update(crc, crc32.IEEETable, as)
	}
	// An empty, final stored block; then the trailer: CRC-32 and size.
	out = append(out, 0x01, 0x00, 0x00, 0xff, 0xff)
	out = binary.LittleEndian.AppendUint32(out, crc)
	return binary.LittleEndian.AppendUint32(out, uint32(len(head)+n))
}

// TestGzipBombDecodes: gzipBomb's stream, put together from repeated
// blocks, is one gzip member whose checksum and size hold and whose
// content is the message head followed by n 'a's, for sizes with and
// without repeated blocks.
func TestGzipBombDecodes(t *testing.T) {
	t.Parallel()
	for _, n := range []int{0, 100, 2<<20 + 12345, 2<<20 + 40<<10} {
		bomb := gzipBomb(t, n)
		r := bytes.NewReader(bomb)
		zr, err := gzip.NewReader(r)
		if err != nil {
			t.Fatalf("n=%d: %v", n, err)
		}
		zr.Multistream(false)
		got, err := io.ReadAll(zr)
		if err != nil {
			t.Fatalf("n=%d: inflate: %v", n, err)
		}
		if r.Len() != 0 {
			t.Fatalf("n=%d: %d bytes after the gzip member", n, r.Len())
		}
		head := protowire.AppendTag(nil, 1, protowire.BytesType)
		head = protowire.AppendVarint(head, uint64(n))
		want := append(head, bytes.Repeat([]byte{'a'}, n)...)
		if !bytes.Equal(got, want) {
			t.Fatalf("n=%d: inflated %d bytes, want the head and %d 'a's (%d bytes)", n, len(got), n, len(want))
		}
	}
}

// TestCompressedBodiesBounded: a 64 MiB message gzipped into a request
// that fits the wire limit is refused after at most the message limit
// (plus one byte) is inflated, on the public ExchangeToken (Connect and
// gRPC framing) and on the gRPC health check. The refusal does not report
// the inflated size: had the server inflated the whole bomb to measure it,
// the size would be in the message.
func TestCompressedBodiesBounded(t *testing.T) {
	t.Parallel()
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
	t.Parallel()
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
	t.Parallel()
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
