package api

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"

	gitpodv1 "github.com/opensts/sts/internal/gen/gitpod/v1"
	"github.com/opensts/sts/internal/gen/gitpod/v1/gitpodv1connect"
	"github.com/opensts/sts/internal/pat"
	"github.com/opensts/sts/internal/storage"
)

// stallingStore holds ListPATs until the call's context ends, after
// telling entered: a storage call under way when the caller goes.
type stallingStore struct {
	storage.Store
	entered chan struct{}
	auth    *atomic.Bool // when set, GetPATByDigest stalls too
}

func (s stallingStore) GetPATByDigest(ctx context.Context, digest []byte) (storage.PAT, error) {
	if !s.auth.Load() {
		return s.Store.GetPATByDigest(ctx, digest)
	}
	s.entered <- struct{}{}
	<-ctx.Done()
	return storage.PAT{}, ctx.Err()
}

func (s stallingStore) ListPATs(ctx context.Context, owner string) ([]storage.PAT, error) {
	s.entered <- struct{}{}
	<-ctx.Done()
	return nil, ctx.Err()
}

// codeRecorder is an outermost interceptor, where serve counts
// per-procedure metrics: it records the code each call ended with.
type codeRecorder struct {
	mu    sync.Mutex
	codes []connect.Code
}

func (r *codeRecorder) interceptor() connect.UnaryInterceptorFunc {
	return func(next connect.UnaryFunc) connect.UnaryFunc {
		return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
			res, err := next(ctx, req)
			r.mu.Lock()
			r.codes = append(r.codes, connect.CodeOf(err))
			r.mu.Unlock()
			return res, err
		}
	}
}

// TestClientCancelIsCanceled: a caller that gives up while its call waits
// on storage (it cancels, or its own deadline passes on its side first,
// and the stream is reset) ends the call as canceled, the code connect and
// every connect-go server (Gitpod's too) give a context canceled, in every
// protocol, and logs no error: not internal or unavailable with an ERROR
// line, which an operator would read as a fault of sts or of its database
// (docs/security.md F-105).
func TestClientCancelIsCanceled(t *testing.T) {
	t.Parallel()
	entered := make(chan struct{}, 1)
	rec := &codeRecorder{}
	logs := &syncBuffer{}
	auth := new(atomic.Bool)
	refused := make(chan connect.Code, 1)
	e := newEnvOn(t, stallingStore{Store: newSQLiteStore(t), entered: entered, auth: auth}, func(h *Handler) {
		h.Interceptors = []connect.Interceptor{rec.interceptor()}
		h.OnRefused = func(_ string, code connect.Code) { refused <- code }
		h.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	})
	url, hc := e.h2c(t)
	protocols := []struct {
		name string
		opts []connect.ClientOption
	}{
		{"connect-proto", nil},
		{"connect-json", []connect.ClientOption{connect.WithProtoJSON()}},
		{"grpc", []connect.ClientOption{connect.WithGRPC()}},
		{"grpc-web", []connect.ClientOption{connect.WithGRPCWeb()}},
	}
	for _, p := range protocols {
		c := gitpodv1connect.NewUserServiceClient(hc, url, p.opts...)
		ctx, cancel := context.WithCancel(as(e.secret))
		go func() {
			<-entered
			cancel()
		}()
		_, err := c.ListPersonalAccessTokens(ctx, &gitpodv1.ListPersonalAccessTokensRequest{})
		wantCode(t, p.name+": the caller's own view", err, connect.CodeCanceled)
		deadline := time.Now().Add(5 * time.Second)
		for {
			rec.mu.Lock()
			n := len(rec.codes)
			rec.mu.Unlock()
			if n > 0 || time.Now().After(deadline) {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		rec.mu.Lock()
		got := rec.codes
		rec.codes = nil
		rec.mu.Unlock()
		if len(got) != 1 || got[0] != connect.CodeCanceled {
			t.Errorf("%s: the server ended the call as %v, want [canceled]", p.name, got)
		}
	}
	// The same while authentication waits on storage: the middleware's
	// refusal, which per-procedure metrics count through OnRefused.
	fresh := e.mintPAT(e.user.ID, pat.ScopeTokensRead)
	auth.Store(true)
	for _, p := range protocols {
		c := gitpodv1connect.NewUserServiceClient(hc, url, p.opts...)
		ctx, cancel := context.WithCancel(as(fresh))
		go func() {
			<-entered
			cancel()
		}()
		_, err := c.ListPersonalAccessTokens(ctx, &gitpodv1.ListPersonalAccessTokensRequest{})
		wantCode(t, p.name+" (authentication): the caller's own view", err, connect.CodeCanceled)
		select {
		case code := <-refused:
			if code != connect.CodeCanceled {
				t.Errorf("%s: authentication ended the call as %v, want canceled", p.name, code)
			}
		case <-time.After(5 * time.Second):
			t.Errorf("%s: authentication reported no refusal", p.name)
		}
	}
	if s := logs.String(); strings.Contains(s, "level=ERROR") {
		t.Errorf("a caller that went away was logged as an error:\n%s", s)
	}
}
