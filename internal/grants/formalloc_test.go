package grants

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/opensts/sts/internal/storage"
)

// TestJoinSpace: the scope string of a token is the scopes joined by one
// space, and one scope (the usual request) is taken as it is, without a
// copy (docs/performance.md, client_credentials third pass).
func TestJoinSpace(t *testing.T) {
	for _, c := range []struct {
		in   []string
		want string
	}{{nil, ""}, {[]string{"read"}, "read"}, {[]string{"read", "write"}, "read write"}, {[]string{"a", "", "c"}, "a  c"}} {
		if got := joinSpace(c.in); got != c.want {
			t.Errorf("joinSpace(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	one := []string{"read"}
	if n := testing.AllocsPerRun(100, func() { _ = joinSpace(one) }); n != 0 {
		t.Errorf("joinSpace of one scope: %v allocations, want 0", n)
	}
	two := []string{"read", "write"}
	if n := testing.AllocsPerRun(100, func() { _ = joinSpace(two) }); n != 1 {
		t.Errorf("joinSpace of two scopes: %v allocations, want 1", n)
	}
}

// TestReadFormContentType: the media type is judged as mime.ParseMediaType
// reads it (case, parameters, spaces), and the plain value every client
// sends is accepted without parsing it (no parameter map per request).
func TestReadFormContentType(t *testing.T) {
	for _, c := range []struct {
		ct string
		ok bool
	}{
		{"application/x-www-form-urlencoded", true},
		{"Application/X-WWW-Form-Urlencoded", true},
		{"application/x-www-form-urlencoded; charset=utf-8", true},
		{"application/x-www-form-urlencoded ;charset=UTF-8", true},
		{"", false},
		{"application/json", false},
		{"application/x-www-form-urlencoded2", false},
		{"application/x-www-form-urlencoded; =bad", false},
		{"multipart/form-data; boundary=x", false},
	} {
		r := httptest.NewRequest(http.MethodPost, PathToken, strings.NewReader("grant_type=x&scope=read"))
		if c.ct != "" {
			r.Header.Set("Content-Type", c.ct)
		}
		v, err := readForm(r, tokenParams)
		if (err == nil) != c.ok {
			t.Errorf("readForm with Content-Type %q: err = %v, want ok %v", c.ct, err, c.ok)
		}
		if err == nil && v.Get("scope") != "read" {
			t.Errorf("readForm with Content-Type %q: scope = %q", c.ct, v.Get("scope"))
		}
	}
	body := strings.NewReader("")
	r := httptest.NewRequest(http.MethodPost, PathToken, body)
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	// An empty body: io.ReadAll's buffer and url.ParseQuery's map are all
	// that is left.
	n := testing.AllocsPerRun(100, func() {
		body.Reset("")
		if _, err := readForm(r, tokenParams); err != nil {
			t.Fatal(err)
		}
	})
	if n > 2 {
		t.Errorf("readForm of the plain content type: %v allocations, want at most 2", n)
	}
}

// TestClientAudiencesDefault: with no audience or resource requested, the
// token's audience is the client's first, taken from the client's own
// record without a copy (docs/performance.md, client_credentials fifth
// pass); requested ones are returned as asked, and a client without an
// audience is refused.
func TestClientAudiencesDefault(t *testing.T) {
	client := &storage.Client{Audiences: []string{"https://api.example", "https://other.example"}}
	none := &Request{}
	aud, err := clientAudiences(none, client)
	if err != nil || len(aud) != 1 || aud[0] != "https://api.example" {
		t.Fatalf("clientAudiences(none) = %q, %v, want [https://api.example]", aud, err)
	}
	// Capacity one: an append elsewhere copies instead of writing over
	// the client's second audience.
	if cap(aud) != 1 {
		t.Errorf("clientAudiences(none): capacity %d, want 1", cap(aud))
	}
	// Kept, as the grant keeps it in the token's claims.
	if n := testing.AllocsPerRun(100, func() { audienceSink, _ = clientAudiences(none, client) }); n != 0 {
		t.Errorf("clientAudiences(none): %v allocations, want 0", n)
	}
	asked := &Request{Audiences: []string{"https://other.example"}, Resources: []string{"https://res.example"}}
	if aud, err := clientAudiences(asked, client); err != nil || strings.Join(aud, " ") != "https://other.example https://res.example" {
		t.Errorf("clientAudiences(asked) = %q, %v", aud, err)
	}
	if _, err := clientAudiences(none, &storage.Client{}); err == nil {
		t.Error("clientAudiences of a client without audiences: no error")
	}
}

// audienceSink keeps TestClientAudiencesDefault's result on the heap.
var audienceSink []string

// TestReadFormBodyAllocs: a form body costs url.ParseQuery's allocations
// and its string, no read buffer on top (docs/performance.md,
// "client_credentials, sixth pass"); a body larger than the pooled
// buffers reads whole.
func TestReadFormBodyAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts differ under the race detector")
	}
	const form = "grant_type=client_credentials&scope=read"
	parse := testing.AllocsPerRun(100, func() {
		v, err := url.ParseQuery(form)
		if err != nil {
			t.Fatal(err)
		}
		formSink = v
	})
	body := strings.NewReader(form)
	r := httptest.NewRequest(http.MethodPost, PathToken, body)
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	n := testing.AllocsPerRun(100, func() {
		body.Reset(form)
		v, err := readForm(r, tokenParams)
		if err != nil {
			t.Fatal(err)
		}
		if v.Get("grant_type") != "client_credentials" {
			t.Fatalf("readForm: grant_type %q, want client_credentials", v.Get("grant_type"))
		}
		formSink = v
	})
	if n > parse+1 {
		t.Errorf("readForm: %v allocations, url.ParseQuery alone %v: more than the body's string on top", n, parse)
	}
	long := "scope=" + strings.Repeat("a", 20<<10)
	r = httptest.NewRequest(http.MethodPost, PathToken, strings.NewReader(long))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	v, err := readForm(r, tokenParams)
	if err != nil || len(v.Get("scope")) != 20<<10 {
		t.Errorf("readForm of a %d-byte body: scope of %d bytes, %v", len(long), len(v.Get("scope")), err)
	}
}

// TestReadBodyClearsWholeBuffer: a body read through the pooled buffer
// leaves none of its bytes there, past the part it used included: at the
// size cap http.MaxBytesReader lets the reader write one byte beyond what
// it reports, and a reader may use all of what it is given as scratch.
func TestReadBodyClearsWholeBuffer(t *testing.T) {
	secret := strings.Repeat("S", 2000)
	checked := 0
	for range 50 {
		_, err := readBody(http.MaxBytesReader(httptest.NewRecorder(), io.NopCloser(strings.NewReader(secret)), 1000))
		if !errors.As(err, new(*http.MaxBytesError)) {
			t.Fatalf("readBody past the cap: %v", err)
		}
		bp := bodyBuffers.Get().(*[]byte)
		b := (*bp)[:cap(*bp)]
		if cap(b) > 1000 { // the buffer that read this body
			checked++
			for i, c := range b {
				if c != 0 {
					t.Fatalf("pooled body buffer (cap %d): byte %d = %q after a failed read, not cleared", cap(b), i, c)
				}
			}
		}
		bodyBuffers.Put(bp)
	}
	if checked == 0 {
		t.Fatal("never got the grown buffer back from the pool")
	}
}

var formSink url.Values
