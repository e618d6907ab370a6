package oauth2_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/opensts/sts/internal/oauth2"
)

func TestWriteError(t *testing.T) {
	tests := []struct {
		name       string
		err        error
		wantStatus int
		wantBody   map[string]string
	}{
		{"invalid_request", &oauth2.Error{Code: oauth2.ErrorInvalidRequest, Description: "subject_token rejected", Reason: "token_expired"},
			400, map[string]string{"error": "invalid_request", "error_description": "subject_token rejected", "reason": "token_expired"}},
		{"invalid_client is 401", fmt.Errorf("auth: %w", oauth2.NewError(oauth2.ErrorInvalidClient, "client authentication failed")),
			401, map[string]string{"error": "invalid_client", "error_description": "client authentication failed"}},
		{"unknown error is server_error without the cause", errors.New("pq: password authentication failed for user sts"),
			500, map[string]string{"error": "server_error", "error_description": "internal error"}},
	}
	for _, tc := range tests {
		rec := httptest.NewRecorder()
		oauth2.WriteError(rec, nil, tc.err)
		if rec.Code != tc.wantStatus {
			t.Errorf("%s: status = %d, want %d", tc.name, rec.Code, tc.wantStatus)
		}
		if cc := rec.Header().Get("Cache-Control"); cc != "no-store" {
			t.Errorf("%s: Cache-Control = %q, want no-store", tc.name, cc)
		}
		var got map[string]string
		if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(got) != fmt.Sprint(tc.wantBody) {
			t.Errorf("%s: body = %v, want %v", tc.name, got, tc.wantBody)
		}
		if strings.Contains(rec.Body.String(), "pq:") {
			t.Errorf("%s: body leaks the cause: %s", tc.name, rec.Body)
		}
		if tc.wantStatus == http.StatusUnauthorized && rec.Header().Get("WWW-Authenticate") == "" {
			t.Errorf("%s: 401 without WWW-Authenticate", tc.name)
		}
	}
}

// headerOnly is a ResponseWriter that keeps its header map and discards the
// body, to count what WriteJSON itself allocates.
type headerOnly struct{ h http.Header }

func (w headerOnly) Header() http.Header         { return w.h }
func (w headerOnly) Write(b []byte) (int, error) { return len(b), nil }
func (w headerOnly) WriteHeader(int)             {}

// TestWriteJSONAllocs: the three response headers are written under their
// canonical keys from shared values, not one new slice each per response;
// what remains is encoding the body.
func TestWriteJSONAllocs(t *testing.T) {
	w := headerOnly{h: http.Header{}}
	v := struct {
		A string `json:"access_token"`
	}{"x"}
	allocs := testing.AllocsPerRun(100, func() { oauth2.WriteJSON(w, http.StatusOK, v) })
	if limit := 2 + raceSlack(); allocs > limit {
		t.Errorf("WriteJSON = %.0f allocs, want ≤ %.0f (the encoded body)", allocs, limit)
	}
	if w.h.Get("Content-Type") != "application/json" || w.h.Get("Cache-Control") != "no-store" || w.h.Get("Pragma") != "no-cache" {
		t.Errorf("headers = %v", w.h)
	}
	// A handler adding to a shared value must not change the next response.
	w.h.Add("Cache-Control", "private")
	w2 := headerOnly{h: http.Header{}}
	oauth2.WriteJSON(w2, http.StatusOK, v)
	if got := w2.h.Values("Cache-Control"); len(got) != 1 || got[0] != "no-store" {
		t.Errorf("Cache-Control of the next response = %v", got)
	}
}

// bigAppender appends a token-sized body (a signed JWT is 500–900 bytes).
type bigAppender struct{}

var bigToken = strings.Repeat("x", 800)

func (bigAppender) AppendJSON(b []byte) []byte {
	b = append(b, `{"access_token":"`...)
	b = append(b, bigToken...)
	return append(b, `","token_type":"Bearer"}`...)
}

// TestWriteJSONAppenderAllocs: a JSONAppender's body is built in a reused
// buffer, not grown from nothing on every response (a token response of
// 800 bytes took eight allocations, one per doubling), and the body
// written is the appender's, newline-terminated.
func TestWriteJSONAppenderAllocs(t *testing.T) {
	var w http.ResponseWriter = headerOnly{h: http.Header{}} // boxed once, not per call
	oauth2.WriteJSON(w, http.StatusOK, bigAppender{})        // warm the buffer
	if allocs := testing.AllocsPerRun(100, func() { oauth2.WriteJSON(w, http.StatusOK, bigAppender{}) }); allocs > raceSlack() {
		t.Errorf("WriteJSON of an 800-byte appender = %.0f allocs, want ≤ %.0f", allocs, raceSlack())
	}
	rec := httptest.NewRecorder()
	oauth2.WriteJSON(rec, http.StatusOK, bigAppender{})
	if want := string(bigAppender{}.AppendJSON(nil)) + "\n"; rec.Body.String() != want {
		t.Errorf("body = %q…, want the appender's with a newline", rec.Body.String()[:40])
	}
}

// raceSlack is the one allocation more a pooled path may make under the
// race detector (raceEnabled).
func raceSlack() float64 {
	if raceEnabled {
		return 1
	}
	return 0
}

// TestWriteErrorDescriptionCharacters: WriteError holds error_description
// to RFC 6749 §5.2's set (%x20-21 / %x23-5B / %x5D-7E), whatever the
// description quotes (docs/security.md T-154).
func TestWriteErrorDescriptionCharacters(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"client authentication failed", "client authentication failed"},
		{`parameter "x\"\\é" repeated`, `parameter 'x?'???' repeated`},
		{"tab\there, nul\x00, del\x7f", "tab?here, nul?, del?"},
	} {
		rec := httptest.NewRecorder()
		oauth2.WriteError(rec, nil, oauth2.NewError(oauth2.ErrorInvalidRequest, tc.in))
		var body struct {
			Description string `json:"error_description"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || body.Description != tc.want {
			t.Errorf("WriteError(%q) error_description = %q (%v), want %q", tc.in, body.Description, err, tc.want)
		}
	}
}
