package rs

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"

	"cel.dev/cel-go/cel"
	celast "cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/operators"
	"cel.dev/cel-go/common/types"
)

// Limits on a boundary; they bound what a caller can put into a token we
// sign and what a resource server evaluates per request.
const (
	MaxRules            = 10
	MaxPermissions      = 64
	MaxResourceLength   = 1024
	MaxPermissionLength = 256
	MaxExpressionLength = 2048
	maxConditionCost    = 10_000
)

// Condition is a rule's availabilityCondition: a CEL expression over
// resource.name (a string). A resource server knows only the name of the
// resource it asks about, so a condition reading resource.type or
// resource.service, which Google's conditions may, is refused by Validate
// like one using Google's api.getAttribute: the boundary is refused at
// issuance and a token carrying it does not verify.
type Condition struct {
	Expression  string `json:"expression"`
	Title       string `json:"title,omitempty"`
	Description string `json:"description,omitempty"`
}

// Rule is one accessBoundaryRule: the permissions available on a
// resource (and everything under it), optionally only when Condition holds.
type Rule struct {
	AvailableResource     string     `json:"availableResource"`
	AvailablePermissions  []string   `json:"availablePermissions"`
	AvailabilityCondition *Condition `json:"availabilityCondition,omitempty"`
}

// AccessBoundary is a Credential Access Boundary: the token may use only
// what one of its rules makes available.
type AccessBoundary struct {
	Rules []Rule `json:"accessBoundaryRules"`

	progs []cel.Program // per rule, compiled by Validate; nil without a condition
}

// celEnv is built once per process; cel.Env is immutable and safe for
// concurrent use, so this is a constant, not mutable state.
var celEnv = sync.OnceValues(func() (*cel.Env, error) {
	return cel.NewEnv(cel.Variable("resource", cel.MapType(cel.StringType, cel.StringType)))
})

// compileCondition type-checks expr as a bool expression.
func compileCondition(expr string) (cel.Program, error) {
	if len(expr) > MaxExpressionLength {
		return nil, errors.New("condition expression too long")
	}
	env, err := celEnv()
	if err != nil {
		return nil, err
	}
	ast, iss := env.Compile(expr)
	if iss.Err() != nil {
		return nil, fmt.Errorf("condition: %w", iss.Err())
	}
	if ast.OutputType() != cel.BoolType {
		return nil, errors.New("condition must be a bool expression")
	}
	if err := onlyResourceName(ast); err != nil {
		return nil, err
	}
	return env.Program(ast, cel.CostLimit(maxConditionCost))
}

// onlyResourceName refuses a condition that reads the resource other than
// as resource.name or resource["name"]. Allows passes only the name:
// resource.type and resource.service would be judged on "", which makes a
// negated test (resource.type != '…' || …) always true and widens the rule
// (docs/security.md T-76). Every other use of the map (a key test, a
// computed key, a macro over it, its size) could read them too, so it is
// refused as well: fail closed.
func onlyResourceName(a *cel.Ast) error {
	root := celast.NavigateAST(a.NativeRep())
	for _, e := range celast.MatchDescendants(root, celast.KindMatcher(celast.IdentKind)) {
		if e.AsIdent() != "resource" {
			continue
		}
		if p, ok := e.Parent(); ok && readsName(p, e.ID()) {
			continue
		}
		return errors.New("condition may use only resource.name: a resource server knows no resource.type or resource.service")
	}
	return nil
}

// readsName reports whether p reads the name out of the expression id:
// id.name, has(id.name) or id["name"].
func readsName(p celast.NavigableExpr, id int64) bool {
	switch p.Kind() {
	case celast.SelectKind:
		return p.AsSelect().FieldName() == "name"
	case celast.CallKind:
		c := p.AsCall()
		if c.FunctionName() != operators.Index || len(c.Args()) != 2 || c.Args()[0].ID() != id {
			return false
		}
		key := c.Args()[1]
		if key.Kind() != celast.LiteralKind {
			return false
		}
		s, ok := key.AsLiteral().(types.String)
		return ok && s == "name"
	default:
		return false
	}
}

// Validate checks the boundary's shape and compiles every condition. The
// issuer calls it before putting a boundary into a token.
func (b *AccessBoundary) Validate() error {
	if len(b.Rules) == 0 || len(b.Rules) > MaxRules {
		return fmt.Errorf("access boundary needs 1 to %d rules", MaxRules)
	}
	progs := make([]cel.Program, len(b.Rules))
	for i, r := range b.Rules {
		if r.AvailableResource == "" || len(r.AvailableResource) > MaxResourceLength {
			return fmt.Errorf("rule %d: availableResource must be 1 to %d bytes", i, MaxResourceLength)
		}
		if len(r.AvailablePermissions) == 0 || len(r.AvailablePermissions) > MaxPermissions {
			return fmt.Errorf("rule %d: availablePermissions needs 1 to %d entries", i, MaxPermissions)
		}
		for _, p := range r.AvailablePermissions {
			if p == "" || len(p) > MaxPermissionLength || strings.ContainsAny(p, " \t\r\n") {
				return fmt.Errorf("rule %d: invalid permission", i)
			}
		}
		if c := r.AvailabilityCondition; c != nil {
			prg, err := compileCondition(c.Expression)
			if err != nil {
				return fmt.Errorf("rule %d: %w", i, err)
			}
			progs[i] = prg
		}
	}
	b.progs = progs
	return nil
}

// Claim returns the boundary as the decoded JSON object that goes into the
// token's cab claim.
func (b *AccessBoundary) Claim() map[string]any {
	raw, _ := json.Marshal(b) // plain structs of strings: cannot fail
	var m map[string]any
	_ = json.Unmarshal(raw, &m)
	return m
}

// ParseBoundary reads a cab claim back into an AccessBoundary.
func ParseBoundary(claim json.RawMessage) (*AccessBoundary, error) {
	var b AccessBoundary
	if err := json.Unmarshal(claim, &b); err != nil {
		return nil, fmt.Errorf("cab claim: %w", err)
	}
	if err := b.Validate(); err != nil {
		return nil, err
	}
	return &b, nil
}

// Allows reports whether the boundary makes permission available on
// resource: some rule names the resource (or a parent: the rule's resource
// followed by "/"), lists the permission exactly, and its condition, if
// any, evaluates to true. Any evaluation error denies, and so does a
// boundary that was not validated (conditions are compiled by Validate).
func (b *AccessBoundary) Allows(resource, permission string) bool {
	if len(b.progs) != len(b.Rules) {
		return false
	}
	for i, r := range b.Rules {
		if resource != r.AvailableResource && !strings.HasPrefix(resource, strings.TrimSuffix(r.AvailableResource, "/")+"/") {
			continue
		}
		if !contains(r.AvailablePermissions, permission) {
			continue
		}
		if r.AvailabilityCondition == nil {
			return true
		}
		prg := b.progs[i]
		if prg == nil {
			continue
		}
		out, _, err := prg.Eval(map[string]any{"resource": map[string]string{
			"name": resource, "type": "", "service": "",
		}})
		if err == nil && out.Value() == true {
			return true
		}
	}
	return false
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
