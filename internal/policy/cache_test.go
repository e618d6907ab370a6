package policy

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"cel.dev/cel-go/cel"
	"github.com/google/go-cmp/cmp"

	"github.com/opensts/sts/internal/storage"
)

// TestProgramsShared: pools whose expressions have the same text hold one
// planned program each, not one per pool; a changed expression gets its
// own; and the cache lets go of programs no pool holds any more.
func TestProgramsShared(t *testing.T) {
	c := newCompiler(t, Options{})
	const n = 1000
	prgs := make([]*Program, n)
	for i := range prgs {
		p := typicalPool()
		p.ID = fmt.Sprintf("pool-%04d", i)
		prg, err := c.Compile(p)
		if err != nil {
			t.Fatal(err)
		}
		prgs[i] = prg
	}
	first := prgs[0]
	for _, prg := range prgs[1:] {
		if prg.condition.compiledExpr != first.condition.compiledExpr || prg.identity.compiledExpr != first.identity.compiledExpr ||
			prg.subject.compiledExpr != first.subject.compiledExpr || prg.groups.compiledExpr != first.groups.compiledExpr ||
			prg.attrs[0].expr.compiledExpr != first.attrs[0].expr.compiledExpr || prg.attrs[1].expr.compiledExpr != first.attrs[1].expr.compiledExpr {
			t.Fatalf("pool %s does not share pool %s's programs", prg.Pool(), first.Pool())
		}
	}
	// condition, identity, subject, groups, two attributes.
	if got := c.cache.len(); got != 6 {
		t.Errorf("%d pools hold %d cached programs, want 6", n, got)
	}

	// One pool's condition changes: it gets its own program, the rest of
	// its expressions are still shared.
	p := typicalPool()
	p.ID = "changed"
	p.Condition = `assertion.repository_owner == "other"`
	changed, err := c.Compile(p)
	if err != nil {
		t.Fatal(err)
	}
	if changed.condition.compiledExpr == first.condition.compiledExpr {
		t.Error("a changed condition shares the old condition's program")
	}
	if changed.identity.compiledExpr != first.identity.compiledExpr {
		t.Error("an unchanged identity claim is not shared")
	}
	if c.cache.len() != 7 {
		t.Errorf("cache holds %d programs, want 7", c.cache.len())
	}
	// The changed pool still evaluates its own condition.
	if _, err := changed.Evaluate(t.Context(), githubClaims(), Request{Audiences: []string{"sts"}}); ReasonOf(err) != ReasonConditionFalse {
		t.Errorf("changed pool: Evaluate = %v, want condition_false", err)
	}
	if res, err := prgs[n-1].Evaluate(t.Context(), githubClaims(), Request{Audiences: []string{"sts"}}); err != nil || res.Subject != "gh:1234:repo:acme/app:ref:refs/heads/main" {
		t.Errorf("shared pool: Evaluate = %+v, %v", res, err)
	}
	// The same text checked against another type is another program (and
	// here a compile error, as without sharing).
	if _, err := c.Compile(storage.Pool{ID: "typed", Condition: `assertion.sub`, Mapping: storage.Mapping{Subject: `assertion.sub == "x"`}}); err == nil {
		t.Error("a bool subject compiled")
	}

	// Drop every pool: the collector frees the programs and the cache
	// forgets them.
	runtime.KeepAlive(prgs)
	prgs, first, changed = nil, nil, nil
	deadline := time.Now().Add(2 * time.Second)
	for c.cache.len() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("cache still holds %d programs after every pool was dropped", c.cache.len())
		}
		runtime.GC()
		time.Sleep(time.Millisecond)
	}
	// And compiles afresh afterwards.
	if _, err := c.Compile(typicalPool()); err != nil || c.cache.len() != 6 {
		t.Fatalf("recompile: %v, %d cached", err, c.cache.len())
	}
}

// TestProgramsNotSharedAcrossCompilers: the cache is the Compiler's, so
// other limits (another environment version) never reuse a program.
func TestProgramsNotSharedAcrossCompilers(t *testing.T) {
	t.Parallel()
	a, err := newCompiler(t, Options{}).Compile(typicalPool())
	if err != nil {
		t.Fatal(err)
	}
	b, err := newCompiler(t, Options{RuntimeCostLimit: 10}).Compile(typicalPool())
	if err != nil {
		t.Fatal(err)
	}
	if a.condition.compiledExpr == b.condition.compiledExpr {
		t.Error("two compilers share a program")
	}
}

