package api

import (
	"slices"
	"testing"

	stsv1 "github.com/opensts/sts/internal/gen/sts/v1"
)

// TestPoolServiceAudiences: audiences and google_default_scopes go through
// CreatePool, GetPool and UpdatePool (StringList replaces, {} clears), on
// both backends.
func TestPoolServiceAudiences(t *testing.T) {
	t.Parallel()
	onPoolBackends(t, func(t *testing.T, e *poolEnv) {
		c := e.poolClient(e.srv.URL)
		ctx := as(e.admin)
		req := e.validPool("kafka")
		req.Audiences, req.GoogleDefaultScopes = []string{"https://kafka.example"}, []string{"read"}
		cr, err := c.CreatePool(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		if p := cr.GetPool(); !slices.Equal(p.GetAudiences(), req.Audiences) || !slices.Equal(p.GetGoogleDefaultScopes(), req.GoogleDefaultScopes) {
			t.Fatalf("CreatePool = %v", p)
		}
		up, err := c.UpdatePool(ctx, &stsv1.UpdatePoolRequest{PoolId: "kafka",
			Audiences: &stsv1.StringList{Values: []string{"urn:kafka:a", "urn:kafka:b"}}, GoogleDefaultScopes: &stsv1.StringList{}})
		if err != nil {
			t.Fatal(err)
		}
		if p := up.GetPool(); !slices.Equal(p.GetAudiences(), []string{"urn:kafka:a", "urn:kafka:b"}) || len(p.GetGoogleDefaultScopes()) != 0 {
			t.Errorf("UpdatePool = %v", p)
		}
		bad := e.validPool("bad")
		bad.GoogleDefaultScopes = []string{"admin"}
		if _, err := c.CreatePool(ctx, bad); err == nil {
			t.Error("google_default_scopes outside scopes accepted")
		}
	})
}
