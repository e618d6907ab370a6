package pat_test

import (
	"context"
	"github.com/opensts/sts/internal/ststest/mutate"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opensts/sts/internal/pat"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/sts"
)

const day = 24 * time.Hour

func TestLifecycle(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			f := newFixture(t, b.open(t))
			ctx := t.Context()
			p, secret := f.create(t, pat.ScopeFull)
			if strings.Contains(f.logs.String(), secret) {
				t.Fatal("secret appeared in the log")
			}
			got, err := f.svc.Authenticate(ctx, secret)
			if err != nil || got.Principal.ID != f.user.ID || got.OrgTier != "enterprise" || got.TokenID != p.ID {
				t.Fatalf("Authenticate = %+v, %v", got, err)
			}
			events, _ := f.store.ListAudit(ctx, storage.AuditFilter{OrgID: f.org.ID})
			if len(events) != 1 || events[0].Action != pat.ActionPATCreate || events[0].Target != "pat:"+p.ID {
				t.Fatalf("audit after create = %+v", events)
			}

			desc := "renamed"
			up, err := f.svc.Update(ctx, caller, f.user.ID, p.ID, pat.UpdateInput{Description: &desc, Scopes: &[]string{}})
			if err != nil || up.Description != desc || len(up.Scopes) != 0 {
				t.Fatalf("Update = %+v, %v", up, err)
			}
			if a, err := f.svc.Authenticate(ctx, secret); err != nil || len(a.Scopes) != 0 {
				t.Fatalf("after update: Authenticate = %+v, %v (secret must survive update)", a, err)
			}

			reg, secret2, err := f.svc.Regenerate(ctx, caller, f.user.ID, p.ID, f.clock.Now().Add(7*day))
			if err != nil || secret2 == secret || !reg.ExpiresAt.Equal(f.clock.Now().Add(7*day)) {
				t.Fatalf("Regenerate = %+v, %v", reg, err)
			}
			if _, err := f.svc.Authenticate(ctx, secret); sts.ErrorCode(err) != sts.Unauthenticated {
				t.Fatalf("old secret after regenerate: err = %v, want unauthenticated", err)
			}
			if _, err := f.svc.Authenticate(ctx, secret2); err != nil {
				t.Fatalf("new secret: %v", err)
			}
			if err := f.svc.Delete(ctx, caller, f.user.ID, p.ID); err != nil {
				t.Fatalf("Delete: %v", err)
			}
			if _, err := f.svc.Authenticate(ctx, secret2); sts.ErrorCode(err) != sts.Unauthenticated {
				t.Fatalf("after delete: err = %v, want unauthenticated", err)
			}
			if _, err := f.svc.Get(ctx, f.user.ID, p.ID); sts.ErrorCode(err) != sts.NotFound {
				t.Fatalf("Get after delete: %v", err)
			}
			events, _ = f.store.ListAudit(ctx, storage.AuditFilter{OrgID: f.org.ID})
			if len(events) != 4 {
				t.Errorf("audit events = %d, want 4 (create, update, regenerate, delete)", len(events))
			}
		})
	}
}

