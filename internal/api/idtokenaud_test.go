package api

import (
	"reflect"
	"testing"

	gitpodv1 "github.com/opensts/sts/internal/gen/gitpod/v1"
)

// TestGetIDTokenDeduplicatesAudiences: an audience requested twice appears
// once in the ID token's aud, the first occurrence's order kept
// (docs/api.md, "ID tokens"); a repeated single audience is then a plain
// string, as one audience requested once. Gitpod's own server accepts such
// a list, so it is not refused. Through the generated gitpod.v1 clients
// over Connect+proto, Connect+JSON and gRPC.
func TestGetIDTokenDeduplicatesAudiences(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	cases := []struct {
		aud  []string
		want any
	}{
		{[]string{"a", "a"}, "a"},
		{[]string{"b", "a", "b", "c", "a"}, []any{"b", "a", "c"}},
		{[]string{"a", "b"}, []any{"a", "b"}},
	}
	for name, c := range e.gitpodProtocols(t) {
		t.Run(name, func(t *testing.T) {
			for _, tc := range cases {
				for _, v := range []gitpodv1.IDTokenVersion{gitpodv1.IDTokenVersion_ID_TOKEN_VERSION_V1, gitpodv1.IDTokenVersion_ID_TOKEN_VERSION_V2} {
					r, err := c.identity.GetIDToken(as(e.secret), &gitpodv1.GetIDTokenRequest{Audience: tc.aud, Version: v})
					if err != nil {
						t.Fatalf("%v %s: GetIDToken: %v", tc.aud, v, err)
					}
					if got := claimsOf(t, r.GetToken())["aud"]; !reflect.DeepEqual(got, tc.want) {
						t.Errorf("%v %s: aud = %#v, want %#v", tc.aud, v, got, tc.want)
					}
				}
			}
		})
	}
}
