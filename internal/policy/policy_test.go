package policy

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/opensts/sts/internal/storage"
)

func newCompiler(t testing.TB, opts Options) *Compiler {
	t.Helper()
	c, err := NewCompiler(opts)
	if err != nil {
		t.Fatalf("NewCompiler: %v", err)
	}
	return c
}

// githubClaims is the shape of a GitHub Actions OIDC token's payload.
func githubClaims() map[string]any {
	return map[string]any{
		"iss":                 "https://token.actions.githubusercontent.com",
		"sub":                 "repo:acme/app:ref:refs/heads/main",
		"aud":                 "sts",
		"repository":          "acme/app",
		"repository_owner":    "acme",
		"repository_owner_id": "1234",
		"ref":                 "refs/heads/main",
		"workflow":            "deploy",
		"iat":                 int64(1_700_000_000),
		"exp":                 int64(1_700_000_300),
		"groups":              []any{"dev", "ops"},
	}
}

func typicalPool() storage.Pool {
	return storage.Pool{
		ID:        "ci",
		Condition: `assertion.repository_owner == "acme" && assertion.ref.startsWith("refs/heads/") && "sts" in request.audience`,
		Mapping: storage.Mapping{
			Subject:    `"gh:" + assertion.repository_owner_id + ":" + assertion.sub`,
			Groups:     `assertion.groups.map(g, "gh-" + g)`,
			Attributes: map[string]string{"repo": `assertion.repository`, "workflow": `assertion.workflow`},
		},
	}
}

func TestCompile(t *testing.T) {
	t.Parallel()
	long := `assertion.sub == "` + strings.Repeat("a", 5000) + `"`
	tests := []struct {
		name      string
		pool      storage.Pool
		opts      Options
		wantField string // "" means success
		wantIn    string // substring of the error
	}{
		{name: "typical", pool: typicalPool()},
		{name: "empty pool uses defaults", pool: storage.Pool{ID: "ci"}},
		{name: "syntax error", pool: storage.Pool{ID: "ci", Condition: `assertion.sub ==`}, wantField: FieldCondition},
		{name: "unknown variable", pool: storage.Pool{ID: "ci", Condition: `claims.sub == "x"`}, wantField: FieldCondition, wantIn: "undeclared reference"},
		{name: "condition not bool", pool: storage.Pool{ID: "ci", Condition: `"yes"`}, wantField: FieldCondition, wantIn: "want bool"},
		{name: "condition int", pool: storage.Pool{ID: "ci", Condition: `1 + 2`}, wantField: FieldCondition, wantIn: "want bool"},
		{name: "condition dyn allowed", pool: storage.Pool{ID: "ci", Condition: `assertion.enabled`}},
		{name: "identity claim int", pool: storage.Pool{ID: "ci", IdentityClaim: `size(assertion)`}, wantField: FieldIdentityClaim, wantIn: "want string"},
		{name: "subject bool", pool: storage.Pool{ID: "ci", Mapping: storage.Mapping{Subject: `true`}}, wantField: FieldSubject, wantIn: "want string"},
		{name: "groups string", pool: storage.Pool{ID: "ci", Mapping: storage.Mapping{Groups: `"dev"`}}, wantField: FieldGroups, wantIn: "want list(string)"},
		{name: "groups list of int", pool: storage.Pool{ID: "ci", Mapping: storage.Mapping{Groups: `[1, 2]`}}, wantField: FieldGroups, wantIn: "want list(string)"},
		{name: "groups list literal", pool: storage.Pool{ID: "ci", Mapping: storage.Mapping{Groups: `["a", "b"]`}}},
		{name: "attribute int", pool: storage.Pool{ID: "ci", Mapping: storage.Mapping{Attributes: map[string]string{"n": `42`}}}, wantField: "mapping.attributes.n", wantIn: "want string"},
		{name: "attribute bad name", pool: storage.Pool{ID: "ci", Mapping: storage.Mapping{Attributes: map[string]string{"a-b": `"x"`}}}, wantField: "mapping.attributes.a-b"},
		// docs/security.md T-186: where mapping.groups goes in the token.
		{name: "attribute named groups", pool: storage.Pool{ID: "ci", Mapping: storage.Mapping{Attributes: map[string]string{"groups": `"x"`}}}, wantField: "mapping.attributes.groups", wantIn: "mapping.groups"},
		{name: "huge expression", pool: storage.Pool{ID: "ci", Condition: long}, wantField: FieldCondition, wantIn: "at most 4096"},
		{name: "over static cost: nested comprehension", pool: storage.Pool{ID: "ci", Condition: `assertion.groups.all(a, assertion.groups.all(b, a != b || a == b))`}, wantField: FieldCondition, wantIn: "exceeds the limit"},
		{name: "single comprehension within cost", pool: storage.Pool{ID: "ci", Condition: `assertion.groups.exists(g, g == "ops")`}},
		{name: "require condition", pool: storage.Pool{ID: "ci"}, opts: Options{RequireCondition: true}, wantField: FieldCondition, wantIn: "required"},
		{name: "deep nesting", pool: storage.Pool{ID: "ci", Condition: strings.Repeat("(", 200) + "true" + strings.Repeat(")", 200)}, wantField: FieldCondition},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := newCompiler(t, tc.opts).Compile(tc.pool)
			if tc.wantField == "" {
				if err != nil {
					t.Fatalf("Compile() = %v, want nil", err)
				}
				return
			}
			var pe *Error
			if !errors.As(err, &pe) {
				t.Fatalf("Compile() = %v, want *Error", err)
			}
			if pe.Field != tc.wantField || pe.Reason != ReasonPolicyInvalid || pe.Pool != "ci" {
				t.Errorf("Compile() error field=%q reason=%q pool=%q, want %q %q %q", pe.Field, pe.Reason, pe.Pool, tc.wantField, ReasonPolicyInvalid, "ci")
			}
			if !strings.HasPrefix(err.Error(), `policy: pool "ci": `+tc.wantField+": ") {
				t.Errorf("Compile() error = %q, want prefix naming pool and field", err)
			}
			if !strings.Contains(err.Error(), tc.wantIn) {
				t.Errorf("Compile() error = %q, want it to contain %q", err, tc.wantIn)
			}
		})
	}
}

