package revoke_test

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opensts/sts/internal/revoke"
	"github.com/opensts/sts/internal/secret"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/tokens"
)

// events lists every audit event stored so far, oldest first.
func (f *fixture) events(t *testing.T) []storage.AuditEvent {
	t.Helper()
	evs, err := f.store.ListAudit(t.Context(), storage.AuditFilter{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	for i, j := 0, len(evs)-1; i < j; i, j = i+1, j-1 {
		evs[i], evs[j] = evs[j], evs[i]
	}
	return evs
}

// refreshFamily stores a two-token refresh family of client "a" and
// returns the current token's secret and the family ID.
func (f *fixture) refreshFamily(t *testing.T) (string, string) {
	t.Helper()
	family := storage.NewID()
	raw := secret.PrefixRefreshToken.Generate()
	now := storage.Now(time.Now())
	for i, r := range []string{secret.PrefixRefreshToken.Generate(), raw} {
		rt := storage.RefreshToken{ID: storage.NewID(), FamilyID: family, Digest: secret.Digest(testPepper, r), ClientID: "a", OrgID: "o1",
			Subject: "p1", PrincipalID: "p1", CreatedAt: now.Add(time.Duration(i) * time.Second), ExpiresAt: now.Add(time.Hour)}
		if err := f.store.CreateRefreshToken(t.Context(), rt); err != nil {
			t.Fatal(err)
		}
	}
	return raw, family
}

// TestRevocationsAreAudited: every revocation RFC 7009 makes leaves one
// audit event naming who revoked what, from where (docs/design.md#audit);
// a request that revokes nothing leaves none, so a client cannot fill the
// trail with no-ops.
func TestRevocationsAreAudited(t *testing.T) {
	f := newFixture(t, nil)
	do := func(user, pass, body string) {
		t.Helper()
		req := request{method: "POST", path: revoke.Path, contentType: form, body: body, user: user, pass: pass, userAgent: "audit-test/1"}
		if resp, b := f.do(t, req); resp.StatusCode != http.StatusOK {
			t.Fatalf("revoke = %d %s, want 200", resp.StatusCode, b)
		}
	}

	// Nothing revoked, nothing audited.
	foreign, _ := f.mint(t, f.other, "a")
	othersToken, _ := f.mint(t, f.keys, "a")
	do("a", f.secretA, tokenForm("garbage"))
	do("a", f.secretA, tokenForm(foreign))
	do("a", f.secretA, tokenForm(secret.PrefixRefreshToken.Generate()))
	do("a", f.secretA, tokenForm(f.secretB)) // another client's secret
	do("b", f.secretB, tokenForm(othersToken))
	if evs := f.events(t); len(evs) != 0 {
		t.Fatalf("no-op revocations stored %d events: %+v", len(evs), evs)
	}

	own, claims := f.mint(t, f.keys, "a")
	do("a", f.secretA, tokenForm(own))
	raw, family := f.refreshFamily(t)
	do("a", f.secretA, tokenForm(raw))
	do("a", f.secretA, tokenForm(f.secretA)) // its own secret, last: it stops authenticating
	clientless, clientlessClaims := f.mint(t, f.keys, "")
	do("", "", tokenForm(clientless)) // its holder, without a client

	want := []struct{ actor, action, target, detail string }{
		{"client:a", revoke.ActionTokenRevoke, "jti:" + claims.ID, "revoked by client a"},
		{"client:a", revoke.ActionRefreshFamilyRevoke, "refresh_family:" + family, "refresh_tokens_revoked=2"},
		{"client:a", revoke.ActionClientSecretRevoke, "client:a", ""},
		{revoke.ActorHolder, revoke.ActionTokenRevoke, "jti:" + clientlessClaims.ID, "revoked by its holder"},
	}
	evs := f.events(t)
	if len(evs) != len(want) {
		t.Fatalf("stored %d events, want %d: %+v", len(evs), len(want), evs)
	}
	for i, w := range want {
		e := evs[i]
		if e.Action != w.action || e.Target != w.target || e.Actor != w.actor || e.OrgID != "o1" || e.Outcome != "revoked" ||
			e.Detail != w.detail || e.ClientIP != "127.0.0.1" || e.UserAgent != "audit-test/1" || e.ID == "" || e.Time.IsZero() {
			t.Errorf("event %d = %+v, want action %q target %q detail %q by %s of o1 from 127.0.0.1", i, e, w.action, w.target, w.detail, w.actor)
		}
		if strings.Contains(e.Detail+e.Target, own) || strings.Contains(e.Detail+e.Target, raw) || strings.Contains(e.Detail+e.Target, f.secretA) {
			t.Errorf("event %d carries a secret: %+v", i, e)
		}
	}
	if !f.revoked(t, claims) || !f.revoked(t, clientlessClaims) {
		t.Error("an access token is not revoked")
	}
}

// auditDownStore is storage whose audit writes fail; it counts them.
type auditDownStore struct {
	storage.Store
	tries *atomic.Int32
}

func (s auditDownStore) AppendAudit(context.Context, ...storage.AuditEvent) error {
	s.tries.Add(1)
	return errors.New("audit table locked")
}

// TestRevocationStandsWhenItsEventFails: a revocation is never undone or
// refused because its audit event could not be stored (docs/design.md#audit):
// the token is revoked and the client gets 200.
func TestRevocationStandsWhenItsEventFails(t *testing.T) {
	tries := new(atomic.Int32)
	f := newFixture(t, func(s storage.Store) revoke.Store { return auditDownStore{s, tries} })
	own, claims := f.mint(t, f.keys, "a")
	resp, body := f.do(t, request{method: "POST", path: revoke.Path, contentType: form, body: tokenForm(own), user: "a", pass: f.secretA})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status = %d %s, want 200", resp.StatusCode, body)
	}
	if !f.revoked(t, claims) {
		t.Error("the token is not revoked")
	}
	if n := tries.Load(); n != 1 {
		t.Errorf("the revocation tried to store %d audit events, want 1 (that failed)", n)
	}
}

// TestLeakedRefreshTokenEndsItsFamily: a leak report of a refresh token
// ends its family and, through the family's revocation row, every access
// token the family minted (docs/security.md A-32).
func TestLeakedRefreshTokenEndsItsFamily(t *testing.T) {
	f := newFixture(t, nil)
	raw, family := f.refreshFamily(t)
	resp, body := f.do(t, request{method: "POST", path: revoke.PathLeak, contentType: "application/json", body: `{"credentials":["` + raw + `"]}`})
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("leak report = %d %s, want 202", resp.StatusCode, body)
	}
	if _, err := f.store.GetRevocation(t.Context(), tokens.RevocationIDGrant(family)); err != nil {
		t.Errorf("no revocation of the leaked family's access tokens: %v", err)
	}
	if rt, err := f.store.GetRefreshTokenByDigest(t.Context(), secret.Digest(testPepper, raw)); err != nil || !rt.Revoked {
		t.Errorf("leaked refresh token = %+v, %v: want revoked", rt, err)
	}
}

