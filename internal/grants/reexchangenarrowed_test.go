package grants

import (
	"net/http"
	"testing"

	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/tokens"
)

// TestReExchangeEndsWhenFirstClientNarrowed: a token client b re-exchanged
// from client a's token ends once a no longer lists a scope a's token
// held, as a's token itself does (docs/security.md ): the
// derived token must not outlive its source. A scope a's token did not
// hold may leave a and end nothing; b's own list still judges b's token.
func TestReExchangeEndsWhenFirstClientNarrowed(t *testing.T) {
	o := newReExchangeEnv(t)
	first := o.first(t)
	reexchange := func(tok string) (int, map[string]any) {
		form := exchangeForm(tok, "scope", "read")
		form.Set("subject_token_type", oauth2.TokenTypeAccessToken)
		resp, body := o.postAs(t, PathToken, o.b.ID, o.bSecret, form)
		return resp.StatusCode, body
	}
	status, body := reexchange(first)
	second, _ := body["access_token"].(string)
	if status != http.StatusOK || second == "" {
		t.Fatalf("re-exchange by b = %d (error %v)", status, body["error"])
	}
	setScopes := func(l ...string) {
		t.Helper()
		if err := o.store.UpdateClient(t.Context(), o.client.ID, func(cl storage.Client) (storage.Client, error) {
			cl.Scopes = l
			return cl, nil
		}); err != nil {
			t.Fatal(err)
		}
	}

	// A scope a's token did not hold leaves a: both live on.
	setScopes("read")
	for name, tok := range map[string]string{"a's token": first, "b's token": second} {
		if _, err := o.verify.VerifyAccessTokenAnyAudience(t.Context(), tok); err != nil {
			t.Errorf("a lost offline_access, which no token held: %s refused: %v", name, err)
		}
	}

	// read leaves a: a's token ends, and so must what b drew from it.
	setScopes(ScopeOfflineAccess)
	if _, err := o.verify.VerifyAccessTokenAnyAudience(t.Context(), first); tokens.Reason(err) != "token_source_gone" {
		t.Fatalf("a's token after a lost read: %v, want token_source_gone", err)
	}
	if _, err := o.verify.VerifyAccessTokenAnyAudience(t.Context(), second); tokens.Reason(err) != "token_source_gone" {
		t.Errorf("b's token re-exchanged from a's, after a lost read: err = %v, want token_source_gone", err)
	}
	if status, body := reexchange(second); status != http.StatusBadRequest {
		t.Errorf("re-exchange of b's token after a lost read = %d (error %v), want 400", status, body["error"])
	}
	// Given back, both work again, as for a disabled client.
	setScopes("read", ScopeOfflineAccess)
	if _, err := o.verify.VerifyAccessTokenAnyAudience(t.Context(), second); err != nil {
		t.Errorf("b's token after a listed read again: %v", err)
	}
}

// TestReExchangeEndsWhenFirstClientLosesPoolOrAudience is
// docs/security.md A-102: as A-101 for a scope, client a's pool and
// audience lists judge a's token, and the token client b
// derived from it, re-exchanged (a's token as subject) or delegated (as
// actor), ends with them too; given back, it works again.
func TestReExchangeEndsWhenFirstClientLosesPoolOrAudience(t *testing.T) {
	for _, tc := range []struct {
		name   string
		narrow func(cl *storage.Client)
		actor  bool
	}{
		{"pool taken from a", func(cl *storage.Client) { cl.Pools = nil }, false},
		{"audience taken from a", func(cl *storage.Client) { cl.Audiences = []string{"https://elsewhere.example"} }, false},
		{"pool taken from the actor's client", func(cl *storage.Client) { cl.Pools = nil }, true},
		{"audience taken from the actor's client", func(cl *storage.Client) { cl.Audiences = []string{"https://elsewhere.example"} }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := newReExchangeEnv(t)
			first := o.first(t)
			form := exchangeForm(first, "scope", "read")
			form.Set("subject_token_type", oauth2.TokenTypeAccessToken)
			if tc.actor {
				// b acts for another subject of the pool with a's token.
				form = o.subjectForm(t, "u2", "actor_token", first, "actor_token_type", oauth2.TokenTypeAccessToken)
			}
			resp, body := o.postAs(t, PathToken, o.b.ID, o.bSecret, form)
			second, _ := body["access_token"].(string)
			if resp.StatusCode != http.StatusOK || second == "" {
				t.Fatalf("re-exchange by b = %d (error %v)", resp.StatusCode, body["error"])
			}
			before, err := o.store.GetClient(t.Context(), o.client.ID)
			if err != nil {
				t.Fatal(err)
			}
			if err := o.store.UpdateClient(t.Context(), o.client.ID, func(cl storage.Client) (storage.Client, error) {
				tc.narrow(&cl)
				return cl, nil
			}); err != nil {
				t.Fatal(err)
			}
			if _, err := o.verify.VerifyAccessTokenAnyAudience(t.Context(), first); tokens.Reason(err) != "token_source_gone" {
				t.Fatalf("a's token after %s: %v, want token_source_gone", tc.name, err)
			}
			if _, err := o.verify.VerifyAccessTokenAnyAudience(t.Context(), second); tokens.Reason(err) != "token_source_gone" {
				t.Errorf("b's token derived from a's, after %s: err = %v, want token_source_gone (a's token ended; b's lives on)", tc.name, err)
			}
			if err := o.store.UpdateClient(t.Context(), o.client.ID, func(storage.Client) (storage.Client, error) { return before, nil }); err != nil {
				t.Fatal(err)
			}
			if _, err := o.verify.VerifyAccessTokenAnyAudience(t.Context(), second); err != nil {
				t.Errorf("b's token after a's lists were given back: %v, want valid", err)
			}
		})
	}
}
