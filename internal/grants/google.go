package grants

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/policy"
	"github.com/opensts/sts/internal/trust"
	"github.com/opensts/sts/pkg/rs"
)

// google is POST /v1/token (Google STS): a form body (what
// x/oauth2/google/externalaccount sends) or a JSON body with snake_case or
// camelCase names; audience is the provider's resource name; options may
// carry a Credential Access Boundary.
var google = &dialect{
	name:   "google",
	parse:  parseGoogle,
	refine: refineGoogle,
	writeOK: func(w http.ResponseWriter, resp *Response) {
		oauth2.WriteJSON(w, http.StatusOK, resp)
	},
	writeError: func(w http.ResponseWriter, _ string, e *oauth2.Error) {
		// Google STS answers an unacceptable credential with invalid_grant;
		// clients of Google expect that code. The reason stays ours.
		if isTokenRefusal(e) {
			c := *e
			c.Code = oauth2.ErrorInvalidGrant
			e = &c
		}
		oauth2.WriteError(w, nil, e)
	},
}

// googleNames maps the JSON names of GoogleIdentityStsV1ExchangeTokenRequest
// to its proto field names, the form names; no other member is read.
var googleNames = map[string]string{
	"grantType":          "grant_type",
	"audience":           "audience",
	"scope":              "scope",
	"options":            "options",
	"subjectToken":       "subject_token",
	"subjectTokenType":   "subject_token_type",
	"requestedTokenType": "requested_token_type",
	"actorToken":         "actor_token",
	"actorTokenType":     "actor_token_type",
}

// googleIntermediaryTokenType is the requested_token_type of Google's
// client-side Credential Access Boundaries, which sts does not serve
// (docs/security.md T-203).
const googleIntermediaryTokenType = "urn:ietf:params:oauth:token-type:access_boundary_intermediary_token"