// TestLeakRevocationsBelongToTheirOrganization: docs/security.md D-19. A
// leak report's revocation of a PAT, a one-time exchange token, a refresh
// family or a client secret is stored with the credential's organization,
// so that organization's administrators read it; the report itself,
// which may name credentials of several organizations, stays
// instance-level.
func TestLeakRevocationsBelongToTheirOrganization(t *testing.T) {
	f := newFixture(t, nil)
	ctx := t.Context()
	now := storage.Now(time.Now())
	patRaw, exRaw := secret.PrefixPAT.Generate(), secret.PrefixExchangeToken.Generate()
	p := storage.PAT{ID: storage.NewID(), OrgID: "o1", OwnerID: "p1", Scopes: []string{"*"}, Digest: secret.Digest(testPepper, patRaw),
		CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
	if err := f.store.CreatePAT(ctx, p); err != nil {
		t.Fatal(err)
	}
	if err := f.store.CreateExchangeToken(ctx, storage.ExchangeToken{ID: storage.NewID(), OrgID: "o1", PrincipalID: "p1",
		Digest: secret.Digest(testPepper, exRaw), CreatedAt: now, ExpiresAt: now.Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	rtRaw, family := f.refreshFamily(t)
	body := `{"credentials":["` + patRaw + `","` + exRaw + `","` + rtRaw + `","` + f.secretA + `"]}`
	resp, b := f.do(t, request{method: "POST", path: revoke.PathLeak, contentType: "application/json", body: body})
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("leak report = %d %s, want 202", resp.StatusCode, b)
	}
	want := map[string]bool{"pat:" + p.ID: true, "exchange_token": true, "refresh_family:" + family: true, "client:a": true}
	for _, ev := range f.events(t) {
		switch ev.Action {
		case "credential.revoke_leaked":
			if !want[ev.Target] {
				t.Errorf("unexpected revocation %s", ev.Target)
			}
			delete(want, ev.Target)
			if ev.OrgID != "o1" {
				t.Errorf("%s %s: org %q, want o1", ev.Action, ev.Target, ev.OrgID)
			}
		case "credential.leak_report":
			if ev.OrgID != "" {
				t.Errorf("%s: org %q, want instance-level", ev.Action, ev.OrgID)
			}
		}
	}
	if len(want) > 0 {
		t.Errorf("revocations without an event: %v", want)
	}
}

// storedPAT stores a full-access PAT of p1 in o1, for a leak report to
// name; it returns the row and its secret.
func (f *fixture) storedPAT(t *testing.T) (storage.PAT, string) {
	t.Helper()
	now := storage.Now(time.Now())
	raw := secret.PrefixPAT.Generate()
	p := storage.PAT{ID: storage.NewID(), OrgID: "o1", OwnerID: "p1", Scopes: []string{"*"}, Digest: secret.Digest(testPepper, raw),
		CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
	if err := f.store.CreatePAT(t.Context(), p); err != nil {
		t.Fatal(err)
	}
	return p, raw
}

// reportGivingUp sends a leak report whose client gives up after 300 ms,
// before any answer.
func (f *fixture) reportGivingUp(t *testing.T, body string) {
	t.Helper()
	rctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, f.srv.URL+revoke.PathLeak, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("answered %d before the client gave up", resp.StatusCode)
	}
}

// refreshDownStore is storage that cannot read refresh tokens just now.
type refreshDownStore struct{ storage.Store }

func (refreshDownStore) GetRefreshTokenByDigest(context.Context, []byte) (storage.RefreshToken, error) {
	return storage.RefreshToken{}, errors.New("connection reset")
}

// TestLeakReportAuditsWhatItRevokedBeforeAFailure: a leak report naming a
// PAT and then a refresh token while storage cannot read refresh tokens
// deleted the PAT and answered 503, and the events of what it had
// revoked, stored only at the end, were never stored: the PAT vanished
// with no trace its organization's administrators could read, and the
// scanner's retry finds it gone and records nothing either. The
// revocations made are audited before the 503 (docs/design.md#audit).
func TestLeakReportAuditsWhatItRevokedBeforeAFailure(t *testing.T) {
	f := newFixture(t, func(s storage.Store) revoke.Store { return refreshDownStore{s} })
	ctx := t.Context()
	p, patRaw := f.storedPAT(t)
	body := `{"credentials":["` + patRaw + `","` + secret.PrefixRefreshToken.Generate() + `"]}`
	resp, b := f.do(t, request{method: "POST", path: revoke.PathLeak, contentType: "application/json", body: body})
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("leak report with refresh tokens unreadable = %d %s, want 503", resp.StatusCode, b)
	}
	if _, err := f.store.GetPAT(ctx, p.ID); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("the reported PAT: %v, want deleted", err)
	}
	var got []string
	for _, ev := range f.events(t) {
		got = append(got, ev.Action+" "+ev.Target)
	}
	if want := "credential.revoke_leaked pat:" + p.ID; !slices.Contains(got, want) {
		t.Errorf("events %q, want %q", got, want)
	}
}

