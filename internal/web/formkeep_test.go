package web_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestFormErrorKeepsWhatWasTyped: a form the server refuses comes back
// with the error and with what the person typed or chose, not with the
// stored values: the edit form (a new name, Selected scopes with none
// ticked), the regenerate form (of the same token, not of an empty one)
// and the create form (Custom date, its date); nothing changes.
func TestFormErrorKeepsWhatWasTyped(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	ada := newPerson(t, s)
	ada.signIn(t, "admin", "")
	ada.createPAT(t, "old name", "full")
	m := patIDRE.FindStringSubmatch(ada.do(t, http.MethodGet, "/tokens", nil, nil).body)
	if m == nil {
		t.Fatal("token not listed")
	}
	id := m[1]

	r := ada.do(t, http.MethodPost, "/tokens/"+id, url.Values{"name": {"new name"}, "permission": {"custom"}}, nil)
	if r.status != http.StatusBadRequest || !strings.Contains(r.body, "choose at least one scope") {
		t.Fatalf("edit without a scope: %d\n%s", r.status, r.body)
	}
	if !strings.Contains(r.body, `value="new name"`) || !strings.Contains(r.body, `value="custom" checked`) {
		t.Errorf("the edit form came back with the stored values, not what was typed:\n%s", r.body)
	}

	r = ada.do(t, http.MethodPost, "/tokens/"+id+"/regenerate", url.Values{"expires": {"custom"}, "expires_on": {"1999-01-01"}}, nil)
	if r.status != http.StatusBadRequest || !strings.Contains(r.body, `<option value="custom" selected>`) ||
		!strings.Contains(r.body, `value="1999-01-01"`) || !strings.Contains(r.body, `action="/tokens/`+id+`/regenerate"`) ||
		!strings.Contains(r.body, "<strong>old name</strong>") {
		t.Errorf("regenerate with a date in the past: %d, the choice not kept:\n%s", r.status, r.body)
	}

	r = ada.do(t, http.MethodPost, "/tokens", url.Values{"name": {"far"}, "expires": {"custom"}, "expires_on": {"1999-01-01"}}, nil)
	if r.status != http.StatusBadRequest || !strings.Contains(r.body, `value="1999-01-01"`) {
		t.Errorf("create with a date in the past: %d, the date not kept:\n%s", r.status, r.body)
	}
	if page := ada.do(t, http.MethodGet, "/tokens", nil, nil).body; !strings.Contains(page, "old name") || strings.Contains(page, "new name") ||
		strings.Contains(page, ">far<") {
		t.Errorf("a refused form changed something:\n%s", page)
	}
}

// TestCustomDateWithAnotherChoiceRefused: the custom date field is always
// shown, so a date picked while the expiry stays "30 days" was dropped
// without a word and the token expired in 30 days. The contradiction is
// refused, nothing is made, and the form says how to resolve it.
func TestCustomDateWithAnotherChoiceRefused(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	ada := newPerson(t, s)
	ada.signIn(t, "admin", "")
	r := ada.do(t, http.MethodPost, "/tokens", url.Values{"name": {"dated"}, "permission": {"full"},
		"expires": {"30"}, "expires_on": {"2099-01-01"}}, nil)
	if r.status != http.StatusBadRequest || !strings.Contains(r.body, "choose Custom date") {
		t.Errorf("a date with the 30-day choice: %d\n%s", r.status, r.body)
	}
	if page := ada.do(t, http.MethodGet, "/tokens", nil, nil).body; strings.Contains(page, ">dated<") {
		t.Error("a token was made from a contradictory form")
	}
}
