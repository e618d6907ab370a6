package policy

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/cost"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/common/types/traits"
	"cel.dev/cel-go/interpreter"
)

// Program is a pool's compiled policy. It is immutable and safe for
// concurrent use; cache it with the pool record.
type Program struct {
	pool      string
	limit     uint64
	condition *expr // nil: no condition configured
	identity  *expr
	subject   *expr // nil: the identity value
	groups    *expr // nil: no groups
	attrs     []attrExpr
}

// expr is one of a pool's expressions: the field it fills, and the planned
// program, which pools with the same expression text share (programCache).
type expr struct {
	field string
	*compiledExpr
}

// compiledExpr is a planned expression. It is immutable and shared.
type compiledExpr struct {
	source string
	prg    cel.Program
	cost   cost.Estimate // under boundedEstimator
	// loops: the expression has a comprehension, the only place cel-go
	// checks for an interrupt; the others are evaluated without the
	// context plumbing (ctx is checked before each expression).
	loops bool
	// tracked: evaluated under the runtime cost limit. False only when
	// the expression's worst case for inputs of any size is within it.
	tracked bool
}

type attrExpr struct {
	name string
	expr *expr
}

// Pool returns the ID of the pool the program was compiled from.
func (p *Program) Pool() string { return p.pool }

// HasCondition reports whether the pool has a condition. A pool without
// one admits every verified token of its providers, which is unsafe for
// shared issuers; Evaluate denies those itself (see IsSharedIssuer), and
// callers may refuse such pools outright at configuration time.
func (p *Program) HasCondition() bool { return p.condition != nil }

// Request is the part of the exchange request a policy may look at, bound
// to the CEL variable request as a map with the keys in the field tags.
type Request struct {
	Audiences        []string // "audience"
	Resources        []string // "resource"
	Scopes           []string // "scope"
	ClientID         string   // "client_id"
	SubjectTokenType string   // "subject_token_type"
	Pool             string   // "pool"
	Provider         string   // "provider"
}

func (r Request) value() map[string]any {
	return map[string]any{
		"audience":           nonNil(r.Audiences),
		"resource":           nonNil(r.Resources),
		"scope":              nonNil(r.Scopes),
		"client_id":          r.ClientID,
		"subject_token_type": r.SubjectTokenType,
		"pool":               r.Pool,
		"provider":           r.Provider,
	}
}

// activation is the CEL input of one evaluation, shared by all of its
// expressions: the claims as they are, and the request map built only when
// an expression reads request (most pools never do), once. A map input
// would be wrapped anew by cel-go for every expression and the request map
// built for every evaluation (docs/performance.md).
type activation struct {
	claims map[string]any
	req    *Request
	reqVal map[string]any
}

// ResolveName implements interpreter.Activation.
func (a *activation) ResolveName(name string) (any, bool) {
	switch name {
	case VarAssertion:
		return a.claims, true
	case VarRequest:
		if a.reqVal == nil {
			a.reqVal = a.req.value()
		}
		return a.reqVal, true
	}
	return nil, false
}

// Parent implements interpreter.Activation: there is none.
func (a *activation) Parent() interpreter.Activation { return nil }

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// Result is the outcome of one evaluation. When Allowed is false, Reason
// says why and Evaluate also returned an *Error.
type Result struct {
	Allowed    bool
	Reason     Reason
	Identity   string // value of the identity claim
	Subject    string // mapped subject (the identity when no mapping is set)
	Groups     []string
	Attributes map[string]string
	// Trace lists each step in order, up to and including the one that
	// failed. Only Explain fills it.
	Trace []Step
}

// Step is one line of a dry-run trace.
type Step struct {
	Field      string // see the Field constants
	Expression string
	Outcome    string // "true", "false", "value", "unset", "error"
	Detail     string // the value produced, or why it failed
}

// Evaluate runs the policy over verified claims. Every failure is a denial:
// it returns a Result with Allowed false and an *Error carrying the Reason.
// claims must be the decoded JSON payload (strings, bools, int64/float64,
// []any, map[string]any, nil); it is not modified.
func (p *Program) Evaluate(ctx context.Context, claims map[string]any, req Request) (Result, error) {
	return p.run(ctx, claims, req, false)
}

// Explain is Evaluate with a step-by-step Trace, for the admin dry-run.
func (p *Program) Explain(ctx context.Context, claims map[string]any, req Request) (Result, error) {
	return p.run(ctx, claims, req, true)
}

