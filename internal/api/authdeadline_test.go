package api

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"

	gitpodv1 "github.com/opensts/sts/internal/gen/gitpod/v1"
	"github.com/opensts/sts/internal/pat"
	"github.com/opensts/sts/internal/storage"
)

// stallStore stalls GetPATByDigest (authentication) and ListPATs (a
// procedure), while stall is set, until the call's context ends or 5 s
// pass: storage that stopped answering.
type stallStore struct {
	storage.Store
	stall atomic.Bool
}

func (s *stallStore) wait(ctx context.Context) error {
	if !s.stall.Load() {
		return nil
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(5 * time.Second):
		return context.DeadlineExceeded
	}
}

func (s *stallStore) GetPATByDigest(ctx context.Context, digest []byte) (storage.PAT, error) {
	if err := s.wait(ctx); err != nil {
		return storage.PAT{}, err
	}
	return s.Store.GetPATByDigest(ctx, digest)
}

func (s *stallStore) ListPATs(ctx context.Context, ownerID string) ([]storage.PAT, error) {
	if err := s.wait(ctx); err != nil {
		return nil, err
	}
	return s.Store.ListPATs(ctx, ownerID)
}

// TestCallerDeadlineBoundsAuthentication: the caller's deadline
// (Connect-Timeout-Ms, grpc-timeout) bounds authentication too, not only
// the procedure: the PAT lookup of a call whose deadline is 300 ms, on
// storage that stopped answering, ends at that deadline and the call is
// deadline_exceeded, where it used to wait on storage far beyond it
// (docs/security.md T-121). The header is sent without a client-side
// deadline, as a proxy or a client that leaves the deadline to the
// server sends it, so the server's own answer is what the client gets.
// Generated gitpod.v1 clients over Connect+proto, Connect+JSON and gRPC.
func TestCallerDeadlineBoundsAuthentication(t *testing.T) {
	// Sequential: it bounds the answer to 250 ms–2 s, which parallel
	// tests' load would stretch.
	ss := &stallStore{Store: newSQLiteStore(t)}
	e := newEnvOn(t, ss, nil)
	for name, c := range e.gitpodProtocols(t) {
		t.Run(name, func(t *testing.T) {
			secret := e.mintPAT(e.user.ID, pat.ScopeIDToken, pat.ScopeTokensRead) // never used: not cached
			ctx, info := connect.NewClientContext(context.Background())
			info.RequestHeader().Set("Authorization", "Bearer "+secret)
			if name == "grpc" {
				info.RequestHeader().Set("Grpc-Timeout", "300m")
			} else {
				info.RequestHeader().Set("Connect-Timeout-Ms", "300")
			}
			ss.stall.Store(true)
			start := time.Now()
			_, err := c.identity.GetIDToken(ctx, &gitpodv1.GetIDTokenRequest{Audience: []string{"a"}})
			took := time.Since(start)
			ss.stall.Store(false)
			wantCode(t, "GetIDToken on stalled storage", err, connect.CodeDeadlineExceeded)
			if took < 250*time.Millisecond || took > 2*time.Second {
				t.Errorf("answered after %v, want about the caller's 300 ms", took)
			}
			// The same PAT, storage answering again, works: without the
			// 300 ms deadline, which a loaded machine's whole call
			// (authentication and signing) may exceed.
			plain, pinfo := connect.NewClientContext(context.Background())
			pinfo.RequestHeader().Set("Authorization", "Bearer "+secret)
			if _, err := c.identity.GetIDToken(plain, &gitpodv1.GetIDTokenRequest{Audience: []string{"a"}}); err != nil {
				t.Errorf("GetIDToken once storage answers: %v", err)
			}
			// The PAT now authenticated from the cache, a procedure's own
			// wait ends at the caller's deadline alike.
			ss.stall.Store(true)
			start = time.Now()
			_, err = c.user.ListPersonalAccessTokens(ctx, &gitpodv1.ListPersonalAccessTokensRequest{})
			took = time.Since(start)
			ss.stall.Store(false)
			wantCode(t, "ListPersonalAccessTokens on stalled storage", err, connect.CodeDeadlineExceeded)
			if took < 250*time.Millisecond || took > 2*time.Second {
				t.Errorf("ListPersonalAccessTokens answered after %v, want about the caller's 300 ms", took)
			}
		})
	}
}

