package grants

import (
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/opensts/sts/internal/oauth2"
)

// TestConfluentMissingParameterSource: a request without subject_token
// or without subject_token_type, both of which Confluent's API document
// requires, is told which one it left out, in source.parameter and in
// detail, with or without errors.detail: reason; /oauth2/token's
// error_description names it too. Nothing is issued, and the server
// answers the complete request afterwards (docs/security.md T-231).
func TestConfluentMissingParameterSource(t *testing.T) {
	for _, omit := range []bool{false, true} {
		e := newEnv(t, nil)
		e.handler.OmitReason = omit
		tok := e.issuer.mint(t, "RS256", e.issuer.claims(time.Now(), "u1"))
		without := func(form url.Values, names ...string) url.Values {
			for _, n := range names {
				form.Del(n)
			}
			return form
		}
		// Sent without a value, a parameter is omitted (RFC 6749 §3.1).
		emptied := func(form url.Values, name string) url.Values {
			form.Set(name, "")
			return form
		}
		for _, tc := range []struct {
			name         string
			form         url.Values
			param, words string
		}{
			{"no subject_token_type", without(exchangeForm(tok, "identity_pool_id", "ci"), "subject_token_type"), "subject_token_type", "subject_token_type is required"},
			{"empty subject_token_type", emptied(exchangeForm(tok, "identity_pool_id", "ci"), "subject_token_type"), "subject_token_type", "subject_token_type is required"},
			{"no subject_token", without(exchangeForm(tok, "identity_pool_id", "ci"), "subject_token"), "subject_token", "subject_token is required"},
			{"neither", without(exchangeForm(tok, "identity_pool_id", "ci"), "subject_token", "subject_token_type"), "subject_token", "subject_token and subject_token_type are required"},
		} {
			resp, body := e.post(t, PathConfluentToken, tc.form)
			if resp.StatusCode != http.StatusBadRequest || body["access_token"] != nil {
				t.Errorf("reason omitted %v, %s: %d %v, want 400 and no token", omit, tc.name, resp.StatusCode, body)
				continue
			}
			e0 := confluentErr(t, body)
			src, _ := e0["source"].(map[string]any)
			if src["parameter"] != tc.param || e0["detail"] != tc.words || e0["code"] != oauth2.ErrorInvalidRequest {
				t.Errorf("reason omitted %v, %s: %v, want invalid_request, source.parameter %s, detail %q", omit, tc.name, e0, tc.param, tc.words)
			}
			tc.form.Set("pool", "ci")
			tc.form.Del("identity_pool_id")
			resp, body = e.post(t, PathToken, tc.form)
			if d, _ := body["error_description"].(string); resp.StatusCode != http.StatusBadRequest || d != tc.words {
				t.Errorf("reason omitted %v, %s at %s: %d %v, want 400 %q", omit, tc.name, PathToken, resp.StatusCode, body, tc.words)
			}
		}
		if resp, body := e.post(t, PathConfluentToken, exchangeForm(tok, "identity_pool_id", "ci")); resp.StatusCode != http.StatusOK || body["access_token"] == nil {
			t.Fatalf("reason omitted %v: the complete request afterwards: %d %v", omit, resp.StatusCode, body)
		}
	}
}

// TestConfluentMethodNotAllowedReason: the Confluent path's 405 keeps
// our reason out of its body under errors.detail: none (serve's default),
// as every other refusal of the path does, and carries it only with
// errors.detail: reason; either way it is the errors[] entry with Allow:
// POST, and the path still serves a POST afterwards (docs/security.md
// T-232).
func TestConfluentMethodNotAllowedReason(t *testing.T) {
	for _, omit := range []bool{false, true} {
		e := newEnv(t, nil)
		e.handler.OmitReason = omit
		for _, method := range []string{http.MethodGet, http.MethodPut, http.MethodDelete, http.MethodOptions} {
			r, _ := http.NewRequest(method, e.srv.URL+PathConfluentToken, nil)
			resp, body := do(t, r)
			if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != http.MethodPost {
				t.Errorf("reason omitted %v, %s: %d Allow %q, want 405 Allow POST", omit, method, resp.StatusCode, resp.Header.Get("Allow"))
				continue
			}
			e0 := confluentErr(t, body)
			reason, has := e0["reason"]
			if omit && has {
				t.Errorf("reason omitted, %s: errors[0] = %v, carries reason %v", method, e0, reason)
			}
			if !omit && reason != ReasonMethodNotAllowed {
				t.Errorf("reason shown, %s: errors[0] = %v, want reason %s", method, e0, ReasonMethodNotAllowed)
			}
			if e0["status"] != "405" || e0["code"] != oauth2.ErrorInvalidRequest || e0["detail"] == "" {
				t.Errorf("reason omitted %v, %s: errors[0] = %v", omit, method, e0)
			}
		}
		tok := e.issuer.mint(t, "RS256", e.issuer.claims(time.Now(), "u1"))
		if resp, body := e.post(t, PathConfluentToken, exchangeForm(tok, "identity_pool_id", "ci")); resp.StatusCode != http.StatusOK {
			t.Fatalf("reason omitted %v: POST afterwards: %d %v", omit, resp.StatusCode, body)
		}
	}
}
