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