// TestCallerDeadlineParse: the caller's deadline is read as connect reads
// it; a malformed value gives none (connect then refuses the call), and so
// does a grpc-timeout too large for a time.Duration (connect serves the
// call without a deadline). Connect-Timeout-Ms cannot overflow: 10 digits
// of milliseconds are at most about 115 days.
func TestCallerDeadlineParse(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_000_000, 0)
	for _, tc := range []struct {
		ctype, header, value string
		want                 time.Duration // -1: none
	}{
		{"application/json", "Connect-Timeout-Ms", "300", 300 * time.Millisecond},
		{"application/proto", "Connect-Timeout-Ms", "9999999999", 9999999999 * time.Millisecond},
		{"application/json", "Connect-Timeout-Ms", "", -1},
		{"application/json", "Connect-Timeout-Ms", "12345678901", -1},
		{"application/json", "Connect-Timeout-Ms", "-5", -1},
		{"application/json", "Connect-Timeout-Ms", "1.5", -1},
		{"application/json", "Grpc-Timeout", "300m", -1}, // Connect reads its own header only
		{"application/grpc", "Grpc-Timeout", "300m", 300 * time.Millisecond},
		{"application/grpc+proto", "Grpc-Timeout", "2S", 2 * time.Second},
		{"application/grpc-web+proto", "Grpc-Timeout", "1H", time.Hour},
		{"application/grpc", "Grpc-Timeout", "99999999u", 99999999 * time.Microsecond},
		{"application/grpc", "Grpc-Timeout", "99999999M", 99999999 * time.Minute},
		// The most hours a time.Duration holds; beyond, the product would
		// wrap negative: no deadline, as connect (and grpc-go) read it.
		{"application/grpc", "Grpc-Timeout", "2562047H", 2562047 * time.Hour},
		{"application/grpc", "Grpc-Timeout", "2562048H", -1},
		{"application/grpc", "Grpc-Timeout", "99999999H", -1},
		{"application/grpc", "Grpc-Timeout", "123456789m", -1},
		{"application/grpc", "Grpc-Timeout", "5x", -1},
		{"application/grpc", "Grpc-Timeout", "m", -1},
		{"application/grpc", "Connect-Timeout-Ms", "300", -1},
	} {
		r, _ := http.NewRequest(http.MethodPost, "/", nil)
		r.Header.Set("Content-Type", tc.ctype)
		r.Header.Set(tc.header, tc.value)
		d, ok := callerDeadline(r, now)
		if tc.want < 0 {
			if ok {
				t.Errorf("%s %s: %q gave %v, want none", tc.ctype, tc.header, tc.value, d.Sub(now))
			}
		} else if !ok || d.Sub(now) != tc.want {
			t.Errorf("%s %s: %q gave %v %v, want %v", tc.ctype, tc.header, tc.value, d.Sub(now), ok, tc.want)
		}
	}
}

// TestHugeGrpcTimeoutIsNoDeadline: a gRPC call whose grpc-timeout is more
// hours than a time.Duration holds is served, as connect serves it with no
// deadline; the product wrapped negative, so the middleware put the
// deadline in the past and every such call was deadline_exceeded.
// Generated gitpod.v1 client over gRPC.
func TestHugeGrpcTimeoutIsNoDeadline(t *testing.T) {
	t.Parallel()
	e := newEnvOn(t, newSQLiteStore(t), nil)
	c := e.gitpodProtocols(t)["grpc"]
	secret := e.mintPAT(e.user.ID, pat.ScopeIDToken)
	for _, v := range []string{"2562047H", "2562048H", "99999999H"} {
		ctx, info := connect.NewClientContext(context.Background())
		info.RequestHeader().Set("Authorization", "Bearer "+secret)
		info.RequestHeader().Set("Grpc-Timeout", v)
		if _, err := c.identity.GetIDToken(ctx, &gitpodv1.GetIDTokenRequest{Audience: []string{"a"}}); err != nil {
			t.Errorf("GetIDToken with grpc-timeout %s: %v", v, err)
		}
	}
}

// TestCallerDeadlinePassedIsDeadlineExceeded: a call whose own deadline
// has passed by the time its procedure reads storage (Connect-Timeout-Ms
// 0, grpc-timeout 1n; its PAT checked from the cache) is
// deadline_exceeded, as a wait the deadline ends is (docs/security.md
// T-121): storage gives the context's bare error there, which was answered
// internal with an ERROR log line, at the will of any caller holding a PAT.
// Generated gitpod.v1 clients over Connect+proto, Connect+JSON and gRPC.
func TestCallerDeadlinePassedIsDeadlineExceeded(t *testing.T) {
	t.Parallel()
	e := newEnvOn(t, newSQLiteStore(t), nil)
	for name, c := range e.gitpodProtocols(t) {
		t.Run(name, func(t *testing.T) {
			ctx, info := connect.NewClientContext(context.Background())
			info.RequestHeader().Set("Authorization", "Bearer "+e.mintPAT(e.user.ID, pat.ScopeIDToken, pat.ScopeTokensRead))
			if _, err := c.user.ListPersonalAccessTokens(ctx, &gitpodv1.ListPersonalAccessTokensRequest{}); err != nil {
				t.Fatalf("without a deadline: %v", err)
			}
			if name == "grpc" {
				info.RequestHeader().Set("Grpc-Timeout", "1n")
			} else {
				info.RequestHeader().Set("Connect-Timeout-Ms", "0")
			}
			_, err := c.identity.GetIDToken(ctx, &gitpodv1.GetIDTokenRequest{Audience: []string{"a"}})
			wantCode(t, "GetIDToken past the caller's deadline", err, connect.CodeDeadlineExceeded)
			_, err = c.user.ListPersonalAccessTokens(ctx, &gitpodv1.ListPersonalAccessTokensRequest{})
			wantCode(t, "ListPersonalAccessTokens past the caller's deadline", err, connect.CodeDeadlineExceeded)
		})
	}
}
