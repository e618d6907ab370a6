package pat

import (
	"slices"
	"testing"

	"github.com/opensts/sts/internal/sts"
)

func TestRequestedScopes(t *testing.T) {
	for _, tc := range []struct {
		name     string
		scopes   []string
		readOnly bool
		want     []string
		code     sts.Code
	}{
		{"gitpod read_only", nil, true, []string{ScopeIdentityRead, ScopeTokensRead}, ""},
		{"gitpod full", nil, false, []string{ScopeFull}, ""},
		{"named scopes", []string{ScopeTokensWrite}, false, []string{ScopeTokensWrite}, ""},
		{"read_only with read scopes", []string{ScopeTokensRead}, true, []string{ScopeTokensRead}, ""},
		{"read_only with a write scope", []string{ScopeTokensRead, ScopeTokensWrite}, true, nil, sts.Invalid},
		{"read_only with id_token", []string{ScopeIDToken}, true, nil, sts.Invalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := RequestedScopes(tc.scopes, tc.readOnly)
			if sts.ErrorCode(err) != tc.code || !slices.Equal(got, tc.want) {
				t.Errorf("RequestedScopes(%v, %v) = %v, %v; want %v, code %q", tc.scopes, tc.readOnly, got, err, tc.want, tc.code)
			}
			if err == nil && ReadOnly(got) != tc.readOnly {
				t.Errorf("ReadOnly(%v) = %v, want %v", got, !tc.readOnly, tc.readOnly)
			}
		})
	}
	for scopes, want := range map[string]bool{"": true, "identity:read": true, "*": false, "identity:id_token": false, "sts:admin": false} {
		var s []string
		if scopes != "" {
			s = []string{scopes}
		}
		if ReadOnly(s) != want {
			t.Errorf("ReadOnly(%v) != %v", s, want)
		}
	}
}
