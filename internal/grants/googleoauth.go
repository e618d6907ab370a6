package grants

import (
	"encoding/json"
	"errors"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/opensts/sts/internal/oauth2"
)

// PathGoogleOAuthToken is Google STS's POST /v1/oauthtoken.
const PathGoogleOAuthToken = "/v1/oauthtoken"

// googleOAuthResponse is Google STS's response shape: no issued_token_type,
// which belongs to token exchange only.
type googleOAuthResponse struct {
	AccessToken  string `json:"access_token"`
	ExpiresIn    int64  `json:"expires_in"`
	RefreshToken string `json:"refresh_token,omitempty"`
	Scope        string `json:"scope,omitempty"`
	TokenType    string `json:"token_type"`
	IDToken      string `json:"id_token,omitempty"`
}

// googleOAuthNames maps the JSON names of
// GoogleIdentityStsV1ExchangeOauthTokenRequest to its proto field names,
// the form names; no other member is read.
var googleOAuthNames = map[string]string{
	"grantType":    "grant_type",
	"clientId":     "client_id",
	"code":         "code",
	"codeVerifier": "code_verifier",
	"redirectUri":  "redirect_uri",
	"refreshToken": "refresh_token",
	"scope":        "scope",
}

// googleOAuth is POST /v1/oauthtoken: a form body, or the camelCase JSON
// body of Google's generated client, with the client authenticated by
// HTTP Basic as Google's client libraries send it (a public client sends
// clientId). Its refresh_token form is the refresh_token grant of
// /oauth2/token without rotation for a confidential client, as Google's
// (rotates; docs/security.md T-112), and its authorization_code form
// (code, code_verifier, redirect_uri) the same [AuthorizationCode] grant;
// a handler without that grant says so. Any other grant type is refused
// here.
var googleOAuth = &dialect{
	name:  "google-oauth",
	parse: parseGoogleOAuth,
	writeOK: func(w http.ResponseWriter, resp *Response) {
		oauth2.WriteJSON(w, http.StatusOK, googleOAuthResponse{
			AccessToken: resp.AccessToken, ExpiresIn: resp.ExpiresIn, RefreshToken: resp.RefreshToken,
			Scope: resp.Scope, TokenType: resp.TokenType, IDToken: resp.IDToken,
		})
	},
	writeError: standard.writeError,
}

// GrantTypeAuthorizationCode is RFC 6749 §4.1.3's grant_type.
const GrantTypeAuthorizationCode = oauth2.GrantTypeAuthorizationCode

func parseGoogleOAuth(r *http.Request) (*Request, error) {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt != "application/json" && mt != "application/x-www-form-urlencoded" {
		return nil, contentTypeError(googleContentTypes)
	}
	if mt != "application/json" {
		req, err := parseForm(r, googleParams)
		if err != nil {
			return req, err
		}
		if err := unhonoured(req.form); err != nil {
			return req, err
		}
		return req, googleOAuthGrant(req)
	}
	// readGoogleJSON, keeping the body for spentCodeOf.
	body, err := jsonBody(r)
	if err != nil {
		return nil, err
	}
	v, err := oauth2.ReadGoogleJSON(body, googleOAuthNames, jsonParam)
	if err != nil {
		return spentCodeOf(body), err
	}
	req := &Request{}
	if err := req.fromValues(v); err != nil {
		return req, err
	}
	return req, googleOAuthGrant(req)
}