// TestCreateRejects covers docs/security.md T-69: no expiry, or one beyond
// policy, at create and at regenerate, is a validation error that changes
// nothing.
func TestCreateRejects(t *testing.T) {
	f := newFixture(t, backends[0].open(t))
	now := f.clock.Now()
	tests := []struct {
		name string
		in   pat.CreateInput
		want sts.Code
	}{
		{"no expiry", pat.CreateInput{OwnerID: f.user.ID}, sts.Invalid},
		{"five years", pat.CreateInput{OwnerID: f.user.ID, ExpiresAt: now.Add(5 * 365 * day)}, sts.Invalid},
		{"367 days", pat.CreateInput{OwnerID: f.user.ID, ExpiresAt: now.Add(367 * day)}, sts.Invalid},
		{"one hour", pat.CreateInput{OwnerID: f.user.ID, ExpiresAt: now.Add(time.Hour)}, sts.Invalid},
		{"in the past", pat.CreateInput{OwnerID: f.user.ID, ExpiresAt: now.Add(-day)}, sts.Invalid},
		{"unknown scope", pat.CreateInput{OwnerID: f.user.ID, ExpiresAt: now.Add(day), Scopes: []string{"root"}}, sts.Invalid},
		{"long description", pat.CreateInput{OwnerID: f.user.ID, ExpiresAt: now.Add(day), Description: strings.Repeat("x", 256)}, sts.Invalid},
		{"unknown owner", pat.CreateInput{OwnerID: storage.NewID(), ExpiresAt: now.Add(day)}, sts.NotFound},
		{"no owner", pat.CreateInput{ExpiresAt: now.Add(day)}, sts.Invalid},
	}
	for _, tc := range tests {
		_, secret, err := f.svc.Create(t.Context(), caller, tc.in)
		if sts.ErrorCode(err) != tc.want || secret != "" {
			t.Errorf("%s: Create = %q, %v; want code %s", tc.name, secret, err, tc.want)
		}
	}
	if l, _ := f.store.ListPATs(t.Context(), f.user.ID); len(l) != 0 {
		t.Errorf("rejected creates stored %d tokens", len(l))
	}
	p, _ := f.create(t)
	if _, _, err := f.svc.Regenerate(t.Context(), caller, f.user.ID, p.ID, now.Add(400*day)); sts.ErrorCode(err) != sts.Invalid {
		t.Errorf("Regenerate past policy: %v, want invalid", err)
	}
	if _, _, err := f.svc.Regenerate(t.Context(), caller, storage.NewID(), p.ID, now.Add(day)); sts.ErrorCode(err) != sts.NotFound {
		t.Errorf("Regenerate someone else's token: %v, want not_found", err)
	}
	for _, d := range []time.Duration{day, 366 * day} {
		if _, _, err := f.svc.Create(t.Context(), caller, pat.CreateInput{OwnerID: f.user.ID, ExpiresAt: now.Add(d)}); err != nil {
			t.Errorf("Create with lifetime %v: %v", d, err)
		}
	}
}

// TestAuthenticateSameError covers docs/security.md T-65–T-69: malformed,
// unknown, expired, over-policy and disabled-owner tokens all get the same
// code and message, so nothing can be enumerated from the answer.
func TestAuthenticateSameError(t *testing.T) {
	f := newFixture(t, backends[0].open(t))
	ctx := t.Context()
	_, live := f.create(t)
	_, expiring := f.create(t)
	deleted, deletedSecret := f.create(t)
	if err := f.svc.Delete(ctx, caller, "", deleted.ID); err != nil {
		t.Fatal(err)
	}
	// A token stored with a 5-year expiry (as by an older policy) fails at use.
	longSecret := pat.PrefixPAT.Generate()
	if err := f.store.CreatePAT(ctx, storage.PAT{ID: storage.NewID(), OrgID: f.org.ID, OwnerID: f.user.ID,
		Digest: pat.Digest(testPepper, longSecret), CreatedAt: f.clock.Now(), ExpiresAt: f.clock.Now().Add(5 * 365 * day)}); err != nil {
		t.Fatal(err)
	}
	// Another principal, disabled after its token was made.
	bob := storage.Principal{ID: storage.NewID(), OrgID: f.org.ID, Kind: storage.PrincipalUser, Name: "bob"}
	if err := f.store.CreatePrincipal(ctx, bob); err != nil {
		t.Fatal(err)
	}
	_, bobSecret, err := f.svc.Create(ctx, caller, pat.CreateInput{OwnerID: bob.ID, ExpiresAt: f.clock.Now().Add(2 * day)})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.store.UpdatePrincipal(ctx, bob.ID, func(p storage.Principal) (storage.Principal, error) { p.Disabled = true; return p, nil }); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(31 * day) // expiring (30 days) is now expired; live too, so recreate it
	_, live = f.create(t)

	cases := map[string]string{
		"truncated (T-65)":      live[:len(live)-1],
		"bad checksum (T-66)":   mutate.LastChar(live),
		"unknown (T-68)":        pat.PrefixPAT.Generate(),
		"expired (T-68)":        expiring,
		"deleted (T-68)":        deletedSecret,
		"disabled owner (T-68)": bobSecret,
		"over policy (T-69)":    longSecret,
		"exchange prefix":       pat.PrefixExchangeToken.Generate(),
	}
	for name, secret := range cases {
		_, err := f.svc.Authenticate(ctx, secret)
		if sts.ErrorCode(err) != sts.Unauthenticated || sts.ErrorMessage(err) != "invalid token" {
			t.Errorf("%s: Authenticate = %v, want unauthenticated \"invalid token\"", name, err)
		}
	}
	if _, err := f.svc.Authenticate(ctx, live); err != nil {
		t.Errorf("live token: %v", err)
	}
}

