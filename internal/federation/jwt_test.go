package federation

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/google/go-cmp/cmp"

	"github.com/opensts/sts/internal/storage"
)

func TestPeekIssuer(t *testing.T) {
	t.Parallel()
	k := testKeys()
	tests := []struct {
		name    string
		claims  map[string]any
		wantIss string
		wantAud []string
		want    Reason
	}{
		{"string aud", map[string]any{"iss": "https://i", "aud": "sts"}, "https://i", []string{"sts"}, ""},
		{"list aud", map[string]any{"iss": "https://i", "aud": []string{"a", "b"}}, "https://i", []string{"a", "b"}, ""},
		{"no iss", map[string]any{"aud": "sts"}, "", nil, ReasonClaimInvalid},
		{"iss number", map[string]any{"iss": 1, "aud": "sts"}, "", nil, ReasonClaimInvalid},
		{"no aud", map[string]any{"iss": "https://i"}, "", nil, ReasonClaimInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			iss, aud, err := PeekIssuer(sign(t, jose.RS256, k.rsa, "k", tc.claims, nil))
			if ReasonOf(err) != tc.want || iss != tc.wantIss || !cmp.Equal(aud, tc.wantAud) {
				t.Errorf("PeekIssuer() = %q, %q, %v; want %q, %q, reason %q", iss, aud, err, tc.wantIss, tc.wantAud, tc.want)
			}
		})
	}
	if _, _, err := PeekIssuer(strings.Repeat("a", 20<<10)); ReasonOf(err) != ReasonTokenTooLarge {
		t.Errorf("PeekIssuer(20 KiB) = %v, want token_too_large", err)
	}
}

// TestDotsAllocations: T-03. Rejecting a token made of dots costs O(1)
// allocations (CVE-2025-30204 split before counting).
func TestDotsAllocations(t *testing.T) {
	dots := "a" + strings.Repeat(".", DefaultMaxTokenSize-1)
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := parseCompact(dots, DefaultMaxTokenSize); err == nil {
			t.Fatal("accepted")
		}
	})
	if allocs > 2 {
		t.Errorf("parseCompact(dots) allocs = %v, want ≤ 2", allocs)
	}
}

