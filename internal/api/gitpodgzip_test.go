package api

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	_ "google.golang.org/grpc/encoding/gzip" // registers grpc-go's "gzip" compressor
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	gitpodv1 "github.com/opensts/sts/internal/gen/gitpod/v1"
	"github.com/opensts/sts/internal/gen/gitpod/v1/gitpodv1connect"
)

// encodingRecorder remembers, per request path, the compression a request
// declared: Content-Encoding (Connect POST), grpc-encoding (gRPC,
// gRPC-Web) or a Connect GET's compression= parameter.
type encodingRecorder struct {
	next http.RoundTripper
	mu   sync.Mutex
	seen map[string]string
}

func (r *encodingRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	enc := req.Header.Get("Content-Encoding")
	if v := req.Header.Get("Grpc-Encoding"); v != "" {
		enc = v
	}
	if req.Method == http.MethodGet {
		enc = req.URL.Query().Get("compression")
	}
	r.mu.Lock()
	r.seen[req.Method+" "+req.URL.Path] = enc
	r.mu.Unlock()
	return r.next.RoundTrip(req)
}

// TestGitpodGzipRequests: Gitpod's generated clients built to compress
// their requests (connect.WithSendGzip: Connect+proto, Connect+JSON, gRPC,
// gRPC-Web, Connect GET) and grpc-go with its gzip compressor are served
// in full: the compressed message is read as the message it is, not
// refused and not mis-parsed. Every call is checked to have gone out
// compressed, so the test cannot pass on plain requests.
func TestGitpodGzipRequests(t *testing.T) {
	t.Parallel()
	e, runnerID, runnerPAT, _ := hostEnv(t)
	base, hc := e.h2c(t)
	rec := &encodingRecorder{next: hc.Transport, seen: map[string]string{}}
	rhc := &http.Client{Transport: rec, Timeout: 30 * time.Second}
	for name, opts := range map[string][]connect.ClientOption{
		"connect-proto": nil,
		"connect-json":  {connect.WithProtoJSON()},
		"grpc":          {connect.WithGRPC()},
		"grpc-web":      {connect.WithGRPCWeb()},
		"connect-get":   {connect.WithHTTPGet(), connect.WithProtoJSON()},
	} {
		t.Run(name, func(t *testing.T) {
			// Every message compressed, however small.
			opts := append(opts, connect.WithSendGzip(), connect.WithCompressMinBytes(1))
			ic := gitpodv1connect.NewIdentityServiceClient(rhc, base, opts...)
			rc := gitpodv1connect.NewRunnerConfigurationServiceClient(rhc, base, opts...)
			host := name + ".example.com"
			cr, err := rc.CreateHostAuthenticationToken(as(e.secret), &gitpodv1.CreateHostAuthenticationTokenRequest{
				RunnerId: runnerID, Host: host, Token: "gho_" + name, Scopes: []string{"repo"},
				Source:    gitpodv1.HostAuthenticationTokenSource_HOST_AUTHENTICATION_TOKEN_SOURCE_OAUTH,
				ExpiresAt: timestamppb.New(time.Now().Add(time.Hour)),
			})
			if err != nil || cr.GetToken().GetHost() != host || cr.GetToken().GetRunnerId() != runnerID {
				t.Fatalf("CreateHostAuthenticationToken = %v, %v", cr, err)
			}
			id, err := ic.GetAuthenticatedIdentity(as(e.secret), &gitpodv1.GetAuthenticatedIdentityRequest{})
			if err != nil || id.GetSubject().GetId() != e.user.ID {
				t.Errorf("GetAuthenticatedIdentity = %v, %v", id, err)
			}
			g, err := rc.GetHostAuthenticationToken(as(e.secret), &gitpodv1.GetHostAuthenticationTokenRequest{Id: cr.GetToken().GetId()})
			if err != nil || g.GetToken().GetHost() != host || strings.Join(g.GetToken().GetScopes(), ",") != "repo" {
				t.Errorf("GetHostAuthenticationToken = %v, %v", g, err)
			}
			l, err := rc.ListHostAuthenticationTokens(as(runnerPAT), &gitpodv1.ListHostAuthenticationTokensRequest{
				Pagination: &gitpodv1.PaginationRequest{PageSize: 100},
			})
			if err != nil || !listHolds(l.GetTokens(), cr.GetToken().GetId()) {
				t.Errorf("ListHostAuthenticationTokens = %v, %v", l, err)
			}
			// A bad value sent compressed is refused for what it is.
			_, err = rc.GetHostAuthenticationToken(as(e.secret), &gitpodv1.GetHostAuthenticationTokenRequest{Id: "not-a-uuid"})
			wantCode(t, "GetHostAuthenticationToken of a non-UUID", err, connect.CodeInvalidArgument)

			// The calls with a message to compress went out compressed
			// (an empty binary message is not; a Connect GET compresses
			// only a message too long for its URL, so its POST is
			// checked, and TestGitpodGzipGET sends a compressed GET).
			rec.mu.Lock()
			defer rec.mu.Unlock()
			procs := []string{gitpodv1connect.RunnerConfigurationServiceCreateHostAuthenticationTokenProcedure}
			if name != "connect-get" {
				procs = append(procs, gitpodv1connect.RunnerConfigurationServiceGetHostAuthenticationTokenProcedure,
					gitpodv1connect.RunnerConfigurationServiceListHostAuthenticationTokensProcedure)
			}
			for _, p := range procs {
				if enc := rec.seen[http.MethodPost+" "+p]; enc != "gzip" {
					t.Errorf("POST %s went out with compression %q, want gzip", p, enc)
				}
			}
			clear(rec.seen)
		})
	}

	t.Run("grpc-go", func(t *testing.T) {
		conn, err := grpc.NewClient("passthrough:///"+strings.TrimPrefix(base, "http://"), grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, "tcp", addr)
			}),
			grpc.WithDefaultCallOptions(grpc.UseCompressor("gzip")))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		ctx := metadata.AppendToOutgoingContext(t.Context(), "authorization", "Bearer "+e.secret)
		id := &gitpodv1.GetAuthenticatedIdentityResponse{}
		if err := conn.Invoke(ctx, gitpodv1connect.IdentityServiceGetAuthenticatedIdentityProcedure, &gitpodv1.GetAuthenticatedIdentityRequest{}, id); err != nil || id.GetSubject().GetId() != e.user.ID {
			t.Errorf("GetAuthenticatedIdentity = %v, %v", id, err)
		}
		l := &gitpodv1.ListPersonalAccessTokensResponse{}
		if err := conn.Invoke(ctx, gitpodv1connect.UserServiceListPersonalAccessTokensProcedure, &gitpodv1.ListPersonalAccessTokensRequest{
			Filter: &gitpodv1.ListPersonalAccessTokensRequest_Filter{UserIds: []string{e.user.ID}},
		}, l); err != nil || len(l.GetPersonalAccessTokens()) == 0 {
			t.Errorf("ListPersonalAccessTokens = %v, %v", l, err)
		}
	})
}

