package hosttoken_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/opensts/sts/internal/hosttoken"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/sts"
)

func wantCode(t *testing.T, what string, err error, want sts.Code) {
	t.Helper()
	if got := sts.ErrorCode(err); got != want {
		t.Errorf("%s: code %q (%v), want %q", what, got, err, want)
	}
}

// TestVaultLifecycle: a runner stores a user's token; subject, runner and
// admin may act on it; a bystander of the same organization and anyone of
// another organization get not_found, exactly as for an unknown ID.
func TestVaultLifecycle(t *testing.T) {
	t.Parallel()
	for name, newStore := range backends(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t, newStore(t))
			ctx := t.Context()
			exp := time.Now().Add(8 * time.Hour).Truncate(time.Microsecond).UTC()
			tok := w.create(t, "gho_value1", "ghr_refresh1", "", exp)
			if tok.Subject.ID != w.user.PrincipalID || tok.Subject.Kind != storage.PrincipalUser || !tok.ExpiresAt.Equal(exp) {
				t.Errorf("Create = %+v", tok)
			}
			for _, c := range []hosttoken.Caller{w.user, w.runner, w.admin} {
				if _, err := w.svc.Get(ctx, c, tok.ID); err != nil {
					t.Errorf("Get as %s: %v", c.Kind, err)
				}
				v, err := w.svc.Value(ctx, c, tok.ID)
				if err != nil || v.Token != "gho_value1" || v.RefreshToken != "ghr_refresh1" {
					t.Errorf("Value as %s = %+v, %v", c.Kind, v, err)
				}
			}
			// Every value read was audited with who, which token and the request ID.
			evs, err := w.store.ListAudit(ctx, storage.AuditFilter{OrgID: w.user.OrgID, Limit: 100})
			if err != nil {
				t.Fatal(err)
			}
			reads := 0
			for _, ev := range evs {
				if ev.Action == "host_token.read_value" && ev.Target == "host_token:"+tok.ID && strings.HasPrefix(ev.RequestID, "req-") {
					reads++
				}
			}
			if reads != 3 {
				t.Errorf("audited value reads = %d, want 3", reads)
			}
			for _, c := range []hosttoken.Caller{w.bystander, w.evil} {
				_, err := w.svc.Get(ctx, c, tok.ID)
				wantCode(t, "Get as outsider", err, sts.NotFound)
				_, err = w.svc.Value(ctx, c, tok.ID)
				wantCode(t, "Value as outsider", err, sts.NotFound)
				_, err = w.svc.Update(ctx, c, tok.ID, hosttoken.UpdateInput{Scopes: []string{"x"}})
				wantCode(t, "Update as outsider", err, sts.NotFound)
				wantCode(t, "Delete as outsider", w.svc.Delete(ctx, c, tok.ID), sts.NotFound)
				list, _, err := w.svc.List(ctx, c, hosttoken.ListInput{})
				if err != nil || len(list) != 0 {
					t.Errorf("List as outsider = %d tokens, %v; want none", len(list), err)
				}
			}
			_, err = w.svc.Get(ctx, w.user, storage.NewID())
			wantCode(t, "Get(unknown id)", err, sts.NotFound)

			newTok := "gho_value2"
			if _, err := w.svc.Update(ctx, w.user, tok.ID, hosttoken.UpdateInput{Token: &newTok, Scopes: []string{"repo", "gist"}}); err != nil {
				t.Fatalf("Update: %v", err)
			}
			v, err := w.svc.Value(ctx, w.runner, tok.ID)
			if err != nil || v.Token != newTok || v.RefreshToken != "ghr_refresh1" {
				t.Errorf("Value after update = %+v, %v", v, err)
			}
			list, next, err := w.svc.List(ctx, w.runner, hosttoken.ListInput{RunnerID: w.runner.PrincipalID})
			if err != nil || len(list) != 1 || next != "" || len(list[0].Scopes) != 2 {
				t.Errorf("List(runner) = %+v, %q, %v", list, next, err)
			}
			if err := w.svc.Delete(ctx, w.admin, tok.ID); err != nil {
				t.Fatalf("Delete: %v", err)
			}
			_, err = w.svc.Get(ctx, w.user, tok.ID)
			wantCode(t, "Get after delete", err, sts.NotFound)
		})
	}
}