// spentCodeOf is what a JSON body refused as it was read (a member
// Google's ExchangeOauthTokenRequest does not have, one that is not a
// string) still says for Handler.spentCodeFirst: its grant type and its
// code, when it asks for authorization_code. A spent code there is a
// replay as in a form; the refusal came first and the first redemption's
// tokens stayed live (docs/security.md T-195, T-204). Only a body that is
// one JSON object, each member named once (exactly, in either of its
// spellings), is read: which code a body with two means is not ours to
// guess, and nothing is judged for it. nil otherwise.
func spentCodeOf(body []byte) *Request {
	if checkMembers(body) != nil {
		return nil
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(body, &m) != nil {
		return nil
	}
	str := func(names ...string) string {
		var s string
		n := 0
		for _, name := range names {
			if raw, ok := m[name]; ok {
				n++
				if json.Unmarshal(raw, &s) != nil {
					return ""
				}
			}
		}
		if n != 1 {
			return ""
		}
		return s
	}
	return codeRequest(str("grantType", "grant_type"), str("code"))
}

// formCode is spentCodeOf for a form refused as it was read (a repeated
// parameter, docs/security.md T-206): its grant type and code when each is
// given once and it asks for authorization_code; which of two codes a
// form means is not ours to guess. nil otherwise.
func formCode(v url.Values) *Request {
	if len(v["grant_type"]) != 1 || len(v["code"]) != 1 {
		return nil
	}
	return codeRequest(v.Get("grant_type"), v.Get("code"))
}

// codeRequest is the request Handler.spentCodeFirst reads a refused
// body's code from: grant and code alone; nil unless grant is
// authorization_code and there is a code.
func codeRequest(grant, code string) *Request {
	if grant != GrantTypeAuthorizationCode || code == "" {
		return nil
	}
	return &Request{GrantType: grant, Code: code, form: url.Values{"grant_type": {grant}, "code": {code}}}
}

// googleOAuthUnhonoured are the form parameters sts reads on its other
// paths that would narrow a token but that /v1/oauthtoken cannot honour:
// a refresh or a code issues its family's audiences, lifetime rules and
// boundary, and an access token. Google's ExchangeOauthTokenRequest has
// none of them, and in a JSON body they are refused as unknown names; in a
// form they were read and then dropped, so a request for one audience, 60
// seconds, an access boundary or another token type got the family's
// wider access token (docs/security.md T-180). Each is refused with the
// reason its other paths give a bad value.
var googleOAuthUnhonoured = []struct{ name, reason, why string }{
	{"audience", ReasonTargetInvalid, narrowHere},
	{"resource", ReasonTargetInvalid, narrowHere},
	{"expires_in", ReasonLifetimeInvalid, narrowHere},
	{"options", ReasonBoundaryInvalid, narrowHere},
	{"requested_token_type", ReasonRequestedTypeUnsupp, "a token refreshed or redeemed here is an access token, as Google STS's; " +
		"another type is asked for at " + PathToken + " (requested_token_type)"},
}

const narrowHere = "a token refreshed or redeemed here has its family's audiences, lifetime and access boundary; " +
	"to narrow it, exchange it at " + PathGoogleToken + " (options.audiences, options.accessBoundary)"

// unhonoured refuses a form naming one of googleOAuthUnhonoured; one sent
// empty is omitted (RFC 6749 §3.1), as everywhere. Every value is looked
// at: audience and resource may repeat, and an empty first value hid a
// second one (docs/security.md T-180).
func unhonoured(form url.Values) error {
	for _, p := range googleOAuthUnhonoured {
		if slices.ContainsFunc(form[p.name], func(v string) bool { return v != "" }) {
			return badRequest(p.reason, errors.New(p.name+" is not a parameter of "+PathGoogleOAuthToken+": "+p.why))
		}
	}
	return nil
}

// googleOAuthGrant admits refresh_token and authorization_code, reading
// the latter's parameters strictly.
func googleOAuthGrant(req *Request) error {
	switch req.GrantType {
	case "", oauth2.GrantTypeRefreshToken:
		return nil
	case GrantTypeAuthorizationCode:
		req.Code = req.form.Get("code")
		req.CodeVerifier = req.form.Get("code_verifier")
		req.RedirectURI = req.form.Get("redirect_uri")
		if req.Code == "" {
			return badRequest(ReasonParameterMissing, errors.New("code is required with grant_type authorization_code"))
		}
		if req.CodeVerifier != "" && !validCodeVerifier(req.CodeVerifier) {
			return badRequest(ReasonMalformed, errors.New("code_verifier must be 43 to 128 characters of A-Z a-z 0-9 - . _ ~ (RFC 7636)"))
		}
		if req.RedirectURI != "" {
			if u, err := url.Parse(req.RedirectURI); err != nil || !u.IsAbs() || u.Fragment != "" {
				return badRequest(ReasonMalformed, errors.New("redirect_uri must be an absolute URI without fragment"))
			}
		}
		return nil
	default:
		req.GrantType = "unsupported:" + req.GrantType // never matches a grant
		return nil
	}
}

// validCodeVerifier is RFC 7636 §4.1's code-verifier syntax.
func validCodeVerifier(s string) bool {
	if len(s) < 43 || len(s) > 128 {
		return false
	}
	for _, c := range []byte(s) {
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~') {
			return false
		}
	}
	return true
}

// unsupportedGrant is the description of unsupported_grant_type.
func unsupportedGrant(grantType string) string {
	grantType = strings.TrimPrefix(grantType, "unsupported:")
	if grantType == GrantTypeAuthorizationCode {
		return "grant_type authorization_code is not enabled on this server (it needs browser sign-in); use refresh_token"
	}
	return "grant_type " + strconv.Quote(trunc(grantType)) + " is not supported on this endpoint"
}
