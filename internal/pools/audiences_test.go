package pools_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/opensts/sts/internal/pools"
	"github.com/opensts/sts/internal/storage"
)

// TestPoolAudiencesAndGoogleScopes: a pool's downstream audiences and
// its google_default_scopes are checked, naming the field, and set or
// cleared by UpdatePool like the other list fields.
func TestPoolAudiencesAndGoogleScopes(t *testing.T) {
	ctx := t.Context()
	svc, _ := acmeService(t, pools.Limits{})
	caller := pools.Caller{Actor: "test"}
	base := storage.Pool{ID: "kafka", OrgID: "acme", Condition: "true", Scopes: []string{"read", "write"}}
	for _, tc := range []struct {
		auds, google []string
		wantField    string
	}{
		{[]string{"https://kafka.example", "has space"}, nil, "audiences[1]"},
		{[]string{""}, nil, "audiences[0]"},
		{[]string{"https://kafka.example", "https://kafka.example"}, nil, "audiences[1]"},
		{nil, []string{"admin"}, "google_default_scopes[0]"},
	} {
		p := base
		p.Audiences, p.GoogleDefaultScopes = tc.auds, tc.google
		if _, err := svc.CreatePool(ctx, caller, p); err == nil || !strings.Contains(err.Error(), tc.wantField) {
			t.Errorf("CreatePool(%v, %v) = %v, want an error naming %s", tc.auds, tc.google, err, tc.wantField)
		}
	}
	p := base
	p.Audiences, p.GoogleDefaultScopes = []string{"https://kafka.example"}, []string{"read"}
	if _, err := svc.CreatePool(ctx, caller, p); err != nil {
		t.Fatal(err)
	}
	auds, none := []string{"urn:kafka:cluster-1", "https://kafka.example"}, []string{}
	got, err := svc.UpdatePool(ctx, caller, "kafka", pools.PoolUpdate{Audiences: &auds, GoogleDefaultScopes: &none})
	if err != nil || !slices.Equal(got.Audiences, auds) || got.GoogleDefaultScopes != nil {
		t.Errorf("UpdatePool = %+v, %v", got, err)
	}
	// Dropping a scope that google_default_scopes names is refused.
	if err := func() error {
		g, one := []string{"write"}, []string{"read"}
		if _, err := svc.UpdatePool(ctx, caller, "kafka", pools.PoolUpdate{GoogleDefaultScopes: &g}); err != nil {
			return err
		}
		_, err := svc.UpdatePool(ctx, caller, "kafka", pools.PoolUpdate{Scopes: &one})
		return err
	}(); err == nil || !strings.Contains(err.Error(), "google_default_scopes") {
		t.Errorf("scopes without a google default scope: %v", err)
	}
}