func TestDecodeObject(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want map[string]any // nil: must fail
	}{
		{`{"a":1,"b":1.5,"c":"x","d":[true,null],"e":{"f":-2}}`, map[string]any{"a": int64(1), "b": 1.5, "c": "x", "d": []any{true, nil}, "e": map[string]any{"f": int64(-2)}}},
		{`{"n":12345678901234567890}`, map[string]any{"n": 12345678901234567890.0}},
		{` {"a":1} `, map[string]any{"a": int64(1)}},
		{`{}`, map[string]any{}},
		{`{"a":1,"a":2}`, nil},
		{`{"Sub":1,"sub":2}`, nil},
		{`{"sub":1,"SUB":2}`, nil},
		{`{"a":{"x":1,"X":2}}`, nil},
		{`{"a":1}{}`, nil},
		{`{"a":1} x`, nil},
		{`[1]`, nil},
		{`"x"`, nil},
		{`{"a":1e400}`, nil},
		{`{"a":"\ud800"}`, nil},
		{`{"a":"\ufffd"}`, nil},
		{"{\"a\":\"\xc0\xaf\"}", nil}, // overlong encoding
		{`{"a":` + strings.Repeat("[", 32) + strings.Repeat("]", 32) + `}`, nil},
		{`{"a":` + strings.Repeat("[", 31) + strings.Repeat("]", 31) + `}`, map[string]any{"a": nest(31)}},
		{`{"a":[` + strings.TrimSuffix(strings.Repeat("1,", 257), ",") + `]}`, nil},
		{`{"a":1,}`, nil},
		{`{"sub":1,"\u0073ub":2}`, nil},
		{`{"SUB":1,"\u0073ub":2}`, nil},
		{`{"a":"}{[\"","b":"\\"}`, map[string]any{"a": `}{["`, "b": `\`}},
		{`{"a":[` + strings.TrimSuffix(strings.Repeat("1,", 256), ",") + `]}`, map[string]any{"a": ints(256)}},
		{`{"a":[` + strings.TrimSuffix(strings.Repeat(`"x",`, 257), ",") + `]}`, nil},
		{`{"a":[` + strings.TrimSuffix(strings.Repeat(`{},`, 257), ",") + `]}`, nil},
		{`{"a":[[],[],{"x":[1]}]}`, map[string]any{"a": []any{[]any{}, []any{}, map[string]any{"x": []any{int64(1)}}}}},
		{manyMembers(20, false), nil},
		{manyMembers(20, true), membersMap(20)},
		{``, nil},
	}
	for _, tc := range tests {
		got, err := decodeObject([]byte(tc.in))
		if tc.want == nil {
			if err == nil {
				t.Errorf("decodeObject(%.60q) = %v, want error", tc.in, got)
			}
			continue
		}
		if err != nil {
			t.Errorf("decodeObject(%.60q) = %v", tc.in, err)
			continue
		}
		// reflect.DeepEqual: cmp.Diff is exponential on deeply nested slices.
		if !reflect.DeepEqual(tc.want, got) {
			t.Errorf("decodeObject(%.60q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func ints(n int) []any {
	a := make([]any, n)
	for i := range a {
		a[i] = int64(1)
	}
	return a
}

// manyMembers builds an object of n members (past the small-object path);
// with unique false the last name repeats the first in upper case.
func manyMembers(n int, unique bool) string {
	var b strings.Builder
	b.WriteString("{")
	for i := range n {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `"k%d":%d`, i, i)
	}
	if !unique {
		b.WriteString(`,"K0":1`)
	}
	b.WriteString("}")
	return b.String()
}

func membersMap(n int) map[string]any {
	m := map[string]any{}
	for i := range n {
		m[fmt.Sprint("k", i)] = int64(i)
	}
	return m
}

func nest(n int) any {
	var v any = []any{}
	for range n - 1 {
		v = []any{v}
	}
	return v
}

func TestValidateProvider(t *testing.T) {
	t.Parallel()
	good := storage.Provider{PoolID: "ci", ID: "gh", Issuer: "https://token.actions.githubusercontent.com", Audiences: []string{"sts"}}
	if err := ValidateProvider(good, false); err != nil {
		t.Errorf("ValidateProvider(good) = %v", err)
	}
	bad := good
	bad.Issuer = "http://issuer.example"
	bad.Audiences = nil
	bad.Algorithms = []string{"HS256", "none"}
	bad.JWKS = []byte(`{"keys":[]}`)
	err := ValidateProvider(bad, false)
	if err == nil {
		t.Fatal("ValidateProvider(bad) = nil")
	}
	for _, want := range []string{"provider ci/gh", "must use https", "audience", `"HS256"`, `"none"`, "uploaded jwks"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("ValidateProvider(bad) = %q, want it to mention %q", err, want)
		}
	}
}

// FuzzParseCompactJWS: docs/security.md#fuzzing. Never panics; anything accepted has
// exactly two dots and a string alg.
func FuzzParseCompactJWS(f *testing.F) {
	k := testKeys()
	f.Add(sign(f, jose.RS256, k.rsa, "k", map[string]any{"iss": "https://i", "aud": "a", "sub": "s"}, nil))
	f.Add(rawToken(`{"alg":"none"}`, `{"sub":"a","sub":"b"}`, []byte("x")))
	f.Add(rawToken(`{"alg":"RS256","crit":["b64"]}`, `{"a":[[[[1]]]]}`, []byte("x")))
	f.Add("a.b.c")
	f.Add("....")
	f.Fuzz(func(t *testing.T, raw string) {
		tok, err := parseCompact(raw, DefaultMaxTokenSize)
		if err != nil {
			if ReasonOf(err) == "" {
				t.Fatalf("parseCompact error %v has no reason", err)
			}
			return
		}
		if strings.Count(raw, ".") != 2 || tok.alg == "" || tok.claims == nil {
			t.Fatalf("parseCompact(%q) accepted a bad shape", raw)
		}
	})
}

// FuzzDecodeClaims: docs/security.md#fuzzing. No panic; accepted objects have no
// case-insensitive duplicate names at any level and round-trip as JSON.
func FuzzDecodeClaims(f *testing.F) {
	for _, s := range []string{`{"a":1}`, `{"a":1,"A":2}`, `{"a":[{"b":{"c":null}}]}`, `{"a":"\ud800"}`, `{"a":1e999}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeObject(b)
		if err != nil {
			return
		}
		if _, err := json.Marshal(m); err != nil {
			t.Fatalf("accepted %q but cannot re-encode: %v", b, err)
		}
		var walk func(v any, depth int)
		walk = func(v any, depth int) {
			if depth > maxJSONDepth+1 {
				t.Fatalf("accepted depth > %d: %q", maxJSONDepth, b)
			}
			switch v := v.(type) {
			case map[string]any:
				seen := map[string]bool{}
				for k, e := range v {
					if seen[strings.ToLower(k)] {
						t.Fatalf("accepted case-variant duplicate %q in %q", k, b)
					}
					seen[strings.ToLower(k)] = true
					walk(e, depth+1)
				}
			case []any:
				for _, e := range v {
					walk(e, depth+1)
				}
			}
		}
		walk(m, 1)
	})
}

