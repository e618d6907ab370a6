package federation

import (
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
)

// diffCases are inputs on which decodeObject must agree with its oracle,
// oracleDecodeObject: valid claims, and every way of being malicious the
// oracle refuses (docs/security.md T-23–T-27).
func diffCases() []string {
	deep := func(n int, open, close string) string {
		return `{"a":` + strings.Repeat(open, n) + strings.Repeat(close, n) + `}`
	}
	list := func(n int, elem string) string {
		return `{"a":[` + strings.TrimSuffix(strings.Repeat(elem+",", n), ",") + `]}`
	}
	return []string{
		`{"iss":"https://token.actions.githubusercontent.com","sub":"repo:acme/app:ref:refs/heads/main","aud":["sts"],"exp":4102444800,"act":{"sub":"x"}}`,
		`{}`, ` {} `, "\t{\r\n}\n", `{"a":{}}`, `{"a":[]}`, `{"a":[[],{}]}`,
		`{"a":1,"b":1.5,"c":"x","d":[true,null,false],"e":{"f":-2}}`,
		// Numbers.
		`{"a":0}`, `{"a":-0}`, `{"a":-0.0}`, `{"a":01}`, `{"a":-}`, `{"a":+1}`, `{"a":.5}`, `{"a":1.}`, `{"a":1e}`, `{"a":1e+}`,
		`{"a":1E5}`, `{"a":1e-5}`, `{"a":1.5e+300}`, `{"a":1e400}`, `{"a":-1e400}`, `{"a":1e-400}`,
		`{"a":999999999999999999}`, `{"a":-999999999999999999}`, `{"a":9223372036854775807}`, `{"a":9223372036854775808}`,
		`{"a":-9223372036854775808}`, `{"a":-9223372036854775809}`, `{"a":12345678901234567890}`,
		`{"a":` + strings.Repeat("9", 400) + `}`, `{"a":0x10}`, `{"a":1_000}`, `{"a":NaN}`, `{"a":Infinity}`,
		// Literals.
		`{"a":true}`, `{"a":tru}`, `{"a":nul}`, `{"a":True}`, `{"a":nulll}`, `{"a":falsey}`,
		// Duplicates at any level, by case, by escape.
		`{"a":1,"a":2}`, `{"a":1,"A":2}`, `{"Sub":1,"sub":2}`, `{"sub":1,"\u0073ub":2}`, `{"SUB":1,"\u0073ub":2}`,
		`{"s\u0075b":1,"sub":2}`, `{"a":{"x":1,"X":2}}`, `{"a":[{"x":1,"x":2}]}`, `{"a":[{"x":1},{"x":2}]}`,
		`{"\u212a":1,"k":2}`, `{"K":1,"\u212a":2}`, `{"ſ":1,"s":2}`, `{"İ":1,"i":2}`, `{"ǅ":1,"ǆ":2}`,
		manyMembers(20, false), manyMembers(20, true), manyMembers(16, false), manyMembers(17, false),
		bigObject(30, `"\u212a"`, `"k"`), bigObject(30, `"ſ"`, `"s"`), bigObject(30, `"İ"`, `"i"`), bigObject(30, `"x"`, `"X"`),
		bigObject(5, `"\u212a"`, `"k"`), bigObject(5, `"ſ"`, `"s"`), bigObject(5, `"İ"`, `"i"`),
		bigObject(512, `"p"`, `"q"`), bigObject(511, `"p"`, `"q"`), bigObject(510, `"p"`, `"q"`), bigObject(600, `"p"`, `"q"`),
		// Nesting and sizes.
		deep(30, "[", "]"), deep(31, "[", "]"), deep(32, "[", "]"), deep(100, "[", "]"), deep(31, `{"b":`, "}"), deep(1000, "[", ""),
		list(255, "1"), list(256, "1"), list(257, "1"), list(257, `"x"`), list(257, "{}"), list(256, "[]"), list(300, "null"),
		list(17, "1"), list(16, `{"b":[1,2]}`),
		// Strings.
		`{"a":"\ud800"}`, `{"a":"\udc00"}`, `{"a":"\ud800\udc00"}`, `{"a":"\ud83d\ude00"}`, `{"a":"\ud800\u0041"}`, `{"a":"\ud800\ud800"}`,
		`{"a":"\ud800x"}`, `{"a":"\ud800\"}`, `{"a":"\ufffd"}`, `{"a":"\uFFFD"}`, "{\"a\":\"\xef\xbf\xbd\"}", "{\"\xef\xbf\xbd\":1}",
		`{"\ud800":1}`, `{"a":"\u0000"}`, `{"a":"\u00e9\u20ac"}`, `{"a":"é€😀"}`, `{"a":"\x"}`, `{"a":"\u12"}`, `{"a":"\u12g4"}`,
		`{"a":"\/\b\f\n\r\t\"\\"}`, "{\"a\":\"\x01\"}", "{\"a\":\"\x7f\"}", "{\"a\":\"tab\there\"}", `{"a":"}{[\"","b":"\\"}`,
		"{\"a\":\"\xc0\xaf\"}", "{\"a\":\"\xff\"}", "{\"a\":\"\xed\xa0\x80\"}", `{"a":"x`, `{"a":"x\`, `{"a":"\u`,
		// Shape and trailing data.
		``, ` `, `null`, `[1]`, `"x"`, `1`, `{`, `}`, `{"a"}`, `{"a":}`, `{"a" 1}`, `{a:1}`, `{'a':1}`, `{"a":1,}`, `{,"a":1}`,
		`{"a":1}{}`, `{"a":1} x`, `{"a":1}]`, `{"a":1}}`, `{"a":1}  `, `{"a":[1,]}`, `{"a":[,1]}`, `{"a":[1 2]}`, `{"a":1 "b":2}`,
		"\ufeff{}", "{}\x00", `{"a":[1]]}`, `{"a":{"b":1]}`, `{"a":[1}`, "{\"a\":1}\u00a0",
	}
}

func bigObject(n int, first, last string) string {
	var b strings.Builder
	b.WriteString("{" + first + ":0")
	for i := 1; i < n-1; i++ {
		b.WriteString(`,"m` + strings.Repeat("x", i%7) + string(rune('a'+i%26)) + string(rune('a'+i/26%26)) + `":` + "1")
	}
	b.WriteString("," + last + ":1}")
	return b.String()
}

func checkAgainstOracle(t *testing.T, in []byte) {
	t.Helper()
	want, wantErr := oracleDecodeObject(in)
	got, err := decodeObject(in)
	if (err == nil) != (wantErr == nil) {
		t.Fatalf("decodeObject(%.80q): err %v, oracle err %v", in, err, wantErr)
	}
	if err == nil && !reflect.DeepEqual(got, want) {
		t.Fatalf("decodeObject(%.80q) = %v, oracle %v", in, got, want)
	}
}

// TestDecodeObjectDifferential: decodeObject accepts exactly what its
// oracle (the structural pre-scan plus encoding/json it replaced) accepts,
// with the same result, on hand-picked inputs and on random splices of them.
func TestDecodeObjectDifferential(t *testing.T) {
	t.Parallel()
	cases := diffCases()
	for _, c := range cases {
		checkAgainstOracle(t, []byte(c))
	}
	rng := rand.New(rand.NewPCG(1, 2))
	frags := []string{`{`, `}`, `[`, `]`, `,`, `:`, `"a"`, `"A"`, `"\u0061"`, `"b"`, `1`, `-0`, `1e3`, `1.5`, `null`, `true`,
		`"\ud800"`, `"\ud83d\ude00"`, `"x\"y"`, ` `, `"é"`, `"\\"`, `0`, `"\u212a"`, `"k"`}
	for range 20000 {
		var b strings.Builder
		if rng.IntN(4) > 0 {
			b.WriteString("{")
		}
		for range rng.IntN(24) {
			b.WriteString(frags[rng.IntN(len(frags))])
		}
		checkAgainstOracle(t, []byte(b.String()))
		// Mutations of valid cases.
		c := []byte(cases[rng.IntN(len(cases))])
		if len(c) > 0 {
			switch rng.IntN(3) {
			case 0:
				const set = "{}[],:\"\\u0aA -1e."
				c[rng.IntN(len(c))] = set[rng.IntN(len(set))]
			case 1:
				i := rng.IntN(len(c))
				c = append(c[:i:i], c[i+1:]...)
			case 2:
				i := rng.IntN(len(c))
				c = append(c[:i:i], append([]byte(frags[rng.IntN(len(frags))]), c[i:]...)...)
			}
		}
		checkAgainstOracle(t, c)
	}
}

// FuzzDecodeObjectDifferential (docs/performance.md, token decoding): decodeObject and
// its oracle agree on every input.
func FuzzDecodeObjectDifferential(f *testing.F) {
	for _, c := range diffCases() {
		f.Add([]byte(c))
	}
	f.Fuzz(func(t *testing.T, b []byte) { checkAgainstOracle(t, b) })
}

// TestDecodeObjectAllocs: a typical subject token payload costs two
// allocations per string value (its bytes and its box), one per integer
// above 255, per array and per name not in knownNames, and two per map:
// 30 here, against 73 for the oracle.
func TestDecodeObjectAllocs(t *testing.T) {
	payload := []byte(`{"iss":"https://token.actions.githubusercontent.com","sub":"repo:acme/app:ref:refs/heads/main",` +
		`"aud":["sts"],"exp":4102444800,"iat":1700000000,"nbf":1700000000,"jti":"abc","repository":"acme/app",` +
		`"repository_owner":"acme","ref":"refs/heads/main","workflow":"ci","act":{"sub":"x","aud":"y"}}`)
	if _, err := decodeObject(payload); err != nil {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(100, func() { _, _ = decodeObject(payload) })
	oracle := testing.AllocsPerRun(100, func() { _, _ = oracleDecodeObject(payload) })
	t.Logf("decodeObject %.0f allocs, oracle %.0f", allocs, oracle)
	if allocs > 32 {
		t.Errorf("decodeObject = %.0f allocs, want ≤ 32", allocs)
	}
}
