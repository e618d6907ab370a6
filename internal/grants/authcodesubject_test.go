package grants

import (
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/tokens"
)

// TestAuthorizationCodeEndsWithSubjectRevocation (docs/security.md
// T-144): a code issued before a subject revocation of its person (`sts
// revoke subject`, or the one a suspension writes, which a reactivation
// does not undo) is refused at redemption, since the tokens it would buy are
// issued after the row and would escape it; a code issued after the row
// is redeemed, and so is one of another person.
func TestAuthorizationCodeEndsWithSubjectRevocation(t *testing.T) {
	m := newMatrixEnv(t)
	ctx := t.Context()
	if err := m.store.CreatePrincipal(ctx, storage.Principal{ID: "bob", OrgID: "acme", Kind: storage.PrincipalUser, Name: "Bob"}); err != nil {
		t.Fatal(err)
	}
	c, sec := m.client(t, storage.Client{OrgID: "acme", GrantTypes: []string{oauth2.GrantTypeAuthorizationCode, oauth2.GrantTypeRefreshToken},
		Scopes: []string{"read"}, Audiences: []string{stsIssuer}})
	before, other := m.authCode(t, c, "ada", "read"), m.authCode(t, c, "bob", "read")
	time.Sleep(5 * time.Millisecond) // the row's cut-off is after both codes' creation
	now := storage.Now(time.Now())
	if err := m.store.PutRevocation(ctx, storage.Revocation{ID: tokens.RevocationIDSubject("ada"), IssuedBefore: now,
		Reason: "test", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Millisecond)
	after := m.authCode(t, c, "ada", "read")

	status, body := m.postAs(t, c.ID, sec, before)
	if status != http.StatusBadRequest || body["error"] != oauth2.ErrorInvalidGrant || body["reason"] != ReasonCodeSubjectRevoked ||
		body["access_token"] != nil || body["refresh_token"] != nil {
		t.Errorf("code issued before its person's subject revocation = %d %v, want 400 invalid_grant %s and no token", status, body, ReasonCodeSubjectRevoked)
	}
	for name, form := range map[string]url.Values{"issued after the row": after, "another person's": other} {
		if status, body := m.postAs(t, c.ID, sec, form); status != http.StatusOK || body["access_token"] == nil {
			t.Errorf("code %s = %d %v, want 200 and an access token", name, status, body)
		}
	}
}
