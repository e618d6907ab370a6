package grants

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"

	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/trust"
	"github.com/opensts/sts/pkg/rs"
)

// google is POST /v1/token (Google STS): a form body (what
// x/oauth2/google/externalaccount sends) or a JSON body with snake_case or
// camelCase names; audience is the provider's resource name; options may
// carry a Credential Access Boundary.
var google = &dialect{
	name:  "google",
	parse: parseGoogle,
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

// googleNames maps the camelCase JSON names of
// GoogleIdentityStsV1ExchangeTokenRequest to the form names.
var googleNames = map[string]string{
	"grantType":          "grant_type",
	"subjectToken":       "subject_token",
	"subjectTokenType":   "subject_token_type",
	"requestedTokenType": "requested_token_type",
	"actorToken":         "actor_token",
	"actorTokenType":     "actor_token_type",
}

func parseGoogle(r *http.Request) (*Request, error) {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	var v url.Values
	var err error
	if mt == "application/json" {
		v, err = readGoogleJSON(r)
	} else {
		v, err = readForm(r)
	}
	if err != nil {
		return nil, err
	}
	if len(v["audience"]) > 1 {
		return nil, badRequest(ReasonParameterRepeated, errors.New("audience repeated"))
	}
	req := &Request{}
	if err := req.fromValues(v); err != nil {
		return nil, err
	}
	// The audience names the provider, not the issued token's audience.
	req.Audiences = nil
	if aud := v.Get("audience"); aud != "" {
		pool, provider, ok := trust.ParseResourceName(aud)
		if !ok {
			return nil, badRequest(string(trust.ReasonPoolUnknown), errors.New("audience is not a provider resource name"))
		}
		req.PoolID, req.ProviderID = pool, provider
	}
	if opts := v.Get("options"); opts != "" {
		if req.Boundary, err = parseOptions(opts); err != nil {
			return nil, err
		}
	}
	return req, nil
}

// readGoogleJSON reads a JSON object whose members are strings (options
// may also be an object, scope an array of strings). A member given twice,
// or under both of its names, is refused like a repeated form parameter
// (docs/security.md T-06, T-23); trailing data is refused (T-27).
func readGoogleJSON(r *http.Request) (url.Values, error) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, bodyError(err)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, badRequest(ReasonMalformed, errors.New("body is not a JSON object"))
	}
	v := url.Values{}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, badRequest(ReasonMalformed, err)
		}
		name, _ := t.(string)
		if n, ok := googleNames[name]; ok {
			name = n
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, badRequest(ReasonMalformed, err)
		}
		if v.Has(name) {
			return nil, badRequest(ReasonParameterRepeated, errors.New("member "+trunc(name)+" repeated"))
		}
		s, err := jsonParam(name, raw)
		if err != nil {
			return nil, err
		}
		v.Set(name, s)
	}
	if _, err := dec.Token(); err != nil {
		return nil, badRequest(ReasonMalformed, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, badRequest(ReasonMalformed, errors.New("trailing data after the JSON object"))
	}
	return v, nil
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
	case "scope":
		var l []string
		if err := json.Unmarshal(raw, &l); err == nil {
			return joinSpace(l), nil
		}
	}
	return "", badRequest(ReasonMalformed, errors.New("member "+trunc(name)+" must be a string"))
}

func joinSpace(l []string) string {
	var b bytes.Buffer
	for i, s := range l {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(s)
	}
	return b.String()
}

// googleOptions is the options JSON. Unknown members are refused: an
// option we do not understand might have been meant to narrow the token,
// and ignoring it would issue a wider one (fail closed).
type googleOptions struct {
	AccessBoundary *rs.AccessBoundary `json:"accessBoundary"`
}

func parseOptions(s string) (*rs.AccessBoundary, error) {
	dec := json.NewDecoder(bytes.NewReader([]byte(s)))
	dec.DisallowUnknownFields()
	var o googleOptions
	if err := dec.Decode(&o); err != nil || dec.More() {
		return nil, badRequest(ReasonBoundaryInvalid, errors.New("options is not a known JSON object"))
	}
	if o.AccessBoundary == nil {
		return nil, nil
	}
	if err := o.AccessBoundary.Validate(); err != nil {
		return nil, badRequest(ReasonBoundaryInvalid, err)
	}
	return o.AccessBoundary, nil
}
