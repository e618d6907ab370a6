package api

import (
	"net/http"
	"strings"
	"testing"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/emptypb"

	stsv1 "github.com/opensts/sts/internal/gen/sts/v1"
	"github.com/opensts/sts/internal/gen/sts/v1/stsv1connect"
)

// TestUnknownMethodUnimplemented: a call to a method a mounted service
// does not have answers unimplemented (404 for Connect unary) with a
// credential and without one alike, in every protocol, at / and under
// /api: without one it answered unauthenticated, so the answer to a
// method that does not exist depended on the caller's credential. A known
// method without a credential stays unauthenticated.
func TestUnknownMethodUnimplemented(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	hc := e.srv.Client()
	protocols := map[string][]connect.ClientOption{
		"connect-proto": nil, "connect-json": {connect.WithProtoJSON()},
		"grpc": {connect.WithGRPC()}, "grpc-web": {connect.WithGRPCWeb()},
	}
	for proto, opts := range protocols {
		for _, base := range []string{e.srv.URL, e.srv.URL + APIPrefix} {
			c := connect.NewClient[emptypb.Empty, emptypb.Empty](hc, base+"/"+stsv1connect.OrganizationServiceName+"/NoSuchMethod", opts...)
			for who, tok := range map[string]string{"with a token": e.secret, "without a token": "", "with a bad token": "sts_pat_bogus"} {
				_, err := c.CallUnary(as(tok), connect.NewRequest(&emptypb.Empty{}))
				if got := connect.CodeOf(err); got != connect.CodeUnimplemented {
					t.Errorf("%s %s NoSuchMethod %s: %v (%s), want unimplemented", proto, strings.TrimPrefix(base, e.srv.URL), who, err, got)
				}
			}
			known := stsv1connect.NewOrganizationServiceClient(hc, base, opts...)
			if _, err := known.ListOrganizations(as(""), &stsv1.ListOrganizationsRequest{}); connect.CodeOf(err) != connect.CodeUnauthenticated {
				t.Errorf("%s ListOrganizations without a token: %v, want unauthenticated", proto, err)
			}
		}
	}
	// Connect unary on the wire: 404, as for an authenticated caller.
	for _, tok := range []string{e.secret, ""} {
		req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/"+stsv1connect.OrganizationServiceName+"/NoSuchMethod", strings.NewReader("{}"))
		req.Header.Set("Content-Type", "application/json")
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		res, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusNotFound {
			t.Errorf("POST NoSuchMethod (token %v): %d, want 404", tok != "", res.StatusCode)
		}
	}
}