func parseGoogle(r *http.Request) (*Request, error) {
	if forImpersonation(r.Header) {
		return nil, badRequest(ReasonImpersonationUnsupported, errors.New("service_account_impersonation_url is not supported: "+
			"sts issues the final token itself and serves no service account impersonation; "+
			"remove service_account_impersonation_url from the credential file"))
	}
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	var v url.Values
	var err error
	switch mt {
	case "application/json":
		v, err = readGoogleJSON(r, googleNames)
	case "application/x-www-form-urlencoded":
		v, err = readForm(r, googleParams)
	default:
		return nil, contentTypeError(googleContentTypes)
	}
	if err != nil {
		return nil, err
	}
	if len(v["audience"]) > 1 {
		return nil, badRequest(ReasonParameterRepeated, errors.New("audience repeated"))
	}
	// Google STS's /v1/token is token exchange alone. A refresh here
	// rotated as at /oauth2/token, so an authorized-user file naming this
	// path locked out every process started from it once a second one
	// refreshed (docs/security.md T-112); it is refused before any other
	// parameter is judged, the audience included (T-198), saying where a
	// refresh goes. Repeated parameters were refused while the body was
	// read (T-06).
	if gt := v.Get("grant_type"); gt != "" && gt != oauth2.GrantTypeTokenExchange {
		return nil, refuse(oauth2.ErrorUnsupportedGrantType, "grant_type "+strconv.Quote(trunc(gt))+
			" is not supported at "+PathGoogleToken+", which serves token exchange only, as Google STS; refresh_token and authorization_code go to "+PathGoogleOAuthToken,
			ReasonGrantUnsupported, nil)
	}
	// The audience names a provider, so it is judged as a resource name
	// before fromValues reads it as a target: a value that is no name
	// because of what it is made of (a newline after it, a space, a
	// character that is not ASCII, more than a target's length) was
	// invalid_target "audience or resource not allowed", which Google's
	// clients read as a pool that is missing or refuses them; it is
	// Google's answer for a name that is not a provider's, as every other
	// malformed name (docs/security.md T-117, T-198).
	var pool, provider string
	if aud := v.Get("audience"); aud != "" {
		var ok bool
		pool, provider, ok = trust.ParseResourceName(aud)
		if !ok || len(aud) > maxTargetLength || !policy.Printable(aud) {
			// Google's answer to an audience that names no provider:
			// invalid_request (an unknown one is invalid_target, below).
			return nil, badRequest(ReasonTargetInvalid, errors.New(`Invalid value for "audience". `+
				"This value should be the full resource name of the Identity Provider: "+
				"//iam.googleapis.com/projects/<project number>/locations/global/workloadIdentityPools/<pool>/providers/<provider>, "+
				"//iam.googleapis.com/locations/global/workforcePools/<pool>/providers/<provider>, "+
				"//<host>/pools/<pool>/providers/<provider> or pools/<pool>/providers/<provider>"))
		}
	}
	req := &Request{}
	if err := req.fromValues(v); err != nil {
		return nil, err
	}
	// Google's Python library (google-auth, so gcloud) sends a credential
	// source's content as it is, and a token file written by `echo` ends
	// in a newline; Google STS takes it. ASCII whitespace around the token
	// is dropped here, before anything reads, digests or verifies it;
	// none is ever part of a token we accept (docs/security.md T-175).
	req.SubjectToken = strings.Trim(req.SubjectToken, subjectTokenSpace)
	// Google's reference once said requested_token_type "Must be
	// urn:ietf:params:oauth:token-type:access_token" here (and the generated
	// sts/v1 client still does); its current one says it can also be
	// …:access_boundary_intermediary_token, the intermediary token Google's
	// Java, Python and Rust libraries downscope on the client side with its
	// access_boundary_session_key. sts implements neither that token nor the
	// session key, so the access token is the one type served; …:jwt was
	// issued as at /oauth2/token, a type Google does not. Absent, it is the
	// access token all the same (docs/security.md T-203).
	if rt := req.RequestedTokenType; rt != "" && rt != oauth2.TokenTypeAccessToken {
		why := ""
		if rt == googleIntermediaryTokenType {
			why = " (client-side Credential Access Boundaries are not implemented: send options.accessBoundary for a downscoped access token)"
		}
		return nil, badRequest(ReasonRequestedTypeUnsupp, errors.New("requested_token_type "+strconv.Quote(trunc(rt))+
			" is not supported at "+PathGoogleToken+": the supported one is "+oauth2.TokenTypeAccessToken+why))
	}
	// The audience names the provider, not the issued token's audience.
	req.Audiences = nil
	if pool != "" {
		// The pool is named once: a pool or identity_pool_id that names
		// another was overwritten by the audience's, so a request a proxy
		// or a log read as for one pool was served from another
		// (docs/security.md T-152).
		if req.PoolID != "" && req.PoolID != pool {
			return nil, badRequest(ReasonMalformed, errors.New("audience and pool (or identity_pool_id) name different pools"))
		}
		req.PoolID, req.ProviderID = pool, provider
	}
	// Google STS requires the audience to exchange an external
	// credential: it names the provider that judges the token. Without
	// one the pool was picked by the token's own unverified iss and aud,
	// as at /oauth2/token (docs/security.md T-181). sts's own pool names
	// it too; our access tokens and PATs are of no provider, and Google's
	// downscoping sends none.
	if req.PoolID == "" && (req.SubjectTokenType == oauth2.TokenTypeJWT || req.SubjectTokenType == oauth2.TokenTypeIDToken) {
		return nil, badRequest(ReasonParameterMissing, errors.New("audience is required to exchange an external credential, as at Google STS: "+
			"the full resource name of the Identity Provider, //<host>/pools/<pool>/providers/<provider> or pools/<pool>/providers/<provider>"))
	}
	if opts := v.Get("options"); opts != "" {
		o, err := parseOptions(opts)
		if err != nil {
			return nil, err
		}
		req.Boundary, req.Audiences = o.boundary, o.audiences
		// options.audiences replaces the form's audience (the provider's
		// name) after fromValues judged the bound, so the two together
		// are judged again here: up to 5 of them and 9 resource values
		// issued a token for 14 targets (docs/security.md T-200).
		if n := len(req.Audiences) + len(req.Resources); n > maxTargets {
			return nil, badRequest(ReasonTargetInvalid, fmt.Errorf("options.audiences and resource name %d targets together, at most %d", n, maxTargets))
		}
	}
	// Google's clients ask for the cloud-platform scope when their user
	// set none: it stands for the pool's default scopes (see grantScope).
	if len(req.Scopes) == 1 && req.Scopes[0] == GoogleDefaultScope {
		req.defaultScopeAlias = true
	}
	return req, nil
}

