package policy

import (
	"cmp"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"

	"cel.dev/cel-go/cel"
	celast "cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/cost"
	"cel.dev/cel-go/ext"

	"github.com/opensts/sts/internal/storage"
)

// Defaults for Options. They bound what an administrator can make the hot
// path do; docs/design.md#limits lists the limits we publish.
const (
	// DefaultMaxExpressionLength caps one expression's source, in bytes.
	DefaultMaxExpressionLength = 4 << 10
	// DefaultMaxStaticCost caps the worst-case cost the CEL checker
	// estimates for one expression, given inputs no larger than
	// DefaultMaxInputSize. A single pass over a list claim costs roughly
	// 3 × its length; a nested pass over two lists is refused.
	DefaultMaxStaticCost = 1_000_000
	// DefaultRuntimeCostLimit aborts one evaluation past this actual cost.
	DefaultRuntimeCostLimit = 1_000_000
	// DefaultMaxInputSize is the size (string bytes, list elements, map
	// entries) the static estimator assumes for any input value. Verified
	// subject tokens are ≤ 16 KiB, so no claim can be larger.
	DefaultMaxInputSize = 16 << 10
)

// Limits on mapped values; they end up in tokens we sign.
const (
	MaxAttributes        = 50
	MaxSubjectLength     = 256
	MaxGroups            = 100
	MaxGroupLength       = 256
	MaxAttributeLength   = 1024
	interruptCheckPeriod = 100 // comprehension iterations between ctx checks
)

// DefaultIdentityClaim is the identity expression of a pool that sets none.
const DefaultIdentityClaim = "assertion.sub"

// Variable names visible to every expression.
const (
	VarAssertion = "assertion"
	VarRequest   = "request"
)

// Reason is a stable, machine-readable denial reason (docs/design.md#trust-decisions-and-errors). It goes in
// the response's reason field, log lines and metric labels.
type Reason string

// Reasons produced by this package.
const (
	ReasonPolicyInvalid     Reason = "policy_invalid"     // compile-time: bad expression
	ReasonConditionFalse    Reason = "condition_false"    // the condition evaluated to false
	ReasonConditionError    Reason = "condition_error"    // evaluation failed (missing claim, type error, cost)
	ReasonConditionRequired Reason = "condition_required" // no condition, and the issuer is shared (see IsSharedIssuer)
	ReasonIdentityInvalid   Reason = "identity_invalid"   // identity claim failed or was not a usable string
	ReasonMappingInvalid    Reason = "mapping_invalid"    // subject/groups/attributes failed or had the wrong type
)

// Error is what Compile and Evaluate return. Its message names the pool and
// the field (for example `policy: pool "ci": condition: …`); Reason is the
// stable code for responses and metrics.
type Error struct {
	Pool   string
	Field  string // "condition", "identity_claim", "mapping.subject", "mapping.groups", "mapping.attributes.<k>"
	Reason Reason
	Err    error
}

