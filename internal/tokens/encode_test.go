package tokens

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"testing"
)

// TestMarshalAccessMatchesEncodingJSON: the hand-written encoding of the
// access claims is json.Marshal's, byte for byte, for every field set or
// empty, one or several audiences, strings encoding/json escapes (quotes,
// backslashes, HTML characters, control characters, U+2028, invalid
// UTF-8), src, attributes (keys sorted) and the claims it leaves to
// encoding/json (act, cab, attributes that are not strings).
func TestMarshalAccessMatchesEncodingJSON(t *testing.T) {
	tricky := []string{"", "a", "https://sts.example", `q"uote`, `back\slash`, "<script>&amp;", "a&b", "a>b", "a<b", "tab\tnl\n", "\x00\x1f\x7f",
		"é ü 日本", "line\u2028sep\u2029", "bad\xffutf8", "\xc3", "space here", "read write", "~!#$%^*()_+-=[]{}|;':,./?"}
	rng := rand.New(rand.NewPCG(1, 2))
	pick := func() string { return tricky[rng.IntN(len(tricky))] }
	base := AccessClaims{Issuer: "https://sts.example", Subject: "0190f0c2-7e4b-7c3e-9a6d-2f1b3c4d5e6f",
		Audience: Audience{"https://api.example"}, Expiry: 1767225600, IssuedAt: 1767224700, NotBefore: 1767224700,
		ID: NewJTI(), ClientID: "c1", Scope: "read write", OrgID: "acme", Principal: "service_account"}
	cases := []AccessClaims{
		base,
		{Subject: "s", Audience: Audience{"a", "b", "c"}},
		{Audience: Audience{}},
		{Audience: nil, Expiry: -5},
	}
	withAct := base
	withAct.Act = &Actor{Subject: "x"}
	withCAB := base
	withCAB.CAB = map[string]any{"accessBoundary": map[string]any{}}
	withNumber := base
	withNumber.Attributes = map[string]any{"repo": "acme/app", "n": 1.5}
	withNil := base
	withNil.Attributes = map[string]any{"repo": nil}
	withEmpty := base
	withEmpty.Attributes = map[string]any{}
	cases = append(cases, withAct, withCAB, withNumber, withNil, withEmpty)
	for range 2000 {
		c := AccessClaims{Issuer: pick(), Subject: pick(), ID: pick(), ClientID: pick(), Scope: pick(), OrgID: pick(),
			Principal: pick(), Pool: pick(), Provider: pick(), PATID: pick(), PATGeneration: pick(), GrantID: pick(),
			Expiry: NumericDate(rng.Int64() - rng.Int64()), IssuedAt: NumericDate(rng.Int64N(1 << 40)), NotBefore: NumericDate(rng.Int32())}
		for range rng.IntN(4) {
			c.Audience = append(c.Audience, pick())
		}
		if rng.IntN(2) == 0 {
			c.Src = &Source{Issuer: pick(), Subject: pick()}
		}
		switch rng.IntN(3) {
		case 0:
			c.SourceJTIs, c.SourceClientIDs = []string{}, []string{}
		case 1:
			for range 1 + rng.IntN(3) {
				c.SourceJTIs = append(c.SourceJTIs, pick())
			}
			for range rng.IntN(3) {
				c.SourceClientIDs = append(c.SourceClientIDs, pick())
			}
			for _, l := range []*[]string{&c.SourceSubjects, &c.SourcePATs, &c.SourcePools, &c.SourceGrants} {
				for range rng.IntN(3) {
					*l = append(*l, pick())
				}
			}
		}
		if rng.IntN(2) == 0 {
			c.Attributes = map[string]any{}
			for range rng.IntN(5) {
				c.Attributes[pick()] = pick()
			}
		}
		cases = append(cases, c)
	}
	fast := 0
	for _, c := range cases {
		want, err := json.Marshal(&c)
		if err != nil {
			t.Fatal(err)
		}
		got, err := marshalAccess(&c)
		if err != nil {
			t.Fatalf("marshalAccess(%+v) = %v", c, err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("marshalAccess(%+v)\n got %s\nwant %s", c, got, want)
		}
		if c.Act == nil && c.CAB == nil && stringValues(c.Attributes) && len(c.Audience) > 0 {
			fast++
		}
	}
	if fast < 1000 {
		t.Fatalf("only %d cases took the hand-written path", fast)
	}
}
