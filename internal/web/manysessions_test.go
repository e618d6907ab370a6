package web_test

import (
	"net/http"
	"testing"

	"github.com/opensts/sts/internal/web"
)

// TestSessionsBounded (docs/security.md T-211): every sign-in makes a
// session, so a person signed in again and again (a script, a provider
// that answers at once) kept every one, each read and drawn by every
// /tokens after. A sign-in past web.MaxSessions ends the person's oldest:
// its cookie signs in no more, the rest and the newest stay live, the
// page lists no more than the bound, and another person's are untouched.
func TestSessionsBounded(t *testing.T) {
	s := startServer(t)
	s.sts(t, "principal", "create", "--org", "default", "--kind", "user", "--name", "grace")
	grace := newPerson(t, s)
	grace.signIn(t, "grace", "/tokens")

	people := make([]*person, web.MaxSessions+2)
	for i := range people {
		people[i] = newPerson(t, s)
		people[i].signIn(t, "admin", "/tokens")
	}
	admin := principalsNamed(t, s, "admin")
	if len(admin) != 1 {
		t.Fatalf("admin: %q", admin)
	}
	list, err := s.store(t).ListWebSessions(t.Context(), admin[0])
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != web.MaxSessions {
		t.Errorf("%d sign-ins left %d sessions stored, want %d", len(people), len(list), web.MaxSessions)
	}
	for i, p := range people {
		r := p.do(t, http.MethodGet, "/tokens", nil, nil)
		live := r.status == http.StatusOK
		if want := i >= 2; live != want {
			t.Errorf("sign-in %d of %d: /tokens %d, live %v, want %v", i+1, len(people), r.status, live, want)
		}
	}
	if r := grace.do(t, http.MethodGet, "/tokens", nil, nil); r.status != http.StatusOK {
		t.Errorf("another person's session ended: /tokens %d", r.status)
	}
}
