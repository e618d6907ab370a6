package web_test

import (
	"net/http"
	"strings"
	"testing"
)

// TestDeleteAllTokens: a person whose laptop was stolen, or who finds
// their tokens in a leaked repository, withdraws every token at once, as
// GitHub's "Revoke all": one confirmation, one form. Only the person's
// own tokens go, never one holding sts:admin (the page does not manage
// those, docs/security.md A-03) nor another person's; another site's form
// is refused and deletes nothing (T-81; docs/security.md A-90).
func TestDeleteAllTokens(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	ada := newPerson(t, s)
	ada.signIn(t, "admin", "")
	var mine []string
	for _, name := range []string{"ci", "laptop", "deploy"} {
		mine = append(mine, ada.createPAT(t, name, "full"))
	}
	admin := secretRE.FindString(s.sts(t, "pat", "create", "--user", "admin", "--expires-in", "30d", "--scope", "*", "--scope", "sts:admin", "--description", "ops"))
	s.sts(t, "principal", "create", "--org", "default", "--kind", "user", "--name", "grace")
	grace := newPerson(t, s)
	grace.signIn(t, "grace", "")
	hers := grace.createPAT(t, "grace ci", "full")
	working := func(sec string) bool {
		code, _ := s.identity(t, sec)
		return code == http.StatusOK
	}

	list := ada.do(t, http.MethodGet, "/tokens", nil, nil).body
	if !strings.Contains(list, `href="/tokens/delete-all"`) {
		t.Fatalf("the list offers no way to delete every token:\n%s", list)
	}
	confirm := ada.do(t, http.MethodGet, "/tokens/delete-all", nil, nil)
	if confirm.status != http.StatusOK || !strings.Contains(confirm.body, `action="/tokens/delete-all"`) || !strings.Contains(confirm.body, "3 access tokens") {
		t.Fatalf("confirmation: %d\n%s", confirm.status, confirm.body)
	}

	r := ada.do(t, http.MethodPost, "/tokens/delete-all", forForm(t, confirm), map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"})
	if r.status != http.StatusForbidden {
		t.Errorf("another site's form: %d, want 403", r.status)
	}
	for _, sec := range mine {
		if !working(sec) {
			t.Fatal("another site's form deleted a token")
		}
	}

	if r := ada.do(t, http.MethodPost, "/tokens/delete-all", forForm(t, confirm), nil); r.status != http.StatusSeeOther || r.header.Get("Location") != "/tokens" {
		t.Fatalf("delete all: %d %q\n%s", r.status, r.header.Get("Location"), r.body)
	}
	for i, sec := range mine {
		if working(sec) {
			t.Errorf("token %d still works after delete all", i)
		}
	}
	if !working(admin) {
		t.Error("the sts:admin token, which the page does not manage, was deleted")
	}
	if !working(hers) {
		t.Error("another person's token was deleted")
	}
	list = ada.do(t, http.MethodGet, "/tokens", nil, nil).body
	for _, name := range []string{"ci", "laptop", "deploy"} {
		if strings.Contains(list, "<td>"+name+"</td>") {
			t.Errorf("%s is still listed after delete all", name)
		}
	}
	if !strings.Contains(list, "<td>ops</td>") {
		t.Error("the sts:admin token is no longer listed")
	}
}