// TestCreateRejectsBadInput: every gitpod.v1.RunnerConfigurationService rule gives Invalid naming the
// field, and nothing is written.
func TestCreateRejectsBadInput(t *testing.T) {
	t.Parallel()
	store := backends(t)["sqlite"](t)
	w := newWorld(t, store)
	good := func() hosttoken.CreateInput {
		return hosttoken.CreateInput{RunnerID: w.runner.PrincipalID, UserID: w.user.PrincipalID, Host: "github.com",
			Token: "gho_x", Source: storage.HostTokenSourceOAuth}
	}
	many := make([]string, 101)
	for i := range many {
		many[i] = "s"
	}
	for _, tc := range []struct {
		name, field string
		mut         func(*hosttoken.CreateInput)
	}{
		{"empty token", "token", func(in *hosttoken.CreateInput) { in.Token = "" }},
		{"huge token", "token", func(in *hosttoken.CreateInput) { in.Token = strings.Repeat("a", 16<<10+1) }},
		{"empty host", "host", func(in *hosttoken.CreateInput) { in.Host = "" }},
		{"host with space", "host", func(in *hosttoken.CreateInput) { in.Host = "git hub.com" }},
		{"101 scopes", "scopes", func(in *hosttoken.CreateInput) { in.Scopes = many }},
		{"empty scope", "scopes[0]", func(in *hosttoken.CreateInput) { in.Scopes = []string{""} }},
		{"non-uuid runner", "runnerId", func(in *hosttoken.CreateInput) { in.RunnerID = "runner-1" }},
		{"missing runner", "runnerId", func(in *hosttoken.CreateInput) { in.RunnerID = "" }},
		{"non-uuid integration", "integrationId", func(in *hosttoken.CreateInput) { in.IntegrationID = "gh" }},
		{"non-uuid user", "userId", func(in *hosttoken.CreateInput) { in.UserID = "ada" }},
		{"non-uuid subject", "subject.id", func(in *hosttoken.CreateInput) { in.Subject.ID = "ada"; in.UserID = "" }},
		{"subject and userId differ", "userId", func(in *hosttoken.CreateInput) { in.Subject.ID = storage.NewID() }},
		{"bad source", "source", func(in *hosttoken.CreateInput) { in.Source = "SSH" }},
		{"refresh on PAT", "refreshToken", func(in *hosttoken.CreateInput) {
			in.Source, in.RefreshToken = storage.HostTokenSourcePAT, "r"
		}},
		{"runner is a user", "runnerId", func(in *hosttoken.CreateInput) { in.RunnerID = w.user.PrincipalID }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := good()
			tc.mut(&in)
			_, err := w.svc.Create(t.Context(), w.admin, in)
			wantCode(t, "Create", err, sts.Invalid)
			if msg := sts.ErrorMessage(err); !strings.Contains(msg, tc.field) {
				t.Errorf("Create error %q does not name %s", msg, tc.field)
			}
		})
	}
	rows, err := store.ListHostTokens(t.Context(), storage.HostTokenFilter{})
	if err != nil || len(rows) != 0 {
		t.Fatalf("rows after rejected creates = %d, %v; want 0", len(rows), err)
	}
	// Runner or subject of another organization: not_found, like unknown.
	in := good()
	in.UserID = w.evil.PrincipalID
	_, err = w.svc.Create(t.Context(), w.admin, in)
	wantCode(t, "Create(subject in another org)", err, sts.NotFound)
	in = good()
	_, err = w.svc.Create(t.Context(), w.evil, in)
	wantCode(t, "Create(by another org)", err, sts.NotFound)
	in.UserID = w.user.PrincipalID
	_, err = w.svc.Create(t.Context(), w.bystander, in)
	wantCode(t, "Create(by a bystander)", err, sts.PermissionDenied)
}

// TestMovedCiphertextIsCorruption (docs/security.md T-70): a sealed value copied
// into another row, or into the other field of its own row, never opens;
// it is counted and reported as internal, and nothing is disclosed.
func TestMovedCiphertextIsCorruption(t *testing.T) {
	t.Parallel()
	store := backends(t)["sqlite"](t)
	w := newWorld(t, store)
	ctx := t.Context()
	a := w.create(t, "gho_AAAA", "ghr_AAAA", "", time.Time{})
	b := w.create(t, "gho_BBBB", "ghr_BBBB", "", time.Time{})
	rowA, _ := store.GetHostToken(ctx, a.ID)
	swap := func(id string, fn func(*storage.HostToken)) {
		t.Helper()
		err := store.UpdateHostToken(ctx, id, func(old storage.HostToken) (storage.HostToken, error) { fn(&old); return old, nil })
		if err != nil {
			t.Fatal(err)
		}
	}
	swap(b.ID, func(r *storage.HostToken) { r.SealedToken = rowA.SealedToken })
	v, err := w.svc.Value(ctx, w.user, b.ID)
	wantCode(t, "Value(row with A's token)", err, sts.Internal)
	if v.Token != "" || strings.Contains(err.Error(), "AAAA") {
		t.Fatalf("Value disclosed %q / %v", v.Token, err)
	}
	// The whole envelope (wrapped data key and both values) moved as one.
	swap(b.ID, func(r *storage.HostToken) {
		r.SealedToken, r.SealedRefresh, r.SealedDataKey, r.MasterKeyID = rowA.SealedToken, rowA.SealedRefresh, rowA.SealedDataKey, rowA.MasterKeyID
	})
	_, err = w.svc.Value(ctx, w.user, b.ID)
	wantCode(t, "Value(row with A's envelope)", err, sts.Internal)
	swap(a.ID, func(r *storage.HostToken) { r.SealedToken, r.SealedRefresh = r.SealedRefresh, r.SealedToken })
	_, err = w.svc.Value(ctx, w.user, a.ID)
	wantCode(t, "Value(fields swapped)", err, sts.Internal)
	if w.svc.Corrupt() != 3 {
		t.Errorf("Corrupt() = %d, want 3", w.svc.Corrupt())
	}
	got, _ := store.GetHostToken(ctx, a.ID)
	if !bytes.Equal(got.SealedToken, rowA.SealedRefresh) {
		t.Error("a corrupt row was rewritten")
	}
}
