package web_test

import (
	"net/http"
	"strings"
	"testing"
)

// reportLeak posts secrets to the public leak-report endpoint, as a secret
// scanner or a person who found them does, and wants its 202.
func (s *server) reportLeak(t *testing.T, secrets ...string) {
	t.Helper()
	body := `{"credentials":["` + strings.Join(secrets, `","`) + `"]}`
	resp, err := http.Post(s.URL+"/credentials/revoke", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("leak report: %d, want 202", resp.StatusCode)
	}
}

// TestLeakedTokenStopsAtOnce: a token made on the page, in use by a
// program, then reported leaked at POST /credentials/revoke (a secret
// scanner found it in a public repository) stops working as soon as the
// report is answered, on the server that took it, as a delete on the page
// does, and leaves the page's list. The report deleted the row behind the
// PAT service's back, so the service's cached check (docs/design.md
// #storage-and-replicas) went on accepting the secret for up to 5 seconds
// after the 202 (docs/security.md T-172).
func TestLeakedTokenStopsAtOnce(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	ada := newPerson(t, s)
	ada.signIn(t, "admin", "")
	sec := ada.createPAT(t, "ci deploy", "full")
	if code, _ := s.identity(t, sec); code != http.StatusOK {
		t.Fatalf("the new token: %d, want 200", code)
	}
	s.reportLeak(t, sec)
	if code, _ := s.identity(t, sec); code != http.StatusUnauthorized {
		t.Errorf("the token reported leaked, right after the 202: %d, want 401", code)
	}
	if r := ada.do(t, http.MethodGet, "/tokens", nil, nil); !strings.Contains(r.body, "You have no access tokens.") {
		t.Errorf("the token reported leaked is still listed:\n%s", r.body)
	}
}