// TestGitpodGzipGET: a Connect GET whose message is gzip-compressed
// (compression=gzip, base64=1: what a Connect client sends when the plain
// message is too long for its URL) is read as that message.
func TestGitpodGzipGET(t *testing.T) {
	t.Parallel()
	e, runnerID, _, _ := hostEnv(t)
	rc := gitpodv1connect.NewRunnerConfigurationServiceClient(e.srv.Client(), e.srv.URL)
	cr, err := rc.CreateHostAuthenticationToken(as(e.secret), &gitpodv1.CreateHostAuthenticationTokenRequest{
		RunnerId: runnerID, Host: "get.example.com", Token: "gho_get",
		Source:    gitpodv1.HostAuthenticationTokenSource_HOST_AUTHENTICATION_TOKEN_SOURCE_PAT,
		ExpiresAt: timestamppb.New(time.Now().Add(time.Hour)),
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, enc := range []string{"json", "proto"} {
		var msg []byte
		if enc == "json" {
			msg = []byte(`{"id":"` + cr.GetToken().GetId() + `"}`)
		} else {
			msg, _ = proto.Marshal(&gitpodv1.GetHostAuthenticationTokenRequest{Id: cr.GetToken().GetId()})
		}
		var zbuf bytes.Buffer
		zw := gzip.NewWriter(&zbuf)
		zw.Write(msg)
		zw.Close()
		q := url.Values{"connect": {"v1"}, "encoding": {enc}, "compression": {"gzip"}, "base64": {"1"},
			"message": {base64.RawURLEncoding.EncodeToString(zbuf.Bytes())}}
		req, _ := http.NewRequest(http.MethodGet, e.srv.URL+gitpodv1connect.RunnerConfigurationServiceGetHostAuthenticationTokenProcedure+"?"+q.Encode(), nil)
		req.Header.Set("Authorization", "Bearer "+e.secret)
		res, err := e.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		got := &gitpodv1.GetHostAuthenticationTokenResponse{}
		if enc == "json" {
			err = protojson.Unmarshal(body, got)
		} else {
			err = proto.Unmarshal(body, got)
		}
		if res.StatusCode != http.StatusOK || err != nil || got.GetToken().GetId() != cr.GetToken().GetId() {
			t.Errorf("%s GET with a gzip message: %d %q (%v)", enc, res.StatusCode, body, err)
		}
	}
}

// listHolds reports whether tokens holds the token id.
func listHolds(tokens []*gitpodv1.HostAuthenticationToken, id string) bool {
	for _, tok := range tokens {
		if tok.GetId() == id {
			return true
		}
	}
	return false
}