func TestEvaluate(t *testing.T) {
	t.Parallel()
	req := Request{Audiences: []string{"sts"}, Scopes: []string{"read"}}
	tests := []struct {
		name       string
		pool       storage.Pool
		claims     func(map[string]any)
		opts       Options
		want       Result
		wantReason Reason
		wantField  string
	}{
		{
			name: "typical allowed",
			pool: typicalPool(),
			want: Result{
				Allowed:    true,
				Identity:   "repo:acme/app:ref:refs/heads/main",
				Subject:    "gh:1234:repo:acme/app:ref:refs/heads/main",
				Groups:     []string{"gh-dev", "gh-ops"},
				Attributes: map[string]string{"repo": "acme/app", "workflow": "deploy"},
			},
		},
		{name: "condition false", pool: typicalPool(), claims: func(c map[string]any) { c["repository_owner"] = "evil" }, wantReason: ReasonConditionFalse, wantField: FieldCondition},
		{name: "missing claim denies", pool: typicalPool(), claims: func(c map[string]any) { delete(c, "repository_owner") }, wantReason: ReasonConditionError, wantField: FieldCondition},
		{name: "claim of wrong type denies", pool: typicalPool(), claims: func(c map[string]any) { c["ref"] = int64(3) }, wantReason: ReasonConditionError, wantField: FieldCondition},
		{name: "dyn condition not bool", pool: storage.Pool{ID: "ci", Condition: `assertion.repository`}, wantReason: ReasonConditionError, wantField: FieldCondition},
		{name: "identity not string", pool: storage.Pool{ID: "ci", Condition: "true", IdentityClaim: `assertion.iat`}, wantReason: ReasonIdentityInvalid, wantField: FieldIdentityClaim},
		{name: "identity missing", pool: storage.Pool{ID: "ci", Condition: "true"}, claims: func(c map[string]any) { delete(c, "sub") }, wantReason: ReasonIdentityInvalid, wantField: FieldIdentityClaim},
		{name: "identity empty", pool: storage.Pool{ID: "ci", Condition: "true"}, claims: func(c map[string]any) { c["sub"] = "" }, wantReason: ReasonIdentityInvalid, wantField: FieldIdentityClaim},
		{name: "identity too long", pool: storage.Pool{ID: "ci", Condition: "true"}, claims: func(c map[string]any) { c["sub"] = strings.Repeat("x", 300) }, wantReason: ReasonIdentityInvalid, wantField: FieldIdentityClaim},
		{name: "subject mapping non-string", pool: storage.Pool{ID: "ci", Condition: "true", Mapping: storage.Mapping{Subject: `assertion.groups`}}, wantReason: ReasonMappingInvalid, wantField: FieldSubject},
		{name: "groups element non-string", pool: storage.Pool{ID: "ci", Condition: "true", Mapping: storage.Mapping{Groups: `assertion.groups`}}, claims: func(c map[string]any) { c["groups"] = []any{"a", int64(1)} }, wantReason: ReasonMappingInvalid, wantField: FieldGroups},
		{name: "groups not a list", pool: storage.Pool{ID: "ci", Condition: "true", Mapping: storage.Mapping{Groups: `assertion.groups`}}, claims: func(c map[string]any) { c["groups"] = "a" }, wantReason: ReasonMappingInvalid, wantField: FieldGroups},
		{name: "attribute non-string", pool: storage.Pool{ID: "ci", Condition: "true", Mapping: storage.Mapping{Attributes: map[string]string{"n": `assertion.iat`}}}, wantReason: ReasonMappingInvalid, wantField: "mapping.attributes.n"},
		{name: "no condition, private issuer allowed", pool: storage.Pool{ID: "ci"}, claims: func(c map[string]any) { c["iss"] = "https://issuer.internal.example" },
			want: Result{Allowed: true, Identity: "repo:acme/app:ref:refs/heads/main", Subject: "repo:acme/app:ref:refs/heads/main"}},
		{name: "no condition, shared issuer denied", pool: storage.Pool{ID: "ci"}, wantReason: ReasonConditionRequired, wantField: FieldCondition},
		{name: "runtime cost limit", pool: storage.Pool{ID: "ci", Condition: `assertion.groups.exists(g, g.matches("^(a|b)*c$"))`}, opts: Options{RuntimeCostLimit: 50},
			claims: func(c map[string]any) {
				g := make([]any, 200)
				for i := range g {
					g[i] = strings.Repeat("ab", 20)
				}
				c["groups"] = g
			}, wantReason: ReasonConditionError, wantField: FieldCondition},
		{name: "request variable", pool: storage.Pool{ID: "ci", Condition: `"write" in request.scope`}, wantReason: ReasonConditionFalse, wantField: FieldCondition},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			prg, err := newCompiler(t, tc.opts).Compile(tc.pool)
			if err != nil {
				t.Fatalf("Compile: %v", err)
			}
			claims := githubClaims()
			if tc.claims != nil {
				tc.claims(claims)
			}
			got, err := prg.Evaluate(t.Context(), claims, req)
			if tc.wantReason == "" {
				if err != nil {
					t.Fatalf("Evaluate() = %v, want nil", err)
				}
				if diff := cmp.Diff(tc.want, got); diff != "" {
					t.Errorf("Evaluate() mismatch (-want +got):\n%s", diff)
				}
				return
			}
			var pe *Error
			if !errors.As(err, &pe) {
				t.Fatalf("Evaluate() error = %v, want *Error", err)
			}
			if got.Allowed || got.Reason != tc.wantReason || pe.Reason != tc.wantReason || pe.Field != tc.wantField {
				t.Errorf("Evaluate() = allowed=%v reason=%q (err field %q reason %q), want denied %q at %q", got.Allowed, got.Reason, pe.Field, pe.Reason, tc.wantReason, tc.wantField)
			}
			if got.Subject != "" || got.Groups != nil || got.Attributes != nil {
				t.Errorf("Evaluate() denied but returned mapping %+v", got)
			}
			if ReasonOf(err) != tc.wantReason {
				t.Errorf("ReasonOf(%v) = %q, want %q", err, ReasonOf(err), tc.wantReason)
			}
		})
	}
}

