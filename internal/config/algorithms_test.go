package config

import (
	"slices"
	"strings"
	"testing"
)

// TestExtraAlgorithms: RS256 is kept beside ES256 unless told otherwise,
// an explicit empty list (file) or none (environment) turns it off, and
// bad lists and RS256 audiences without an RS256 key are refused, naming
// the key.
func TestExtraAlgorithms(t *testing.T) {
	tests := []struct {
		name, yaml string
		env        []string
		want       []string
	}{
		{name: "default", want: []string{"RS256"}},
		{name: "RS256 primary", yaml: "keys:\n  algorithm: RS256\n", want: []string{}},
		{name: "EdDSA primary", yaml: "keys:\n  algorithm: EdDSA\n", want: []string{"RS256"}},
		{name: "off in the file", yaml: "keys:\n  extra_algorithms: []\n", want: []string{}},
		{name: "off in the environment", env: []string{"STS_KEYS_EXTRA_ALGORITHMS=none"}, want: []string{}},
		{name: "two from the environment", env: []string{"STS_KEYS_EXTRA_ALGORITHMS=RS256,EdDSA"}, want: []string{"RS256", "EdDSA"}},
		{name: "RS256 audiences", yaml: "id_tokens:\n  rs256_audiences: [rp.example.com]\n", want: []string{"RS256"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := Options{File: writeFile(t, tc.yaml), Environ: func() []string { return tc.env }}
			c, err := Load(o)
			if err != nil {
				t.Fatal(err)
			}
			if c.Keys.ExtraAlgorithms == nil || !slices.Equal(c.Keys.ExtraAlgorithms, tc.want) {
				t.Errorf("keys.extra_algorithms = %#v, want %#v", c.Keys.ExtraAlgorithms, tc.want)
			}
		})
	}

	bad := []struct{ name, yaml, key, msg string }{
		{"unknown", "keys:\n  extra_algorithms: [HS256]\n", "keys.extra_algorithms", "HS256"},
		{"primary twice", "keys:\n  extra_algorithms: [ES256]\n", "keys.extra_algorithms", "keys.algorithm already"},
		{"listed twice", "keys:\n  extra_algorithms: [RS256, RS256]\n", "keys.extra_algorithms", "twice"},
		{"no RS256 key", "keys:\n  extra_algorithms: []\nid_tokens:\n  rs256_audiences: [rp]\n", "id_tokens.rs256_audiences", "RS256"},
		{"blank audience", "id_tokens:\n  rs256_audiences: [' rp']\n", "id_tokens.rs256_audiences", "not an audience"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(Options{File: writeFile(t, tc.yaml), Environ: noEnv})
			if err == nil || !strings.Contains(err.Error(), tc.key) || !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("Load = %v, want a problem of %s naming %q", err, tc.key, tc.msg)
			}
		})
	}
}