func TestLastUsedBatched(t *testing.T) {
	f := newFixture(t, backends[0].open(t))
	ctx := t.Context()
	p, secret := f.create(t)
	for range 50 {
		if _, err := f.svc.Authenticate(ctx, secret); err != nil {
			t.Fatal(err)
		}
	}
	if got, _ := f.store.GetPAT(ctx, p.ID); !got.LastUsedAt.IsZero() {
		t.Fatal("lastUsed written on the request path")
	}
	first := f.clock.Now()
	if err := f.svc.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(30 * time.Second)
	f.svc.Authenticate(ctx, secret)
	f.svc.Flush(ctx)
	if got, _ := f.store.GetPAT(ctx, p.ID); !got.LastUsedAt.Equal(first) {
		t.Fatalf("lastUsed = %v, want %v (one write per minute)", got.LastUsedAt, first)
	}
	f.clock.Advance(time.Minute)
	f.svc.Authenticate(ctx, secret)
	f.svc.Flush(ctx)
	if got, _ := f.store.GetPAT(ctx, p.ID); !got.LastUsedAt.Equal(f.clock.Now()) {
		t.Fatalf("lastUsed = %v, want %v", got.LastUsedAt, f.clock.Now())
	}
}

func TestListPagination(t *testing.T) {
	f := newFixture(t, backends[0].open(t))
	var ids []string
	for range 7 {
		p, _ := f.create(t)
		ids = append(ids, p.ID)
		f.clock.Advance(time.Second)
	}
	var got []string
	tok := ""
	for pages := 0; ; pages++ {
		page, next, err := f.svc.List(t.Context(), f.user.ID, tok, 3)
		if err != nil || pages > 3 {
			t.Fatalf("List: %v (pages %d)", err, pages)
		}
		for _, p := range page {
			got = append(got, p.ID)
		}
		if next == "" {
			break
		}
		tok = next
	}
	if strings.Join(got, ",") != strings.Join(ids, ",") {
		t.Errorf("paged IDs = %v, want %v", got, ids)
	}
	if _, _, err := f.svc.List(t.Context(), f.user.ID, "!!", 3); sts.ErrorCode(err) != sts.Invalid {
		t.Errorf("bad page token: %v", err)
	}
}