// TestCostTrackingSkippedOnlyWhenBounded: the runtime cost tracker is left
// out only for expressions whose worst case, for inputs of any size, is
// within the runtime limit; everything whose cost grows with its input
// keeps it.
func TestCostTrackingSkippedOnlyWhenBounded(t *testing.T) {
	t.Parallel()
	c := newCompiler(t, Options{})
	for src, tracked := range map[string]bool{
		`assertion.sub`:                             false,
		`assertion.repository_owner`:                false,
		`has(assertion.x) ? assertion.x : "none"`:   false,
		`"sts" in request.audience`:                 true,  // a list of any length
		`assertion.repository_owner == "acme"`:      false, // as costly as the shorter side
		`assertion.repository_owner == assertion.x`: true,  // two strings of any length
		`"repo:" + assertion.repository`:            true,  // concatenation copies
		`assertion.sub.matches("^[a-z]+$")`:         true,
		`assertion.groups.exists(g, g == "ops")`:    true,
		`assertion.groups.map(g, "gh-" + g)`:        true,
	} {
		e, err := c.compile(FieldSubject, src, cel.DynType)
		if err != nil {
			t.Fatalf("%s: %v", src, err)
		}
		if e.tracked != tracked {
			t.Errorf("%s: tracked = %v, want %v", src, e.tracked, tracked)
		}
	}
	// With a runtime limit below even a constant cost, nothing is exempt:
	// the bound still applies and refuses the evaluation.
	tiny := newCompiler(t, Options{RuntimeCostLimit: 1})
	prg, err := tiny.Compile(storage.Pool{ID: "ci", Condition: `assertion.sub != ""`, IdentityClaim: `assertion.sub`})
	if err != nil {
		t.Fatal(err)
	}
	if !prg.identity.tracked {
		t.Fatal("identity claim untracked with a runtime limit of 1")
	}
	_, err = prg.Evaluate(t.Context(), githubClaims(), Request{})
	if ReasonOf(err) != ReasonConditionError || !strings.Contains(err.Error(), "cost limit") {
		t.Errorf("Evaluate over a limit of 1 = %v, want condition_error mentioning the cost limit", err)
	}
}

// big is a subject token's payload at the sizes the verifier allows: long
// strings and a list of MaxCollectionSize elements.
func big() map[string]any {
	g := make([]any, MaxCollectionSize)
	for i := range g {
		g[i] = strings.Repeat("g", 60)
	}
	long := strings.Repeat("x", 8<<10)
	return map[string]any{"sub": "repo:" + long, "repository_owner": long, "repository": long, "ref": long, "x": long,
		"groups": g, "iat": int64(1), "exp": int64(2), "nested": map[string]any{"a": long}}
}

// TestEvalPathsDifferential: the evaluation path chosen per expression
// (Eval without the cost tracker or the context, where they cannot
// matter) gives the same value or the same error as the original one,
// ContextEval under cel.CostLimit, on a corpus of expressions and inputs.
func TestEvalPathsDifferential(t *testing.T) {
	t.Parallel()
	c := newCompiler(t, Options{})
	exprs := []string{
		`assertion.sub`, `assertion.repository_owner`, `assertion.missing`, `assertion.iat`,
		`assertion.groups`, `assertion.groups[0]`, `assertion.groups[5]`, `assertion.nested.a`,
		`has(assertion.x) ? assertion.x : "none"`, `has(assertion.nested.a)`,
		`assertion.repository_owner == "acme"`, `assertion.iat > 1`, `assertion.iat / 0`,
		`"repo:" + assertion.repository`, `assertion.sub.startsWith("repo:")`,
		`"sts" in request.audience`, `request.client_id`, `request.scope`, `size(request.audience)`,
		`assertion.groups.exists(g, g == "ops")`, `assertion.groups.map(g, "gh-" + g)`,
		`assertion.sub.split(":")`, `assertion.sub.matches("^repo:")`, `int(assertion.exp) - int(assertion.iat)`,
		`{"a": assertion.sub}["a"]`, `[assertion.sub, assertion.ref][1]`, `assertion.ref.lowerAscii()`,
	}
	inputs := []map[string]any{
		githubClaims(),
		{},
		{"sub": int64(3), "groups": "ops", "iat": "x", "nested": map[string]any{"a": true}},
		{"sub": strings.Repeat("é", 300), "groups": []any{"a", int64(1), nil}, "repository": nil, "x": 1.5},
		big(),
	}
	reqs := []Request{{}, {Audiences: []string{"sts", "x"}, ClientID: "c", Scopes: []string{"read"}}}
	for _, src := range exprs {
		ast, iss := c.env.Compile(src)
		if iss != nil && iss.Err() != nil {
			t.Fatalf("%s: %v", src, iss.Err())
		}
		ref, err := c.env.Program(ast, cel.CostLimit(c.opts.RuntimeCostLimit), cel.InterruptCheckFrequency(interruptCheckPeriod))
		if err != nil {
			t.Fatal(err)
		}
		e, err := c.compile("f", src, cel.DynType)
		if err != nil {
			t.Fatalf("%s: %v", src, err)
		}
		bound, err := c.env.EstimateCost(ast, unboundedEstimator{})
		if err != nil {
			t.Fatal(err)
		}
		for i, claims := range inputs {
			for j, req := range reqs {
				vars := &activation{claims: claims, req: &req}
				want, det, wantErr := ref.ContextEval(t.Context(), vars)
				// An untracked expression must be one the tracker could
				// never stop: its actual cost is within the any-size bound.
				if !e.tracked && (det == nil || det.ActualCost() == nil || *det.ActualCost() > bound.Max || bound.Max > c.opts.RuntimeCostLimit) {
					t.Errorf("%s on input %d/%d: untracked, but actual cost %v exceeds the bound %d", src, i, j, det, bound.Max)
				}
				got, gotErr := e.eval(t.Context(), &activation{claims: claims, req: &req})
				if (wantErr == nil) != (gotErr == nil) || (wantErr != nil && wantErr.Error() != gotErr.Error()) {
					t.Errorf("%s on input %d/%d: error %v, want %v", src, i, j, gotErr, wantErr)
					continue
				}
				if wantErr == nil && (got.Type() != want.Type() || !cmp.Equal(got.Value(), want.Value())) {
					t.Errorf("%s on input %d/%d: %v, want %v", src, i, j, got, want)
				}
			}
		}
	}
}
