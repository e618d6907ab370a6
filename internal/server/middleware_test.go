package server

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// newTest returns a server with the given extra routes and a JSON log buffer.
func newTest(t *testing.T, o Options, routes func(mux *http.ServeMux)) (*Server, *bytes.Buffer) {
	t.Helper()
	var logs bytes.Buffer
	o.Logger = slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	if routes != nil {
		o.Mounters = append(o.Mounters, MounterFunc(routes))
	}
	return New(o), &logs
}

func do(t *testing.T, h http.Handler, req *http.Request) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestRequestID(t *testing.T) {
	s, _ := newTest(t, Options{}, nil)
	tests := []struct {
		name, incoming string
		wantEcho       bool
	}{
		{"none", "", false},
		{"sane is echoed", "abc-123_X.y", true},
		{"128 chars is echoed", strings.Repeat("a", 128), true},
		{"too long is replaced", strings.Repeat("a", 129), false},
		{"bad chars are replaced", "abc def", false},
		{"injection is replaced", "x\",\"admin\":\"true", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, path := range []string{"/livez", "/nope"} {
				req := httptest.NewRequest("GET", path, nil)
				if tc.incoming != "" {
					req.Header.Set(RequestIDHeader, tc.incoming)
				}
				got := do(t, s.Handler(), req).Header().Get(RequestIDHeader)
				if tc.wantEcho && got != tc.incoming {
					t.Errorf("%s: X-Request-Id = %q, want echo %q", path, got, tc.incoming)
				}
				if !tc.wantEcho && (got == tc.incoming || !saneRequestID(got) || len(got) != 32) {
					t.Errorf("%s: X-Request-Id = %q, want a fresh 32-char ID", path, got)
				}
			}
		})
	}
}

func TestRecoverPanics(t *testing.T) {
	s, logs := newTest(t, Options{}, func(mux *http.ServeMux) {
		mux.HandleFunc("GET /boom", func(http.ResponseWriter, *http.Request) { panic("kaboom") })
	})
	req := httptest.NewRequest("GET", "/boom", nil)
	req.Header.Set(RequestIDHeader, "req-1")
	rec := do(t, s.Handler(), req)
	if rec.Code != http.StatusInternalServerError {
		t.Fatalf("status = %d, want 500", rec.Code)
	}
	var body errorBody
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || body.RequestID != "req-1" || body.Error != "internal error" {
		t.Errorf("body = %s (%v), want internal error with request id", rec.Body, err)
	}
	if strings.Contains(rec.Body.String(), "kaboom") {
		t.Errorf("panic value leaked to the client: %s", rec.Body)
	}
	if !strings.Contains(logs.String(), `"request_id":"req-1"`) || !strings.Contains(logs.String(), "kaboom") {
		t.Errorf("panic not logged with request id:\n%s", logs)
	}
	if got := do(t, s.Handler(), httptest.NewRequest("GET", "/livez", nil)).Code; got != http.StatusOK {
		t.Errorf("after panic /livez = %d, want 200", got)
	}
}

func TestBodyLimit(t *testing.T) {
	s, _ := newTest(t, Options{MaxBodyBytes: 10}, func(mux *http.ServeMux) {
		mux.HandleFunc("POST /echo", func(w http.ResponseWriter, r *http.Request) {
			b, err := io.ReadAll(r.Body)
			if err != nil {
				WriteBodyError(w, r, err)
				return
			}
			w.Write(b)
		})
	})
	tests := []struct {
		name    string
		body    string
		chunked bool
		want    int
	}{
		{"within limit", "0123456789", false, http.StatusOK},
		{"declared too large", "0123456789x", false, http.StatusRequestEntityTooLarge},
		{"chunked too large", "0123456789x", true, http.StatusRequestEntityTooLarge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest("POST", "/echo", strings.NewReader(tc.body))
			if tc.chunked {
				req.ContentLength = -1
			}
			if got := do(t, s.Handler(), req).Code; got != tc.want {
				t.Errorf("POST %d bytes: status = %d, want %d", len(tc.body), got, tc.want)
			}
		})
	}
}

func TestAccessLogOmitsSecrets(t *testing.T) {
	s, logs := newTest(t, Options{}, func(mux *http.ServeMux) {
		mux.HandleFunc("POST /things/{id}", func(w http.ResponseWriter, r *http.Request) { io.Copy(io.Discard, r.Body) })
	})
	req := httptest.NewRequest("POST", "/things/42?access_token=QUERYSECRET", strings.NewReader("BODYSECRET"))
	req.Header.Set("Authorization", "Bearer HEADERSECRET")
	req.Header.Set(RequestIDHeader, "req-log")
	do(t, s.Handler(), req)
	var line map[string]any
	for l := range strings.SplitSeq(strings.TrimSpace(logs.String()), "\n") {
		if strings.Contains(l, `"http request"`) {
			_ = json.Unmarshal([]byte(l), &line)
		}
	}
	if line["route"] != "/things/{id}" || line["method"] != "POST" || line["status"] != float64(200) || line["request_id"] != "req-log" {
		t.Errorf("access log line = %v, want route pattern, method, status and request id", line)
	}
	for _, secret := range []string{"QUERYSECRET", "BODYSECRET", "HEADERSECRET", "/things/42"} {
		if strings.Contains(logs.String(), secret) {
			t.Errorf("log contains %q:\n%s", secret, logs)
		}
	}
}

func TestMetrics(t *testing.T) {
	s, _ := newTest(t, Options{}, func(mux *http.ServeMux) {
		mux.HandleFunc("GET /things/{id}", func(http.ResponseWriter, *http.Request) {})
	})
	for _, p := range []string{"/things/1", "/things/2", "/random/path"} {
		do(t, s.Handler(), httptest.NewRequest("GET", p, nil))
	}
	do(t, s.Handler(), httptest.NewRequest("BREW", "/things/3", nil))
	s.Metrics().StorageError("CreatePAT", io.EOF)
	body := do(t, s.Handler(), httptest.NewRequest("GET", "/metrics", nil)).Body.String()
	for _, want := range []string{
		`sts_http_requests_total{code="200",method="GET",route="/things/{id}"} 2`,
		`sts_http_requests_total{code="404",method="GET",route="unmatched"} 1`,
		`sts_http_requests_total{code="405",method="OTHER",route="unmatched"} 1`,
		`sts_http_request_duration_seconds_bucket{route="/things/{id}",le="+Inf"} 2`,
		`sts_storage_errors_total{op="CreatePAT"} 1`,
		`go_goroutines`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if strings.Contains(body, "/things/1") || strings.Contains(body, "/random/path") {
		t.Errorf("/metrics uses raw paths as labels")
	}
}