// subjectTokenSpace is the whitespace dropped around a subject token on
// /v1/token: ASCII only, so no other character is read as nothing.
const subjectTokenSpace = " \t\r\n"

// forImpersonation reports whether a Google client library says, in its
// x-goog-api-client header ("… google-byoid-sdk … sa-impersonation/true
// …", as x/oauth2, cloud.google.com/go/auth, google-auth for Python, Node
// and Java write it), that it will hand the token on to the credential
// file's service_account_impersonation_url. That URL is Google's IAM
// Credentials API, not sts: the token would leave for it and the user
// would see its error, not ours (docs/security.md T-136).
func forImpersonation(h http.Header) bool {
	for _, v := range h.Values("X-Goog-Api-Client") {
		byoid, imp := false, false
		for f := range strings.FieldsSeq(v) {
			byoid = byoid || f == "google-byoid-sdk"
			imp = imp || strings.EqualFold(f, "sa-impersonation/true")
		}
		if byoid && imp {
			return true
		}
	}
	return false
}

// GoogleDefaultScope is what Google's client libraries ask for when their
// user sets no scopes.
const GoogleDefaultScope = oauth2.GoogleDefaultScope

// refineGoogle turns a refused pool or provider named by the audience into
// Google's invalid_target, as Google STS answers an audience naming a pool
// or provider that is missing, disabled or deleted. Both IDs come from the
// caller's own audience. To a caller not entitled to know the pool
// (hidePool) one description covers unknown, disabled, another
// organization's and a pool refusing this caller (docs/security.md T-102);
// an authenticated client of the pool's organization learns which provider
// was refused.
func refineGoogle(req *Request, e *oauth2.Error) *oauth2.Error {
	if req == nil || req.PoolID == "" || e.Description != descSubject {
		return e
	}
	var desc string
	switch {
	case isPoolHidden(e):
		desc = "audience: pool " + strconv.Quote(req.PoolID) + " with provider " + strconv.Quote(req.ProviderID) +
			" is not found, disabled, or not available to this caller"
	case trust.Reason(e.Reason) == trust.ReasonProviderUnknown, trust.Reason(e.Reason) == trust.ReasonProviderDisabled:
		desc = "audience: provider " + strconv.Quote(req.ProviderID) + " is not found or disabled in pool " + strconv.Quote(req.PoolID)
	default:
		return e
	}
	c := *e
	c.Code, c.Description = oauth2.ErrorInvalidTarget, desc
	return &c
}

// readGoogleJSON reads a JSON body as Google's front end does
// (oauth2.ReadGoogleJSON): exact names, once each, unknown names refused;
// members are strings (options may also be an object). scope is a string
// of space-delimited scopes, as Google's field is; an array, which Google
// refuses, was joined into one (docs/security.md T-205).
func readGoogleJSON(r *http.Request, names map[string]string) (url.Values, error) {
	body, err := jsonBody(r)
	if err != nil {
		return nil, err
	}
	return oauth2.ReadGoogleJSON(body, names, jsonParam)
}

// jsonBody is a JSON request's body, unless it comes in a content coding,
// which is not read at all (docs/security.md T-211): its bytes are not the
// JSON they would be decoded to.
func jsonBody(r *http.Request) ([]byte, error) {
	if err := oauth2.CheckContentEncoding(r); err != nil {
		return nil, err
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, bodyError(err)
	}
	return body, nil
}

