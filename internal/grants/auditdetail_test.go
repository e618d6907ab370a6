package grants

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestAuditDetailMatchesEncodingJSON: the hand-written encoder of the audit
// detail writes exactly what encoding/json writes for auditDetail, for
// every combination of empty and set fields and for strings encoding/json
// escapes (quotes, backslashes, HTML characters, control characters,
// non-ASCII, invalid UTF-8, U+2028).
func TestAuditDetailMatchesEncodingJSON(t *testing.T) {
	values := []string{"", "token-exchange", `a"b\c`, "<script>&", "line\nbreak\t\x01", "ünï€😀", "bad\xffutf8", "sep\u2028ara\u2029tor",
		"https://issuer.example/realms/x", "urn:ietf:params:oauth:grant-type:token-exchange"}
	fields := func(d *auditDetail) []*string {
		return []*string{&d.Grant, &d.Dialect, &d.Pool, &d.Provider, &d.SrcIss, &d.SrcSub, &d.JTI, &d.Reason, &d.ClientID}
	}
	check := func(d auditDetail) {
		t.Helper()
		want, err := json.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		if got := d.appendJSON(nil); string(got) != string(want) {
			t.Fatalf("appendJSON(%+v)\n got %s\nwant %s", d, got, want)
		}
	}
	n := len(fields(&auditDetail{}))
	for mask := range 1 << n { // every field empty or set
		var d auditDetail
		for i, f := range fields(&d) {
			if mask&(1<<i) != 0 {
				*f = values[(i+mask)%len(values)]
			}
		}
		check(d)
	}
	for _, v := range values { // every value in every field
		for i := range n {
			var d auditDetail
			*fields(&d)[i] = v
			check(d)
		}
	}
	if got := string((&auditDetail{Dialect: "x"}).appendJSON([]byte("keep:"))); got != `keep:{"dialect":"x"}` {
		t.Fatalf("appendJSON does not append: %s", got)
	}
}

// TestAuditDetailAllocations: the detail of an exchange, every field set
// (the client's ID included, docs/security.md D-19), costs its string
// alone (the buffer is on the stack), and is what encoding/json writes.
func TestAuditDetailAllocations(t *testing.T) {
	d := auditDetail{Grant: "urn:ietf:params:oauth:grant-type:token-exchange", Dialect: "rfc8693", Pool: "pool-1",
		Provider: "idp", SrcIss: "https://token.actions.githubusercontent.com", SrcSub: "repo:acme/app:ref:refs/heads/main",
		JTI: "0190b2c4-6a2e-7c1d-9f3e-5d4c3b2a1f0e", Reason: "client_grant_not_allowed", ClientID: "0190b2c4-6a2e-7c1d-9f3e-5d4c3b2a1f0f"}
	want, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	if got := d.encode(); got != string(want) {
		t.Fatalf("encode = %s, want %s", got, want)
	}
	if n := testing.AllocsPerRun(100, func() { _ = d.encode() }); n > 1 {
		t.Errorf("encode: %v allocations, want at most 1", n)
	}
}

// BenchmarkAuditDetail: the audit detail of one exchange, as encoding/json
// wrote it before and as appendJSON writes it.
func BenchmarkAuditDetail(b *testing.B) {
	d := auditDetail{Grant: "urn:ietf:params:oauth:grant-type:token-exchange", Dialect: "rfc8693", Pool: "pool-1",
		Provider: "idp", SrcIss: "https://issuer.example", SrcSub: "user-ab", JTI: "0190b2c4-6a2e-7c1d-9f3e-5d4c3b2a1f0e"}
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			out, _ := json.Marshal(d)
			_ = string(out)
		}
	})
	b.Run("appendJSON", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = string(d.appendJSON(make([]byte, 0, 256)))
		}
	})
}

// TestAuditTargetKindID: a token.exchange event's target has the form of
// every other event's, kind:id (docs/api.md "sts.v1.AuditService"): the
// provider that judged it, or the pool when no provider did, or nothing
// without a pool (client_credentials, refresh_token).
func TestAuditTargetKindID(t *testing.T) {
	h := &Handler{}
	r := httptest.NewRequest(http.MethodPost, "/oauth2/token", nil)
	for _, tc := range []struct{ pool, provider, want string }{
		{"ci", "github", "provider:ci/github"},
		{"ci", "", "pool:ci"},
		{"", "", ""},
	} {
		req := &Request{trace: trace{pool: tc.pool, provider: tc.provider}}
		if got := h.auditEvent(r, req, "g", Observation{}).Target; got != tc.want {
			t.Errorf("pool %q provider %q: target %q, want %q", tc.pool, tc.provider, got, tc.want)
		}
	}
}
