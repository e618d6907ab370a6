package web

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/opensts/sts/internal/audit"
	"github.com/opensts/sts/internal/pat"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/storage/sqlstore"
	"github.com/opensts/sts/internal/ststest/sqlitetest"
)

// noWrites is a store whose transactions fail, as when the database
// refuses writes for a moment; reads work.
type noWrites struct{ *sqlstore.Store }

func (noWrites) WithTx(context.Context, func(storage.Tx) error) error {
	return errors.New("database is read-only just now")
}

// TestTypedValuesKeptWhenStorageFails: a form refused because storage
// failed (503) comes back as typed, with the failure said, as a form
// refused for a mistake does (docs/security.md T-114, T-124): the create
// form with its name, permission, scopes and custom date; the edit form
// with its name; the regenerate form with its expiry choice and date.
// It used to be a bare "Try again" page: what was typed was gone.
func TestTypedValuesKeptWhenStorageFails(t *testing.T) {
	ctx := t.Context()
	st := sqlitetest.NewStore(t)
	p := acmeAda(t, st)
	pepper := []byte("0123456789abcdef0123456789abcdef")
	good, err := pat.NewService(st, pepper)
	if err != nil {
		t.Fatal(err)
	}
	made, _, err := good.Create(ctx, audit.Caller{Actor: "test"}, pat.CreateInput{OwnerID: p.ID, Description: "stored name",
		Scopes: []string{}, ExpiresAt: time.Now().Add(30 * 24 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	pats, err := pat.NewService(noWrites{st}, pepper)
	if err != nil {
		t.Fatal(err)
	}
	h, err := New(Options{Issuer: "https://sts.example", Store: st, PATs: pats, IdleTimeout: time.Hour, AbsoluteTimeout: 8 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	date := time.Now().Add(10 * 24 * time.Hour).UTC().Format(time.DateOnly)
	send := func(path string, form url.Values, handle func(http.ResponseWriter, *http.Request, session)) (int, string) {
		r := httptest.NewRequest(http.MethodPost, path, strings.NewReader(form.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.SetPathValue("id", made.ID)
		w := httptest.NewRecorder()
		handle(w, r, session{rec: storage.WebSession{CreatedAt: time.Now()}, principal: p}) // signed in just now
		return w.Code, w.Body.String()
	}
	for _, c := range []struct {
		name   string
		path   string
		form   url.Values
		handle func(http.ResponseWriter, *http.Request, session)
		want   []string
	}{
		{"create", "/tokens", url.Values{"name": {"typed by hand"}, "permission": {"custom"}, "scope": {pat.ScopeTokensRead},
			"expires": {"custom"}, "expires_on": {date}}, h.createPAT,
			[]string{`value="typed by hand"`, `value="custom" checked`, `value="` + pat.ScopeTokensRead + `" checked`, `value="custom" selected`, `value="` + date + `"`}},
		{"update", "/tokens/" + made.ID, url.Values{"name": {"renamed by hand"}, "permission": {"full"}}, h.updatePAT,
			[]string{`value="renamed by hand"`, `value="full" checked`}},
		{"regenerate", "/tokens/" + made.ID + "/regenerate", url.Values{"expires": {"custom"}, "expires_on": {date}}, h.regeneratePAT,
			[]string{`value="custom" selected`, `value="` + date + `"`}},
	} {
		code, body := send(c.path, c.form, c.handle)
		if code != http.StatusServiceUnavailable || !strings.Contains(body, "try again") {
			t.Errorf("%s while storage fails: %d, want 503 saying to try again:\n%s", c.name, code, body)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(body, w) {
				t.Errorf("%s while storage fails: the answer lacks %s, what was typed", c.name, w)
			}
		}
	}
}