func (e *Error) Error() string {
	return fmt.Sprintf("policy: pool %q: %s: %v", e.Pool, e.Field, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// ReasonOf returns the Reason carried by err, or "" when err is not a
// policy error.
func ReasonOf(err error) Reason {
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Reason
	}
	return ""
}

// Options tune a Compiler. The zero value means the defaults above.
type Options struct {
	MaxExpressionLength int
	MaxStaticCost       uint64
	RuntimeCostLimit    uint64
	MaxInputSize        uint64
	// RequireCondition refuses, at compile time, a pool without a condition.
	// Without it an unset condition is allowed except for tokens from a
	// shared issuer (IsSharedIssuer), which Evaluate denies.
	RequireCondition bool
}

func (o Options) withDefaults() Options {
	o.MaxExpressionLength = cmp.Or(o.MaxExpressionLength, DefaultMaxExpressionLength)
	o.MaxStaticCost = cmp.Or(o.MaxStaticCost, DefaultMaxStaticCost)
	o.RuntimeCostLimit = cmp.Or(o.RuntimeCostLimit, DefaultRuntimeCostLimit)
	o.MaxInputSize = cmp.Or(o.MaxInputSize, DefaultMaxInputSize)
	return o
}

// Compiler holds the CEL environment (costly to build) and the limits. It is
// safe for concurrent use; build one at start-up and reuse it.
type Compiler struct {
	env   *cel.Env
	opts  Options
	cache programCache
}

// NewCompiler builds the environment: variables assertion and request, both
// map(string, dyn), the standard library plus the strings extension.
func NewCompiler(opts Options) (*Compiler, error) {
	opts = opts.withDefaults()
	env, err := cel.NewEnv(
		cel.Variable(VarAssertion, cel.MapType(cel.StringType, cel.DynType)),
		cel.Variable(VarRequest, cel.MapType(cel.StringType, cel.DynType)),
		ext.Strings(),
		cel.CrossTypeNumericComparisons(true),
		cel.ParserExpressionSizeLimit(opts.MaxExpressionLength),
		cel.ParserRecursionLimit(64),
	)
	if err != nil {
		return nil, fmt.Errorf("policy: cel environment: %w", err)
	}
	return &Compiler{env: env, opts: opts}, nil
}

// Compile compiles pool's expressions with default options. Callers that
// compile many pools should keep a Compiler instead.
func Compile(pool storage.Pool) (*Program, error) {
	c, err := NewCompiler(Options{})
	if err != nil {
		return nil, err
	}
	return c.Compile(pool)
}

// attrName restricts attribute names to identifiers: they become JSON member
// names of issued tokens and CEL field names of downstream policies.
var attrName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,63}$`)

// AttributeGroups is the member of an issued token's attributes that holds
// the groups mapping's value. No attribute may take its name: it was
// overwritten by the groups, or without them read as the token's groups
// (docs/security.md T-186).
const AttributeGroups = "groups"

// Compile type-checks and plans every expression of pool. The error names
// the pool and the field; nothing is partially compiled.
func (c *Compiler) Compile(pool storage.Pool) (*Program, error) {
	p := &Program{pool: pool.ID, limit: c.opts.RuntimeCostLimit}
	var err error
	fail := func(field string, e error) (*Program, error) {
		return nil, &Error{Pool: pool.ID, Field: field, Reason: ReasonPolicyInvalid, Err: e}
	}

	if strings.TrimSpace(pool.Condition) == "" {
		if c.opts.RequireCondition {
			return fail(FieldCondition, errors.New("a condition is required"))
		}
	} else if p.condition, err = c.compile(FieldCondition, pool.Condition, cel.BoolType); err != nil {
		return fail(FieldCondition, err)
	}

	identity := cmp.Or(strings.TrimSpace(pool.IdentityClaim), DefaultIdentityClaim)
	if p.identity, err = c.compile(FieldIdentityClaim, identity, cel.StringType); err != nil {
		return fail(FieldIdentityClaim, err)
	}
	if strings.TrimSpace(pool.Mapping.Subject) != "" {
		if p.subject, err = c.compile(FieldSubject, pool.Mapping.Subject, cel.StringType); err != nil {
			return fail(FieldSubject, err)
		}
	}
	if strings.TrimSpace(pool.Mapping.Groups) != "" {
		if p.groups, err = c.compile(FieldGroups, pool.Mapping.Groups, cel.ListType(cel.StringType)); err != nil {
			return fail(FieldGroups, err)
		}
	}
	if len(pool.Mapping.Attributes) > MaxAttributes {
		return fail("mapping.attributes", fmt.Errorf("%d attributes, at most %d allowed", len(pool.Mapping.Attributes), MaxAttributes))
	}
	for name, src := range pool.Mapping.Attributes {
		field := fieldAttributePrefix + name
		if !attrName.MatchString(name) {
			return fail(field, errors.New("attribute name must match [A-Za-z_][A-Za-z0-9_]{0,63}"))
		}
		if name == AttributeGroups {
			return fail(field, errors.New(`attribute name "groups" is where an issued token carries mapping.groups: map groups there, or name the attribute otherwise`))
		}
		e, err := c.compile(field, src, cel.StringType)
		if err != nil {
			return fail(field, err)
		}
		p.attrs = append(p.attrs, attrExpr{name: name, expr: e})
	}
	slices.SortFunc(p.attrs, func(a, b attrExpr) int { return strings.Compare(a.name, b.name) })
	return p, nil
}

// Field names used in errors and trace steps.
const (
	FieldCondition       = "condition"
	FieldIdentityClaim   = "identity_claim"
	FieldSubject         = "mapping.subject"
	FieldGroups          = "mapping.groups"
	fieldAttributePrefix = "mapping.attributes."
)

func (c *Compiler) compile(field, src string, want *cel.Type) (*expr, error) {
	if len(src) > c.opts.MaxExpressionLength {
		return nil, fmt.Errorf("expression is %d bytes, at most %d allowed", len(src), c.opts.MaxExpressionLength)
	}
	if !utf8.ValidString(src) {
		return nil, errors.New("expression is not valid UTF-8")
	}
	k := cacheKey{want: want.String(), source: src}
	if ce := c.cache.get(k); ce != nil {
		return &expr{field: field, compiledExpr: ce}, nil
	}
	ce, err := c.plan(src, want)
	if err != nil {
		return nil, err
	}
	return &expr{field: field, compiledExpr: c.cache.put(k, ce)}, nil
}

// plan parses, checks and plans one expression. Its result depends only on
// the environment, the Options and (src, want), which is what lets
// programCache share it between pools.
func (c *Compiler) plan(src string, want *cel.Type) (*compiledExpr, error) {
	ast, iss := c.env.Compile(src)
	if iss != nil && iss.Err() != nil {
		return nil, iss.Err()
	}
	// A claim read from the dyn-valued assertion map is itself dyn; the
	// checker cannot know its type, so dyn passes here and the exact type is
	// enforced on every evaluation. Anything statically wrong fails now.
	out := ast.OutputType()
	if !out.IsExactType(cel.DynType) && !want.IsAssignableType(out) {
		return nil, fmt.Errorf("expression has type %s, want %s", out, want)
	}
	est, err := c.env.EstimateCost(ast, boundedEstimator{max: c.opts.MaxInputSize})
	if err != nil {
		return nil, fmt.Errorf("estimating cost: %w", err)
	}
	if est.Max > c.opts.MaxStaticCost {
		return nil, fmt.Errorf("estimated worst-case cost %d exceeds the limit %d", est.Max, c.opts.MaxStaticCost)
	}
	ce := &compiledExpr{source: src, cost: est, loops: hasComprehension(ast)}
	// The runtime cost limit is what bounds an evaluation on inputs larger
	// than the estimate above assumes. An expression whose worst case stays
	// within the limit for inputs of ANY size (attribute selections,
	// literals, fixed-cost calls: cel-go's estimate is an upper bound of
	// the cost its tracker would count) can never reach the limit, so it is
	// planned without the tracker; every other expression keeps it.
	unbounded, err := c.env.EstimateCost(ast, unboundedEstimator{})
	ce.tracked = err != nil || unbounded.Max > c.opts.RuntimeCostLimit
	opts := []cel.ProgramOption{cel.InterruptCheckFrequency(interruptCheckPeriod)}
	if ce.tracked {
		opts = append(opts, cel.CostLimit(c.opts.RuntimeCostLimit))
	}
	if ce.prg, err = c.env.Program(ast, opts...); err != nil {
		return nil, fmt.Errorf("planning: %w", err)
	}
	return ce, nil
}

// hasComprehension reports whether ast loops (the macros all, exists,
// exists_one, map, filter): only there does cel-go check for an
// interrupt, so only such expressions need ContextEval.
func hasComprehension(a *cel.Ast) bool {
	found := false
	celast.PostOrderVisit(a.NativeRep().Expr(), celast.NewExprVisitor(func(e celast.Expr) {
		if e.Kind() == celast.ComprehensionKind {
			found = true
		}
	}))
	return found
}

// unboundedEstimator knows nothing about input sizes: every string, list
// and map may be arbitrarily large.
type unboundedEstimator struct{}

func (unboundedEstimator) EstimateSize(cost.AstNode) *cost.SizeEstimate { return nil }

func (unboundedEstimator) EstimateCallCost(string, string, *cost.AstNode, []cost.AstNode) *cost.CallEstimate {
	return nil
}

// boundedEstimator tells the CEL cost estimator that no input value is
// larger than max (bytes, elements or entries), which holds because claims
// come from a size-capped token. Without it every dyn input is unbounded and
// any comprehension estimates as infinite.
type boundedEstimator struct{ max uint64 }

// MaxCollectionSize is the number of elements the static estimator assumes
// for a list, map or dyn input (internal/federation refuses claims with
// longer arrays).
const MaxCollectionSize = 256

func (b boundedEstimator) EstimateSize(n cost.AstNode) *cost.SizeEstimate {
	if t := n.Type(); t != nil && (t.IsExactType(cel.StringType) || t.IsExactType(cel.BytesType)) {
		return &cost.SizeEstimate{Min: 0, Max: b.max}
	}
	// Lists, maps and dyn values: the verifier caps arrays in claims at
	// MaxCollectionSize elements, and a 16 KiB payload cannot hold more
	// object members than that in practice.
	return &cost.SizeEstimate{Min: 0, Max: MaxCollectionSize}
}

func (boundedEstimator) EstimateCallCost(string, string, *cost.AstNode, []cost.AstNode) *cost.CallEstimate {
	return nil
}