func TestExplainTrace(t *testing.T) {
	t.Parallel()
	prg, err := newCompiler(t, Options{}).Compile(typicalPool())
	if err != nil {
		t.Fatal(err)
	}
	res, err := prg.Explain(t.Context(), githubClaims(), Request{Audiences: []string{"sts"}})
	if err != nil {
		t.Fatalf("Explain: %v", err)
	}
	var fields []string
	for _, s := range res.Trace {
		fields = append(fields, s.Field+"="+s.Outcome)
	}
	want := []string{"condition=true", "identity_claim=value", "mapping.subject=value", "mapping.groups=value", "mapping.attributes.repo=value", "mapping.attributes.workflow=value"}
	if diff := cmp.Diff(want, fields); diff != "" {
		t.Errorf("trace (-want +got):\n%s", diff)
	}

	c := githubClaims()
	delete(c, "repository_owner")
	res, err = prg.Explain(t.Context(), c, Request{Audiences: []string{"sts"}})
	if err == nil || len(res.Trace) != 1 || res.Trace[0].Outcome != "error" || !strings.Contains(res.Trace[0].Detail, "repository_owner") {
		t.Errorf("Explain(missing claim) = %+v, %v; want one error step naming the claim", res.Trace, err)
	}
	// Evaluate never builds a trace.
	res, _ = prg.Evaluate(t.Context(), githubClaims(), Request{Audiences: []string{"sts"}})
	if res.Trace != nil {
		t.Errorf("Evaluate() trace = %v, want nil", res.Trace)
	}
}

func TestEvaluateCanceledContext(t *testing.T) {
	t.Parallel()
	prg, err := newCompiler(t, Options{}).Compile(typicalPool())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Nanosecond)
	defer cancel()
	<-ctx.Done()
	if res, err := prg.Evaluate(ctx, githubClaims(), Request{}); err == nil || res.Allowed {
		t.Errorf("Evaluate(canceled ctx) = %v, %v; want denial", res.Allowed, err)
	}
}