// FuzzParseJWKS: docs/security.md#fuzzing. No panic; every key that enters a set is a
// usable public signature key.
func FuzzParseJWKS(f *testing.F) {
	k := testKeys()
	good, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: k.rsa.Public(), KeyID: "a"}, {Key: k.ec.Public(), KeyID: "b"}}})
	f.Add(good)
	f.Add([]byte(`{"keys":[{"kty":"oct","k":"AAAA"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"EC","crv":"P-256","x":"AA","y":"AA"}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		ks, err := parseJWKS(b, DefaultMaxKeys)
		if err != nil {
			return
		}
		for _, key := range ks.keys {
			fits := false
			for _, alg := range DefaultAlgorithms {
				fits = fits || keyFits(alg, key.pub)
			}
			if !fits {
				t.Fatalf("unusable key %T entered the set from %q", key.pub, b)
			}
		}
	})
}

func BenchmarkVerifyRS256(b *testing.B) {
	k := testKeys()
	clk := newFakeClock()
	jwks, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{
		{Key: k.rsa.Public(), KeyID: kidRSA, Algorithm: "RS256"},
		{Key: k.ec.Public(), KeyID: kidEC, Algorithm: "ES256"},
	}})
	p := storage.Provider{PoolID: "ci", ID: "gh", Issuer: "https://token.actions.githubusercontent.com", Audiences: []string{"sts"}, JWKS: jwks}
	now := clk.Now().Unix()
	tok := sign(b, jose.RS256, k.rsa, kidRSA, map[string]any{
		"iss": p.Issuer, "sub": "repo:acme/app:ref:refs/heads/main", "aud": "sts", "iat": now, "nbf": now, "exp": now + 300,
		"jti": "5f1a", "repository": "acme/app", "repository_owner": "acme", "repository_owner_id": "1234",
		"ref": "refs/heads/main", "workflow": "deploy", "event_name": "push", "runner_environment": "github-hosted",
	}, nil)
	v := &Verifier{Keys: &Cache{Now: clk.Now}, Now: clk.Now}
	ctx := b.Context()
	if _, err := v.Verify(ctx, p, tok); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(ctx, p, tok); err != nil {
			b.Fatal(err)
		}
	}
}
