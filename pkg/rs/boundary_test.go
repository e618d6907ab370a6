package rs

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestBoundary(t *testing.T) {
	rule := func(res string, cond string) Rule {
		r := Rule{AvailableResource: res, AvailablePermissions: []string{"read"}}
		if cond != "" {
			r.AvailabilityCondition = &Condition{Expression: cond}
		}
		return r
	}
	for _, tc := range []struct {
		name    string
		b       AccessBoundary
		wantErr string
	}{
		{"ok", AccessBoundary{Rules: []Rule{rule("//s/b", "resource.name.endsWith('.txt')")}}, ""},
		{"no rules", AccessBoundary{}, "1 to 10 rules"},
		{"too many rules", AccessBoundary{Rules: make([]Rule, MaxRules+1)}, "1 to 10 rules"},
		{"no resource", AccessBoundary{Rules: []Rule{rule("", "")}}, "availableResource"},
		{"not bool", AccessBoundary{Rules: []Rule{rule("r", "resource.name")}}, "bool"},
		{"unsupported function", AccessBoundary{Rules: []Rule{rule("r", "api.getAttribute('x', '') == ''")}}, "condition"},
		{"expression too long", AccessBoundary{Rules: []Rule{rule("r", strings.Repeat("true && ", 400)+"true")}}, "too long"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.b.Validate()
			if (err == nil) != (tc.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tc.wantErr)) {
				t.Errorf("Validate() = %v, want %q", err, tc.wantErr)
			}
		})
	}

	b := AccessBoundary{Rules: []Rule{rule("//s/b", "resource.name.endsWith('.txt')")}}
	if b.Allows("//s/b/x.txt", "read") {
		t.Error("an unvalidated boundary allowed something")
	}
	raw, _ := json.Marshal(b.Claim())
	parsed, err := ParseBoundary(raw)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		res, perm string
		want      bool
	}{
		{"//s/b/x.txt", "read", true},
		{"//s/b/x.bin", "read", false},
		{"//s/b/x.txt", "write", false},
		{"//s/bb/x.txt", "read", false},
	} {
		if got := parsed.Allows(tc.res, tc.perm); got != tc.want {
			t.Errorf("Allows(%s, %s) = %v, want %v", tc.res, tc.perm, got, tc.want)
		}
	}
}

// TestBoundaryConditionAttributes: a resource server knows only the name
// of the resource it is asked about; resource.type and resource.service
// are always empty here. A condition reading them would be judged on ""
// rather than on what the client meant, so a negated test such as
// resource.type != 'storage.googleapis.com/Object' || … is always true and
// widens its rule to every object under it. Validate refuses any condition
// that reads the resource other than through its name, at issuance and in
// a token (docs/security.md T-76).
func TestBoundaryConditionAttributes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		expr string
		ok   bool
	}{
		{"resource.name", "resource.name.startsWith('//s/b/public/')", true},
		{"resource['name']", "resource['name'] == '//s/b/x'", true},
		{"has(resource.name)", "has(resource.name) && resource.name.endsWith('.txt')", true},
		{"T-76 negated resource.type widens the rule", "resource.type != 'storage.googleapis.com/Object' || resource.name.startsWith('//s/b/public/')", false},
		{"T-76 resource.service", "resource.service == 'storage.googleapis.com'", false},
		{"T-76 resource['type']", "resource['type'] == ''", false},
		{"T-76 has(resource.service)", "!has(resource.service)", false},
		{"T-76 key test", "!('type' in resource)", false},
		{"T-76 dynamic key", "resource['ty' + 'pe'] == ''", false},
		{"T-76 the whole map", "resource.all(k, resource[k] != 'storage.googleapis.com')", false},
		{"T-76 size of the map", "size(resource) == 3", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := AccessBoundary{Rules: []Rule{{
				AvailableResource:     "//s/b",
				AvailablePermissions:  []string{"read"},
				AvailabilityCondition: &Condition{Expression: tc.expr},
			}}}
			err := b.Validate()
			if tc.ok && err != nil {
				t.Errorf("Validate(%q) = %v, want nil", tc.expr, err)
			}
			if !tc.ok && (err == nil || !strings.Contains(err.Error(), "only resource.name")) {
				t.Errorf("Validate(%q) = %v, want an error saying only resource.name is known", tc.expr, err)
			}
		})
	}
}