// refreshStuckStore: reading refresh tokens waits on a lock until the
// request's context ends (its call deadline, or the client gone), as a
// PostgreSQL statement behind a row lock does. appended is closed once
// the first AppendAudit has returned.
type refreshStuckStore struct {
	storage.Store
	appended chan struct{}
	once     *sync.Once
}

func (s refreshStuckStore) GetRefreshTokenByDigest(ctx context.Context, _ []byte) (storage.RefreshToken, error) {
	select {
	case <-ctx.Done():
		return storage.RefreshToken{}, ctx.Err()
	case <-time.After(3 * time.Second):
		return storage.RefreshToken{}, errors.New("test: the request's context never ended")
	}
}

func (s refreshStuckStore) AppendAudit(ctx context.Context, evs ...storage.AuditEvent) error {
	defer s.once.Do(func() { close(s.appended) })
	return s.Store.AppendAudit(ctx, evs...)
}

// TestLeakReportAuditsWhatItRevokedPastItsDeadline: the storage failure
// that stops a leak report part-way is most often the request's own
// deadline (a lock wait, a slow database, the client gone). The events
// of what it had revoked were stored with that same, ended, context, so
// they were dropped exactly then: the PAT deleted, no
// credential.revoke_leaked event. They are stored detached from it
// (storage.Detach, docs/security.md F-87).
func TestLeakReportAuditsWhatItRevokedPastItsDeadline(t *testing.T) {
	appended := make(chan struct{})
	f := newFixture(t, func(s storage.Store) revoke.Store { return refreshStuckStore{s, appended, new(sync.Once)} })
	ctx := t.Context()
	p, patRaw := f.storedPAT(t)
	body := `{"credentials":["` + patRaw + `","` + secret.PrefixRefreshToken.Generate() + `"]}`
	f.reportGivingUp(t, body)
	select {
	case <-appended:
	case <-time.After(5 * time.Second):
		t.Fatal("the stopped report stored no audit events within 5 s")
	}
	if _, err := f.store.GetPAT(ctx, p.ID); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("the reported PAT: %v, want deleted", err)
	}
	var got []string
	for _, ev := range f.events(t) {
		got = append(got, ev.Action+" "+ev.Target)
	}
	if want := "credential.revoke_leaked pat:" + p.ID; !slices.Contains(got, want) {
		t.Errorf("PAT deleted by the report, but events %q lack %q", got, want)
	}
}