// jsonParam turns one member's value into the form string.
func jsonParam(name string, raw json.RawMessage) (string, error) {
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s, nil
	}
	switch name {
	case "options":
		if bytes.HasPrefix(bytes.TrimSpace(raw), []byte("{")) {
			return string(raw), nil
		}
	}
	return "", badRequest(ReasonMalformed, errors.New("member "+trunc(name)+" must be a string"))
}

// joinSpace is the scopes of a token as one space-separated string; one
// scope is returned as it is (strings.Join makes no copy of it).
func joinSpace(l []string) string { return strings.Join(l, " ") }

// googleOptions are the members of options that sts understands. Any
// other member is refused: an option we do not understand might have been
// meant to narrow the token, and ignoring it would issue a wider one (fail
// closed). Members are matched exactly and at most once, at every depth: a
// case variant or a repeated member would otherwise be folded by
// encoding/json, last one winning, and could silently drop the boundary.
type googleOptions struct {
	boundary  *rs.AccessBoundary
	audiences []string
}

// maxGoogleAudiences is Google's limit on options.audiences.
const maxGoogleAudiences = 5

func parseOptions(s string) (*googleOptions, error) {
	bad := func(format string, args ...any) error {
		return badRequest(ReasonBoundaryInvalid, fmt.Errorf("options: "+format, args...))
	}
	s, err := unquoteOptions(s)
	if err != nil {
		return nil, bad("not a JSON object")
	}
	if err := checkMembers([]byte(s)); err != nil {
		return nil, bad("%v", err)
	}
	var members map[string]json.RawMessage
	if err := json.Unmarshal([]byte(s), &members); err != nil || members == nil {
		return nil, bad("not a JSON object")
	}
	o := &googleOptions{}
	for name, raw := range members {
		switch name {
		case "accessBoundary":
			if string(bytes.TrimSpace(raw)) == "null" {
				continue
			}
			if err := checkBoundaryMembers(raw); err != nil {
				return nil, bad("%v", err)
			}
			var ab rs.AccessBoundary
			if err := json.Unmarshal(raw, &ab); err != nil {
				return nil, bad("accessBoundary is not a Credential Access Boundary")
			}
			if err := ab.Validate(); err != nil {
				return nil, bad("accessBoundary: %v", err)
			}
			o.boundary = &ab
		case "userProject":
			// The project billed for quota at Google; sts bills nobody, so
			// it is checked for shape and otherwise ignored.
			var p string
			if err := json.Unmarshal(raw, &p); err != nil || len(p) > maxTargetLength || (p != "" && !policy.Printable(p)) {
				return nil, bad("userProject must be a project ID")
			}
		case "audiences":
			var l []string
			if err := json.Unmarshal(raw, &l); err != nil {
				return nil, bad("audiences must be an array of strings")
			}
			if len(l) > maxGoogleAudiences {
				return nil, bad("audiences has %d members, at most %d", len(l), maxGoogleAudiences)
			}
			aud, err := targets(l, false)
			if err != nil {
				return nil, err
			}
			o.audiences = aud
		default:
			return nil, bad("unknown member %q (known: accessBoundary, audiences, userProject)", trunc(name))
		}
	}
	return o, nil
}

// The members of a Credential Access Boundary at each depth, as Google's
// client libraries write them (golang.org/x/oauth2/google/downscope,
// google-auth's downscoped module).
var (
	boundaryNames  = []string{"accessBoundaryRules"}
	ruleNames      = []string{"availableResource", "availablePermissions", "availabilityCondition"}
	conditionNames = []string{"expression", "title", "description"}
)