// TestPageCursor: PageCursor names the page List would show from the
// cursor it is given when that page still holds a token, else the last
// page there is, judged against walking the pages with List: for every
// page size and every cursor List hands out, before and after the newest
// tokens are deleted (pages emptied, or not).
func TestPageCursor(t *testing.T) {
	f := newFixture(t, backends[0].open(t))
	var ids []string
	for range 7 {
		p, _ := f.create(t)
		ids = append(ids, p.ID)
		f.clock.Advance(time.Second)
	}
	ctx := t.Context()
	cursors := func(size int) []string { // "" then each page's token
		out := []string{""}
		for tok := ""; ; {
			_, next, err := f.svc.List(ctx, f.user.ID, tok, size)
			if err != nil {
				t.Fatal(err)
			}
			if next == "" {
				return out
			}
			out, tok = append(out, next), next
		}
	}
	sizes := []int{1, 2, 3, 7, 8}
	given := map[int][]string{}
	for _, size := range sizes {
		given[size] = cursors(size)
	}
	for left := 7; left >= 0; left-- {
		for _, size := range sizes {
			now := cursors(size)
			for _, tok := range given[size] {
				page, _, err := f.svc.List(ctx, f.user.ID, tok, size)
				if err != nil {
					t.Fatal(err)
				}
				want := tok
				if len(page) == 0 {
					want = now[len(now)-1]
				}
				if got, err := f.svc.PageCursor(ctx, f.user.ID, tok, size); err != nil || got != want {
					t.Errorf("%d tokens, pages of %d, cursor %q: PageCursor = %q, %v; want %q", left, size, tok, got, err, want)
				}
			}
		}
		if left > 0 {
			if err := f.svc.Delete(ctx, caller, f.user.ID, ids[left-1]); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := f.svc.PageCursor(ctx, f.user.ID, "!!", 3); sts.ErrorCode(err) != sts.Invalid {
		t.Errorf("bad page token: %v", err)
	}
}

// TestRaces runs the concurrency promises of docs/security.md D-03 and the
// exchange-token contract on every backend: N concurrent ExchangeToken
// uses yield exactly one success; concurrent Regenerates leave exactly one
// working secret (the last committed).
func TestRaces(t *testing.T) {
	const n = 16
	for _, b := range backends {
		t.Run(b.name+"/exchange", func(t *testing.T) {
			f := newFixture(t, b.open(t))
			_, secret, err := f.svc.CreateExchangeToken(t.Context(), caller, f.user.ID, 0, pat.ExchangeSource{})
			if err != nil {
				t.Fatal(err)
			}
			var ok atomic.Int32
			var wg sync.WaitGroup
			for range n {
				wg.Go(func() {
					a, err := f.svc.ConsumeExchangeToken(context.Background(), secret)
					switch {
					case err == nil && a.Principal.ID == f.user.ID:
						ok.Add(1)
					case sts.ErrorCode(err) != sts.Unauthenticated:
						t.Errorf("ConsumeExchangeToken: %v", err)
					}
				})
			}
			wg.Wait()
			if ok.Load() != 1 {
				t.Fatalf("%d of %d concurrent exchanges succeeded, want exactly 1", ok.Load(), n)
			}
		})
		t.Run(b.name+"/regenerate", func(t *testing.T) {
			f := newFixture(t, b.open(t))
			f.svc.CacheTTL = -1
			p, old := f.create(t)
			secrets := make([]string, n)
			var wg sync.WaitGroup
			for i := range n {
				wg.Go(func() {
					_, s, err := f.svc.Regenerate(context.Background(), caller, f.user.ID, p.ID, f.clock.Now().Add(10*day))
					if err != nil {
						t.Errorf("Regenerate: %v", err)
					}
					secrets[i] = s
				})
			}
			wg.Wait()
			working := 0
			for _, s := range append(secrets, old) {
				if _, err := f.svc.Authenticate(t.Context(), s); err == nil {
					working++
				}
			}
			if working != 1 {
				t.Fatalf("%d secrets work after %d concurrent regenerates, want exactly 1", working, n)
			}
		})
	}
}

func TestExchangeTokenRejects(t *testing.T) {
	f := newFixture(t, backends[0].open(t))
	ctx := t.Context()
	if _, _, err := f.svc.CreateExchangeToken(ctx, caller, f.user.ID, 6*time.Minute, pat.ExchangeSource{}); sts.ErrorCode(err) != sts.Invalid {
		t.Errorf("6 minute exchange token: %v, want invalid", err)
	}
	_, secret, err := f.svc.CreateExchangeToken(ctx, caller, f.user.ID, time.Minute, pat.ExchangeSource{})
	if err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(2 * time.Minute)
	if _, err := f.svc.ConsumeExchangeToken(ctx, secret); sts.ErrorCode(err) != sts.Unauthenticated {
		t.Errorf("expired exchange token: %v", err)
	}
	_, patSecret := f.create(t)
	if _, err := f.svc.ConsumeExchangeToken(ctx, patSecret); sts.ErrorCode(err) != sts.Unauthenticated {
		t.Errorf("PAT as exchange token: %v", err)
	}
}

// TestExchangeTokenKeepsItsCreator (docs/security.md A-50): an exchange
// token expires no later than the credential that created it, hands that
// expiry and the recorded source claims to what it buys, and is refused
// once its creator is disabled or deleted.
func TestExchangeTokenKeepsItsCreator(t *testing.T) {
	f := newFixture(t, backends[0].open(t))
	ctx := t.Context()
	admin := storage.Principal{ID: storage.NewID(), OrgID: f.org.ID, Kind: storage.PrincipalUser, Name: "admin",
		CreatedAt: f.clock.Now(), UpdatedAt: f.clock.Now()}
	if err := f.store.CreatePrincipal(ctx, admin); err != nil {
		t.Fatal(err)
	}
	credExp := f.clock.Now().Add(time.Minute)
	src := pat.ExchangeSource{CreatorID: admin.ID, ExpiresAt: credExp, Claims: []byte(`{"src_sub":["x"]}`)}
	x, secret, err := f.svc.CreateExchangeToken(ctx, caller, f.user.ID, 5*time.Minute, src)
	if err != nil {
		t.Fatal(err)
	}
	if !x.ExpiresAt.Equal(credExp) {
		t.Errorf("ExpiresAt = %s, want the credential's %s", x.ExpiresAt, credExp)
	}
	au, err := f.svc.ConsumeExchangeToken(ctx, secret)
	if err != nil {
		t.Fatal(err)
	}
	if !au.ExpiresAt.Equal(credExp) || string(au.Claims) != string(src.Claims) {
		t.Errorf("consumed: ExpiresAt %s, Claims %s; want %s, %s", au.ExpiresAt, au.Claims, credExp, src.Claims)
	}

	for _, tc := range []struct {
		name string
		end  func()
	}{
		{"disabled", func() {
			if err := f.store.UpdatePrincipal(ctx, admin.ID, func(p storage.Principal) (storage.Principal, error) {
				p.Disabled = true
				return p, nil
			}); err != nil {
				t.Fatal(err)
			}
		}},
		{"deleted", func() {
			if err := f.store.DeletePrincipal(ctx, admin.ID); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		_, secret, err := f.svc.CreateExchangeToken(ctx, caller, f.user.ID, 0, src)
		if err != nil {
			t.Fatal(err)
		}
		tc.end()
		if _, err := f.svc.ConsumeExchangeToken(ctx, secret); sts.ErrorCode(err) != sts.Unauthenticated {
			t.Errorf("creator %s: %v, want unauthenticated", tc.name, err)
		}
	}
}

// TestServiceWithoutPepperIsUnavailable: serve builds the service before
// storage is reachable; until the pepper is known every call must fail as
// unavailable (retryable), never digest under an empty key, and nothing is
// written.
func TestServiceWithoutPepperIsUnavailable(t *testing.T) {
	store := newSQLiteStore(t)
	s, err := pat.NewService(store, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(t.Context(), pat.PrefixPAT.Generate()); sts.ErrorCode(err) != sts.Unavailable {
		t.Errorf("Authenticate before SetPepper = %v, want Unavailable", err)
	}
	if _, err := s.ConsumeExchangeToken(t.Context(), pat.PrefixExchangeToken.Generate()); sts.ErrorCode(err) != sts.Unavailable {
		t.Errorf("ConsumeExchangeToken before SetPepper = %v, want Unavailable", err)
	}
	if err := s.SetPepper([]byte("short")); err == nil {
		t.Error("SetPepper accepted a short pepper")
	}
	if err := s.SetPepper(make([]byte, 32)); err != nil {
		t.Fatalf("SetPepper: %v", err)
	}
	if _, err := s.Authenticate(t.Context(), pat.PrefixPAT.Generate()); sts.ErrorCode(err) != sts.Unauthenticated {
		t.Errorf("Authenticate of an unknown PAT after SetPepper = %v, want Unauthenticated", err)
	}
}