// appendSlowStore's AppendAudit takes 600 ms unless its context ends
// first: an append made with the request's context fails when the client
// gives up meanwhile, one detached from it does not.
type appendSlowStore struct{ storage.Store }

func (s appendSlowStore) AppendAudit(ctx context.Context, evs ...storage.AuditEvent) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(600 * time.Millisecond):
	}
	return s.Store.AppendAudit(ctx, evs...)
}

// TestLeakReportAuditsWhenItsDeadlineEndsAtTheAppend: a report that
// revoked everything it named still owes its events when the request's
// context ends at the last step (the client gave up, a deadline); stored
// with that context they were lost with it, the PAT deleted and no
// credential.revoke_leaked event (docs/design.md#audit). They are stored
// detached from it, as on the failure path (docs/security.md F-87).
func TestLeakReportAuditsWhenItsDeadlineEndsAtTheAppend(t *testing.T) {
	f := newFixture(t, func(s storage.Store) revoke.Store { return appendSlowStore{s} })
	ctx := t.Context()
	p, patRaw := f.storedPAT(t)
	f.reportGivingUp(t, `{"credentials":["`+patRaw+`"]}`)
	want := "credential.revoke_leaked pat:" + p.ID
	var got []string
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		got = got[:0]
		for _, ev := range f.events(t) {
			got = append(got, ev.Action+" "+ev.Target)
		}
		if slices.Contains(got, want) {
			break
		}
	}
	if _, err := f.store.GetPAT(ctx, p.ID); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("the reported PAT: %v, want deleted", err)
	}
	if !slices.Contains(got, want) {
		t.Errorf("PAT deleted by the report, but after 5 s events %q lack %q", got, want)
	}
}