// checkBoundaryMembers refuses an accessBoundary with a member, at any
// depth, that is not exactly one of its names. encoding/json, which reads
// it into rs.AccessBoundary, matches names in any case and drops the ones
// it does not know: a misspelt availabilityCondition was dropped with the
// condition it carried, and the token was issued wider than asked
// (docs/security.md T-174). Repeated members are checkMembers' to refuse.
// Values are left to json.Unmarshal and Validate.
func checkBoundaryMembers(raw json.RawMessage) error {
	var ab map[string]json.RawMessage
	if err := json.Unmarshal(raw, &ab); err != nil {
		return errors.New("accessBoundary is not a Credential Access Boundary")
	}
	if err := onlyMembers("accessBoundary", ab, boundaryNames); err != nil {
		return err
	}
	var rules []map[string]json.RawMessage
	if r, ok := ab["accessBoundaryRules"]; ok {
		if err := json.Unmarshal(r, &rules); err != nil {
			return errors.New("accessBoundary.accessBoundaryRules must be an array of rules")
		}
	}
	for i, rule := range rules {
		at := fmt.Sprintf("accessBoundary.accessBoundaryRules[%d]", i)
		if err := onlyMembers(at, rule, ruleNames); err != nil {
			return err
		}
		c, ok := rule["availabilityCondition"]
		if !ok {
			continue
		}
		var cond map[string]json.RawMessage
		if err := json.Unmarshal(c, &cond); err != nil {
			return errors.New(at + ".availabilityCondition must be an object")
		}
		if err := onlyMembers(at+".availabilityCondition", cond, conditionNames); err != nil {
			return err
		}
	}
	return nil
}

// onlyMembers refuses a member of the object at that is not one of names,
// spelt exactly.
func onlyMembers(at string, obj map[string]json.RawMessage, names []string) error {
	for name := range obj {
		if !slices.Contains(names, name) {
			return fmt.Errorf("%s: unknown member %q (known: %s)", at, trunc(name), strings.Join(names, ", "))
		}
	}
	return nil
}

// unquoteOptions undoes the extra percent-encoding of Google's Python
// library (google-auth, and so gcloud), which sends options as
// urllib.parse.quote of the JSON inside the form (docs/api.md "Google STS
// dialect"). A JSON object never begins with '%', so a value that begins
// with an encoded '{' has one meaning; it is decoded once, never again.
func unquoteOptions(s string) (string, error) {
	t := strings.TrimSpace(s)
	if len(t) < 3 || !strings.EqualFold(t[:3], "%7B") {
		return s, nil
	}
	return url.PathUnescape(t)
}

// maxJSONDepth bounds checkMembers' walk.
const maxJSONDepth = 32

// checkMembers refuses a JSON document in which an object, at any depth,
// has the same member twice, also when the names differ only in case.
func checkMembers(doc []byte) error {
	dec := json.NewDecoder(bytes.NewReader(doc))
	type frame struct {
		object bool
		seen   map[string]bool
		key    bool // the next token of an object is a member name
	}
	var stack []*frame
	for {
		t, err := dec.Token()
		if err == io.EOF {
			if len(stack) != 0 {
				return errors.New("truncated JSON")
			}
			return nil
		}
		if err != nil {
			return errors.New("not valid JSON")
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if top != nil && top.object && top.key {
			if d, ok := t.(json.Delim); ok && d == '}' {
				stack = stack[:len(stack)-1]
				continue
			}
			name, _ := t.(string)
			k := strings.ToLower(name)
			if top.seen[k] {
				return fmt.Errorf("member %q given twice (names are case-sensitive and unique)", trunc(name))
			}
			top.seen[k] = true
			top.key = false
			continue
		}
		if top != nil && top.object {
			top.key = true // this token is a value; a name comes next
		}
		switch t {
		case json.Delim('{'):
			if len(stack) >= maxJSONDepth {
				return errors.New("nested too deeply")
			}
			stack = append(stack, &frame{object: true, seen: map[string]bool{}, key: true})
		case json.Delim('['):
			if len(stack) >= maxJSONDepth {
				return errors.New("nested too deeply")
			}
			stack = append(stack, &frame{})
		case json.Delim(']'):
			stack = stack[:len(stack)-1]
		}
	}
}