func (p *Program) run(ctx context.Context, claims map[string]any, req Request, trace bool) (res Result, err error) {
	if claims == nil {
		claims = map[string]any{}
	}
	vars := &activation{claims: claims, req: &req}
	step := func(e *expr, outcome, detail string) {
		if trace {
			res.Trace = append(res.Trace, Step{Field: e.field, Expression: e.source, Outcome: outcome, Detail: detail})
		}
	}
	deny := func(e *expr, field string, reason Reason, cause error) (Result, error) {
		if e != nil {
			step(e, "error", cause.Error())
		}
		res.Allowed, res.Reason = false, reason
		res.Identity, res.Subject, res.Groups, res.Attributes = "", "", nil, nil
		return res, &Error{Pool: p.pool, Field: field, Reason: reason, Err: cause}
	}

	// 1. Condition.
	if p.condition == nil {
		if iss, _ := claims["iss"].(string); IsSharedIssuer(iss) {
			if trace {
				res.Trace = append(res.Trace, Step{Field: FieldCondition, Outcome: "error", Detail: "no condition, and the issuer is shared by many tenants"})
			}
			return deny(nil, FieldCondition, ReasonConditionRequired,
				fmt.Errorf("issuer %q is shared by many tenants; the pool needs a condition that pins the tenant", iss))
		}
		if trace {
			res.Trace = append(res.Trace, Step{Field: FieldCondition, Outcome: "unset"})
		}
	} else {
		v, err := p.condition.eval(ctx, vars)
		if err != nil {
			return deny(p.condition, FieldCondition, ReasonConditionError, err)
		}
		b, ok := v.(types.Bool)
		if !ok {
			return deny(p.condition, FieldCondition, ReasonConditionError, fmt.Errorf("result is %s, want bool", v.Type()))
		}
		if !b {
			step(p.condition, "false", "")
			res.Reason = ReasonConditionFalse
			return res, &Error{Pool: p.pool, Field: FieldCondition, Reason: ReasonConditionFalse, Err: errors.New("condition is false")}
		}
		step(p.condition, "true", "")
	}

	// 2. Identity.
	id, err := p.identity.evalString(ctx, vars, MaxSubjectLength)
	if err != nil {
		return deny(p.identity, FieldIdentityClaim, ReasonIdentityInvalid, err)
	}
	if trace {
		step(p.identity, "value", strconv.Quote(id))
	}
	res.Identity = id

	// 3. Mapping.
	res.Subject = id
	if p.subject != nil {
		if res.Subject, err = p.subject.evalString(ctx, vars, MaxSubjectLength); err != nil {
			return deny(p.subject, FieldSubject, ReasonMappingInvalid, err)
		}
		if trace {
			step(p.subject, "value", strconv.Quote(res.Subject))
		}
	}
	if p.groups != nil {
		if res.Groups, err = p.groups.evalStrings(ctx, vars); err != nil {
			return deny(p.groups, FieldGroups, ReasonMappingInvalid, err)
		}
		if trace {
			step(p.groups, "value", fmt.Sprintf("%q", res.Groups))
		}
	}
	if len(p.attrs) > 0 {
		res.Attributes = make(map[string]string, len(p.attrs))
		for _, a := range p.attrs {
			s, err := a.expr.evalString(ctx, vars, MaxAttributeLength)
			if err != nil {
				return deny(a.expr, a.expr.field, ReasonMappingInvalid, err)
			}
			if trace {
				step(a.expr, "value", strconv.Quote(s))
			}
			res.Attributes[a.name] = s
		}
	}
	res.Allowed = true
	return res, nil
}

func (e *expr) eval(ctx context.Context, vars *activation) (ref.Val, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var (
		v   ref.Val
		err error
	)
	if e.loops {
		v, _, err = e.prg.ContextEval(ctx, vars)
	} else {
		// Without a comprehension there is nothing to interrupt:
		// ContextEval would only add a cancellable context and async-call
		// state per expression (docs/performance.md).
		v, _, err = e.prg.Eval(vars)
	}
	if err != nil {
		return nil, err
	}
	return v, nil
}

func (e *expr) evalString(ctx context.Context, vars *activation, maxLen int) (string, error) {
	v, err := e.eval(ctx, vars)
	if err != nil {
		return "", err
	}
	s, ok := v.(types.String)
	if !ok {
		return "", fmt.Errorf("result is %s, want string", v.Type())
	}
	return checkString(string(s), maxLen)
}

func checkString(s string, maxLen int) (string, error) {
	switch {
	case s == "":
		return "", errors.New("result is empty")
	case len(s) > maxLen:
		return "", fmt.Errorf("result is %d bytes, at most %d allowed", len(s), maxLen)
	case !utf8.ValidString(s):
		return "", errors.New("result is not valid UTF-8")
	case strings.IndexByte(s, 0) >= 0:
		// No stored text holds a NUL (PostgreSQL refuses it, SQLSTATE
		// 22021), and a mapped value becomes stored text: the subject of
		// a refresh family, an event's actor. Refused here, at the one
		// place every mapped string passes, the same on both backends
		// (docs/security.md T-251).
		return "", errors.New("result holds a NUL character")
	}
	return s, nil
}

func (e *expr) evalStrings(ctx context.Context, vars *activation) ([]string, error) {
	v, err := e.eval(ctx, vars)
	if err != nil {
		return nil, err
	}
	l, ok := v.(traits.Lister)
	if !ok {
		return nil, fmt.Errorf("result is %s, want list(string)", v.Type())
	}
	n, ok := l.Size().(types.Int)
	if !ok || n < 0 {
		return nil, errors.New("result has no size")
	}
	if n > MaxGroups {
		return nil, fmt.Errorf("%d groups, at most %d allowed", n, MaxGroups)
	}
	out := make([]string, 0, int(n))
	for i := types.Int(0); i < n; i++ {
		s, ok := l.Get(i).(types.String)
		if !ok {
			return nil, fmt.Errorf("element %d is %s, want string", i, l.Get(i).Type())
		}
		g, err := checkString(string(s), MaxGroupLength)
		if err != nil {
			return nil, fmt.Errorf("element %d: %w", i, err)
		}
		out = append(out, g)
	}
	return out, nil
}
