package tokens

import (
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	josejson "github.com/go-jose/go-jose/v4/json"
)

// claimsCases are payloads on which decodeAccessClaims must agree with
// go-jose's json.Unmarshal: what we mint, and what an attacker or a bug
// could put in a signed payload.
func claimsCases(t testing.TB) []string {
	full, err := json.Marshal(AccessClaims{
		Issuer: "https://sts.example", Subject: "7c0f3b5e", Audience: Audience{"a", "b"}, Expiry: 1700000900,
		IssuedAt: 1700000000, NotBefore: 1700000000, ID: "jti-1", ClientID: "ci", Scope: "read write", OrgID: "org-1",
		Principal: "user", Pool: "github", Provider: "actions", PATID: "p", PATGeneration: "3", GrantID: "fam-1",
		SourceJTIs: []string{"jti-0", "jti-00"}, SourceClientIDs: []string{"c-0"},
		SourceSubjects: []string{"u-2"}, SourcePATs: []string{"p2:4"}, SourcePools: []string{"gl/ci", "x/y"}, SourceGrants: []string{"fam-0"},
		Act:        &Actor{Issuer: "i", Subject: "s", ClientID: "c", Act: &Actor{Subject: "t"}},
		Attributes: map[string]any{"team": "infra", "n": 1.5, "list": []any{"a", 2.0, true, nil, map[string]any{}}},
		CAB:        map[string]any{"rules": []any{map[string]any{"resource": "r", "perm": []any{"p"}}}},
		Src:        &Source{Issuer: "https://token.actions.githubusercontent.com", Subject: "repo:o/r"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return []string{
		string(full),
		`{"iss":"https://sts.example","sub":"s","aud":"a","exp":1700000900,"iat":1700000000,"jti":"j","client_id":"c","org_id":"o","principal":"p"}`,
		` { "iss" : "i" , "aud" : [ ] , "exp" : -5 , "iat" : 0 } `, `{}`, `{"aud":[]}`, `{"aud":["a",null]}`, `{"aud":null}`, `{"aud":5}`,
		`{"aud":[["a"]]}`, `{"aud":"é😀"}`, `{"attributes":{"<&>":"x<y"}}`, `{"attributes":{"\u003c":"x\u003cy"}}`, `{"aud":"\u00e9"}`,
		// Case-sensitive names: "Sub" is not "sub" (T-24).
		`{"sub":"a","Sub":"b"}`, `{"Sub":"b","sub":"a"}`, `{"Sub":"b"}`, `{"SUB":"b","ISS":"x"}`, `{"Act":{"sub":"x"}}`,
		`{"act":{"Sub":"x","sub":"y"}}`, `{"src":{"ISS":"x"}}`, `{"Attributes":{"a":1}}`,
		// Duplicates at every level, by escape (T-23).
		`{"sub":"a","sub":"b"}`, `{"sub":"a","s\u0075b":"b"}`, `{"x":1,"x":2}`, `{"act":{"sub":"a","sub":"b"}}`,
		`{"attributes":{"a":1,"a":2}}`, `{"attributes":{"a":{"b":1,"b":2}}}`, `{"cab":[{"a":1,"a":2}]}`, `{"cab":{"l":[{"a":1,"a":2}]}}`,
		`{"unknown":{"a":1,"a":2}}`, `{"attributes":{"a":1,"A":2}}`, `{"src":{"iss":"a","iss":"b"}}`, `{"act":{"act":{"sub":"a","sub":"b"}}}`,
		// Types (T-42, T-43).
		`{"sub":1}`, `{"sub":null}`, `{"sub":true}`, `{"sub":["a"]}`, `{"exp":"1"}`, `{"exp":1.0}`, `{"exp":1e3}`, `{"exp":null}`,
		`{"exp":9223372036854775807}`, `{"exp":9223372036854775808}`, `{"exp":123456789012345678}`, `{"exp":1234567890123456789}`,
		`{"src_jti":[]}`, `{"src_jti":null}`, `{"src_jti":"j"}`, `{"src_jti":["j",1]}`, `{"src_jti":["j",null]}`, `{"src_jti":[["j"]]}`,
		`{"src_jti":["a"],"src_jti":["b"]}`, `{"src_client_id":["a"],"src_client_id":["b"]}`, `{"src_client_id":[1]}`, `{"src_jti":["a",]}`, `{"Src_jti":["a"]}`,
		`{"src_sub":["a"],"src_sub":["b"]}`, `{"src_pat":"a:1"}`, `{"src_pool":[null]}`, `{"src_grant":["a"],"src_grant":[]}`, `{"src_sub":[]}`,
		`{"exp":-0}`, `{"exp":01}`, `{"exp":-}`, `{"act":null}`, `{"act":"x"}`, `{"act":{}}`, `{"src":null}`, `{"src":[]}`,
		`{"attributes":null}`, `{"attributes":[]}`, `{"attributes":{}}`, `{"attributes":{"n":1e400}}`, `{"attributes":{"n":-0.0}}`,
		`{"attributes":{"n":12345678901234567890}}`, `{"attributes":{"n":1E-7}}`, `{"attributes":{"n":01}}`, `{"attributes":{"n":.5}}`,
		`{"attributes":{"a":[]}}`, `{"attributes":{"a":[1,]}}`, `{"attributes":{"a":tru}}`, `{"attributes":{"a":nul}}`,
		// Strings: escapes, invalid UTF-8, surrogates, control characters.
		`{"sub":"a\"b"}`, `{"sub":"\ud800"}`, `{"sub":"\ud83d\ude00"}`, `{"sub":"\ufffd"}`, "{\"sub\":\"\xff\"}", "{\"sub\":\"\xef\xbf\xbd\"}",
		"{\"sub\":\"\x01\"}", "{\"sub\":\"\x7f\"}", "{\"s\xffb\":1}", `{"sub":"\x"}`, `{"\u0073ub":"a"}`, `{"sub":"a\u0000b"}`,
		// Depth, shape, trailing data.
		`{"act":` + strings.Repeat(`{"act":`, 40) + `{}` + strings.Repeat(`}`, 41),
		`{"attributes":{"a":` + strings.Repeat("[", 40) + strings.Repeat("]", 40) + `}}`,
		`{"attributes":{"a":` + strings.Repeat("[", 20) + strings.Repeat("]", 20) + `}}`,
		``, `null`, `[]`, `"x"`, `{`, `{"sub":"a"}x`, `{"sub":"a"}{}`, `{"sub":"a",}`, `{"sub" "a"}`, `{"sub":"a"`, `{"sub":"a"}  `,
	}
}

func checkClaimsAgainstGoJose(t *testing.T, in []byte) {
	t.Helper()
	var want AccessClaims
	wantErr := josejson.Unmarshal(in, &want)
	var got AccessClaims
	err := decodeAccessClaims(in, &got)
	if (err == nil) != (wantErr == nil) {
		t.Fatalf("decodeAccessClaims(%.100q): err %v, go-jose err %v", in, err, wantErr)
	}
	if err == nil && !reflect.DeepEqual(got, want) {
		t.Fatalf("decodeAccessClaims(%.100q) = %+v, go-jose %+v", in, got, want)
	}
}

// TestDecodeAccessClaimsAgainstGoJose: the fast path gives go-jose's result
// or hands over to it, on every case and on random mutations of them; the
// tokens we mint take the fast path.
func TestDecodeAccessClaimsAgainstGoJose(t *testing.T) {
	t.Parallel()
	cases := claimsCases(t)
	for _, c := range cases {
		checkClaimsAgainstGoJose(t, []byte(c))
	}
	for _, c := range cases[:2] {
		var got AccessClaims
		if d := (fastJSON{data: []byte(c)}); !d.claims(&got) {
			t.Errorf("minted claims %.60q do not take the fast path", c)
		}
	}
	// "Sub" is ignored, never taken for sub (T-24).
	var c AccessClaims
	if err := decodeAccessClaims([]byte(`{"Sub":"attacker","sub":"user"}`), &c); err != nil || c.Subject != "user" {
		t.Errorf("Sub/sub = %q, %v; want user", c.Subject, err)
	}
	if err := decodeAccessClaims([]byte(`{"SUB":"attacker"}`), &c); err != nil || c.Subject != "" {
		t.Errorf("SUB = %q, %v; want empty", c.Subject, err)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	const set = "{}[],:\"\\u0aA -1e.nSs"
	for range 20000 {
		b := []byte(cases[rng.IntN(len(cases))])
		for range 1 + rng.IntN(3) {
			if len(b) == 0 {
				break
			}
			i := rng.IntN(len(b))
			switch rng.IntN(3) {
			case 0:
				b[i] = set[rng.IntN(len(set))]
			case 1:
				b = append(b[:i:i], b[i+1:]...)
			case 2:
				b = append(b[:i:i], append([]byte{set[rng.IntN(len(set))]}, b[i:]...)...)
			}
		}
		checkClaimsAgainstGoJose(t, b)
	}
}

// FuzzDecodeAccessClaims (docs/performance.md, token decoding): decodeAccessClaims and
// go-jose's json.Unmarshal agree on every payload.
func FuzzDecodeAccessClaims(f *testing.F) {
	for _, c := range claimsCases(f) {
		f.Add([]byte(c))
	}
	f.Fuzz(func(t *testing.T, b []byte) { checkClaimsAgainstGoJose(t, b) })
}

// TestFastHeaderAgainstGoJose: whatever header the fast path accepts,
// go-jose's decoding (the path checkHeader takes otherwise) reads the same
// alg, kid and typ from it, with no other member.
func TestFastHeaderAgainstGoJose(t *testing.T) {
	t.Parallel()
	cases := []string{
		`{"alg":"ES256","kid":"k1","typ":"at+jwt"}`, `{"typ":"at+jwt","alg":"ES256","kid":"k1"}`, ` {"alg" : "ES256" , "kid":"k","typ":"x"} `,
		`{"alg":"ES256","kid":"k1"}`, `{"alg":"ES256","kid":"k1","typ":"at+jwt","x":1}`, `{"alg":"ES256","alg":"none","typ":"at+jwt"}`,
		`{"alg":"ES256","kid":"k1","typ":"at+jwt","kid":"k2"}`, `{"ALG":"ES256","kid":"k1","typ":"at+jwt"}`, `{"alg":"ES256","kid":"\u006b","typ":"at+jwt"}`,
		`{"alg":"ES256","kid":"k1","typ":"at+jwt"}x`, `{"alg":"ES256","kid":1,"typ":"at+jwt"}`, "{\"alg\":\"ES256\",\"kid\":\"\xff\",\"typ\":\"at+jwt\"}",
	}
	rng := rand.New(rand.NewPCG(5, 6))
	for i := range 20000 {
		b := []byte(cases[i%len(cases)])
		if i >= len(cases) {
			j := rng.IntN(len(b))
			const set = "{}\",:aglkidtypA \\"
			b[j] = set[rng.IntN(len(set))]
		}
		alg, kid, typ, ok := fastHeader(b)
		if !ok {
			continue
		}
		var h map[string]josejson.RawMessage
		if err := josejson.Unmarshal(b, &h); err != nil {
			t.Fatalf("fastHeader accepted %q, go-jose: %v", b, err)
		}
		var galg, gkid, gtyp string
		e1, e2, e3 := josejson.Unmarshal(h["alg"], &galg), josejson.Unmarshal(h["kid"], &gkid), josejson.Unmarshal(h["typ"], &gtyp)
		if len(h) != 3 || e1 != nil || e2 != nil || e3 != nil || galg != alg || gkid != kid || gtyp != typ {
			t.Fatalf("fastHeader(%q) = %q %q %q, go-jose %q %q %q (%d members)", b, alg, kid, typ, galg, gkid, gtyp, len(h))
		}
	}
}
