package pools_test

import (
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/opensts/sts/internal/config"
	"github.com/opensts/sts/internal/pools"
	"github.com/opensts/sts/internal/storage"
)

// The API and the CLI accept exactly the pool and provider IDs, and the
// uploaded JWKS size, the configuration file accepts.
func TestRulesMatchTheConfigurationFile(t *testing.T) {
	for _, id := range []string{"ci", "a", "0-a_b", strings.Repeat("a", 63), strings.Repeat("a", 64), "", "-a", "_a", "A", "a.b", "a/b", "a b", "ci\n"} {
		if got, want := pools.ValidID(id), config.ValidRecordID(id); got != want {
			t.Errorf("ValidID(%q) = %v, config.ValidRecordID = %v", id, got, want)
		}
	}
	if pools.MaxJWKSBytes != config.DefaultJWKSFileMax {
		t.Errorf("MaxJWKSBytes = %d, jwks_file cap = %d", pools.MaxJWKSBytes, config.DefaultJWKSFileMax)
	}
}

func TestProviderProblemsNameTheField(t *testing.T) {
	p := storage.Provider{PoolID: "ci", ID: "gh", Issuer: "http://issuer.example", JWKSURI: "ftp://x", Audiences: []string{""},
		Algorithms: []string{"none"}, JWKS: []byte(`{"keys":1}`)}
	var fields []string
	for _, pb := range pools.ProviderProblems(p, false, false) {
		fields = append(fields, pb.Field)
		if !strings.Contains(pb.String(), pb.Field) {
			t.Errorf("problem %q does not name its field %s", pb.String(), pb.Field)
		}
	}
	for _, want := range []string{"issuer", "jwks_uri", "algorithms", "jwks", "audiences[0]"} {
		if !slices.Contains(fields, want) {
			t.Errorf("problems %v lack %s", fields, want)
		}
	}
	// With allow_loopback, plain http is fine to loopback only.
	p = storage.Provider{Issuer: "http://127.0.0.1:8080", Audiences: []string{"sts"}}
	if probs := pools.ProviderProblems(p, true, false); len(probs) != 0 {
		t.Errorf("loopback http with allow_loopback: %v", probs)
	}
	p.Issuer = "http://issuer.example"
	if probs := pools.ProviderProblems(p, true, false); len(probs) != 1 || probs[0].Field != "issuer" {
		t.Errorf("non-loopback http with allow_loopback: %v", probs)
	}
}

// PoolUpdate.Apply: a set field replaces, an unset one keeps, attribute
// edits add and remove single mappings after a replacement, and the
// original record's map is never modified.
func TestPoolUpdateApply(t *testing.T) {
	orig := storage.Pool{ID: "ci", OrgID: "acme", Condition: "true", Scopes: []string{"read"},
		Mapping: storage.Mapping{Subject: "assertion.sub", Attributes: map[string]string{"a": "x", "b": "y"}}}
	keep := maps.Clone(orig.Mapping.Attributes)
	p := orig
	empty, cond := []string{}, ""
	pools.PoolUpdate{Condition: &cond, Scopes: &empty, AttributeEdits: map[string]string{"a": "", "c": "z"}}.Apply(&p)
	if p.Condition != "" || len(p.Scopes) != 0 || p.Mapping.Subject != "assertion.sub" ||
		!maps.Equal(p.Mapping.Attributes, map[string]string{"b": "y", "c": "z"}) {
		t.Errorf("after Apply: %+v", p)
	}
	if !maps.Equal(orig.Mapping.Attributes, keep) {
		t.Errorf("Apply modified the original attributes: %v", orig.Mapping.Attributes)
	}
	repl := map[string]string{}
	pools.PoolUpdate{Attributes: &repl}.Apply(&p)
	if p.Mapping.Attributes != nil {
		t.Errorf("replaced with an empty map: %v, want none", p.Mapping.Attributes)
	}
}
