package grants

import (
	"cmp"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/pat"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/ststest/mutate"
)

// TestExchangePAT: a personal access token exchanged at /oauth2/token
// yields a short-lived access token for its owner, within its scopes and
// never outliving it; a bad, deleted or over-scoped request is refused and
// the PAT secret never appears in the answer.
func TestExchangePAT(t *testing.T) {
	e := newEnv(t, nil)
	ctx := t.Context()
	owner := storage.Principal{ID: storage.NewID(), OrgID: "acme", Kind: storage.PrincipalUser, Name: "ada"}
	if err := e.store.CreatePrincipal(ctx, owner); err != nil {
		t.Fatal(err)
	}
	svc, err := pat.NewService(e.store, []byte(strings.Repeat("k", 32)))
	if err != nil {
		t.Fatal(err)
	}
	e.grant.PATs = svc
	p, secret, err := svc.Create(ctx, pat.Caller{Actor: "test"}, pat.CreateInput{
		OwnerID: owner.ID, Description: "ci", Scopes: []string{"identity:read", "tokens:read"}, ExpiresAt: time.Now().Add(48 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	form := func(secret string, kv ...string) map[string][]string {
		v := exchangeForm(secret, kv...)
		v.Set("subject_token_type", oauth2.TokenTypePAT)
		return v
	}

	resp, body := e.post(t, PathToken, form(secret, "scope", "identity:read"))
	if resp.StatusCode != 200 {
		t.Fatalf("PAT exchange = %d %v", resp.StatusCode, body)
	}
	c, err := e.verify.VerifyAccessTokenAnyAudience(ctx, body["access_token"].(string))
	if err != nil {
		t.Fatal(err)
	}
	if c.Subject != owner.ID || c.Principal != "USER" || c.OrgID != "acme" || c.Scope != "identity:read" ||
		c.Src == nil || c.Src.Subject != p.ID || c.Expiry.Time().After(p.ExpiresAt) {
		t.Errorf("exchanged claims = %+v, want the owner, narrowed scope, src = PAT id, bounded by the PAT", c)
	}

	// A full-access PAT ("*") narrows to any scope of our API but
	// sts:admin, as the API reads "*" (pat.Allows); a scope the API does
	// not know is not in "*".
	_, full, err := svc.Create(ctx, pat.Caller{Actor: "test"}, pat.CreateInput{
		OwnerID: owner.ID, Description: "full", Scopes: []string{pat.ScopeFull}, ExpiresAt: time.Now().Add(48 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	for scope, want := range map[string]int{"identity:read": 200, "identity:read tokens:read": 200, "": 200, "sts:admin": 400, "billing:write": 400} {
		f := form(full)
		if scope != "" {
			f = form(full, "scope", scope)
		}
		resp, body := e.post(t, PathToken, f)
		if resp.StatusCode != want {
			t.Errorf("* PAT for scope %q = %d %v, want %d", scope, resp.StatusCode, body, want)
			continue
		}
		if want == 200 {
			got, _ := body["scope"].(string)
			if wantScope := cmp.Or(scope, pat.ScopeFull); got != wantScope && !(got == "" && scope != "") {
				t.Errorf("* PAT for scope %q issued scope %q", scope, got)
			}
		}
		if scope == "" {
			// Its "*" token narrows the same way by re-exchange.
			own := url.Values{"grant_type": {oauth2.GrantTypeTokenExchange}, "subject_token": {body["access_token"].(string)},
				"subject_token_type": {oauth2.TokenTypeAccessToken}, "scope": {"identity:read"}}
			if resp, body := e.post(t, PathToken, own); resp.StatusCode != 200 {
				t.Errorf("re-exchange of the * token for identity:read = %d %v, want 200", resp.StatusCode, body)
			}
			own.Set("scope", "sts:admin")
			if resp, body := e.post(t, PathToken, own); resp.StatusCode != 400 {
				t.Errorf("re-exchange of the * token for sts:admin = %d %v, want 400", resp.StatusCode, body)
			}
		}
	}

	for name, tc := range map[string]struct {
		form       map[string][]string
		wantError  string
		wantReason string
	}{
		"scope beyond the PAT":  {form(secret, "scope", "sts:admin"), oauth2.ErrorInvalidScope, ReasonScopeExceedsPool},
		"wrong checksum (T-66)": {form(mutate.LastChar(secret)), oauth2.ErrorInvalidRequest, ReasonPATInvalid},
		"truncated (T-65)":      {form(secret[:20]), oauth2.ErrorInvalidRequest, ReasonPATInvalid},
		"PAT as a JWT":          {exchangeForm(secret), oauth2.ErrorInvalidRequest, ""},
	} {
		t.Run(name, func(t *testing.T) {
			resp, body := e.post(t, PathToken, tc.form)
			if resp.StatusCode != 400 || body["error"] != tc.wantError || (tc.wantReason != "" && body["reason"] != tc.wantReason) {
				t.Errorf("= %d %v, want %s/%s", resp.StatusCode, body, tc.wantError, tc.wantReason)
			}
			if body["access_token"] != nil {
				t.Error("a refused exchange issued a token")
			}
		})
	}

	if err := svc.Delete(ctx, pat.Caller{Actor: "test"}, owner.ID, p.ID); err != nil {
		t.Fatal(err)
	}
	if resp, body := e.post(t, PathToken, form(secret)); resp.StatusCode != 400 || body["reason"] != ReasonPATInvalid {
		t.Errorf("exchange of a deleted PAT = %d %v", resp.StatusCode, body)
	}
}