func TestNilClaims(t *testing.T) {
	t.Parallel()
	prg, err := newCompiler(t, Options{}).Compile(typicalPool())
	if err != nil {
		t.Fatal(err)
	}
	if res, err := prg.Evaluate(t.Context(), nil, Request{}); err == nil || res.Allowed {
		t.Errorf("Evaluate(nil claims) = %v, %v; want denial", res.Allowed, err)
	}
}

func TestIsSharedIssuer(t *testing.T) {
	t.Parallel()
	for iss, want := range map[string]bool{
		"https://token.actions.githubusercontent.com":  true,
		"https://token.actions.githubusercontent.com/": false, // exact match only
		"https://gitlab.com":                           true,
		"https://gitlab.example.com":                   false,
		"":                                             false,
	} {
		if got := IsSharedIssuer(iss); got != want {
			t.Errorf("IsSharedIssuer(%q) = %v, want %v", iss, got, want)
		}
	}
}

// FuzzCompilePolicy: compiling and evaluating arbitrary expressions never
// panics, and a compiled program evaluates within its limits.
func FuzzCompilePolicy(f *testing.F) {
	for _, s := range []string{
		`assertion.repository_owner == "acme"`,
		`assertion.groups.exists(g, g.startsWith("a"))`,
		`"x" + assertion.sub`,
		`assertion.sub.matches("^[a-z]+$")`,
		`size(request.audience) > 0 && request.audience[0] == "sts"`,
		`has(assertion.x) ? assertion.x : "none"`,
		`[1,2,3].map(x, x * 2)`,
		`assertion.sub.split(":")[1]`,
		`int(assertion.iat) / 0`,
		`{"a": 1}["b"]`,
		strings.Repeat("!", 100) + "true",
	} {
		f.Add(s)
	}
	c := newCompiler(f, Options{})
	claims := githubClaims()
	f.Fuzz(func(t *testing.T, src string) {
		for _, pool := range []storage.Pool{
			{ID: "f", Condition: src},
			{ID: "f", Condition: "true", Mapping: storage.Mapping{Subject: src, Groups: src, Attributes: map[string]string{"a": src}}},
		} {
			prg, err := c.Compile(pool)
			if err != nil {
				if ReasonOf(err) != ReasonPolicyInvalid {
					t.Fatalf("Compile(%q) = %v, want a policy_invalid *Error", src, err)
				}
				continue
			}
			res, err := prg.Evaluate(t.Context(), claims, Request{Audiences: []string{"sts"}})
			if (err == nil) != res.Allowed {
				t.Fatalf("Evaluate(%q) = allowed %v with err %v", src, res.Allowed, err)
			}
		}
	})
}

func BenchmarkEvaluate(b *testing.B) { benchEvaluate(b, typicalPool()) }

// BenchmarkEvaluateExchangePool evaluates the policy of the pool that
// BenchmarkExchange (internal/grants) exchanges against: a condition, a
// subject mapping and one attribute.
func BenchmarkEvaluateExchangePool(b *testing.B) {
	benchEvaluate(b, storage.Pool{ID: "ci", Condition: `assertion.repository_owner == "acme"`,
		Mapping: storage.Mapping{Subject: `"repo:" + assertion.repository`, Attributes: map[string]string{"repo": "assertion.repository"}}})
}

// benchEvaluate evaluates pool's policy against GitHub's claims, which it
// must allow.
func benchEvaluate(b *testing.B, pool storage.Pool) {
	prg, err := newCompiler(b, Options{}).Compile(pool)
	if err != nil {
		b.Fatal(err)
	}
	claims := githubClaims()
	req := Request{Audiences: []string{"sts"}, Scopes: []string{"read"}}
	ctx := b.Context()
	b.ReportAllocs()
	for b.Loop() {
		if res, err := prg.Evaluate(ctx, claims, req); err != nil || !res.Allowed {
			b.Fatal(err)
		}
	}
}

// TestRuntimeCostLimit: an expression within the static budget but costly
// on the actual input is aborted by cel.CostLimit and denied.
func TestRuntimeCostLimit(t *testing.T) {
	t.Parallel()
	prg, err := newCompiler(t, Options{RuntimeCostLimit: 100}).Compile(storage.Pool{ID: "ci", Condition: `assertion.groups.exists(g, g == "zzz")`})
	if err != nil {
		t.Fatal(err)
	}
	c := githubClaims()
	g := make([]any, 200)
	for i := range g {
		g[i] = "a"
	}
	c["groups"] = g
	res, err := prg.Evaluate(t.Context(), c, Request{})
	if res.Allowed || ReasonOf(err) != ReasonConditionError || !strings.Contains(err.Error(), "cost limit") {
		t.Errorf("Evaluate(over runtime cost) = %v, %v; want condition_error mentioning the cost limit", res.Allowed, err)
	}
}
