package introspect

import (
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"

	"github.com/opensts/sts/internal/clientauth"
	"github.com/opensts/sts/internal/oauth2"
)

const formType = "application/x-www-form-urlencoded"

// formValues are the request parameters, whatever the body encoding.
type formValues struct{ url.Values }

// googleNames maps the JSON names of GoogleIdentityStsV1IntrospectTokenRequest
// to its proto field names; no other member is read.
var googleNames = map[string]string{
	"token":         "token",
	"tokenTypeHint": "token_type_hint",
}

// Params are the form parameters introspection reads (RFC 7662 §2.1, and
// the client's own, clientauth.Params): each is refused when sent more
// than once (docs/security.md T-06).
var Params = oauth2.NewParams([]string{"token", "token_type_hint"}, clientauth.Params)

// readBody reads an application/x-www-form-urlencoded body (RFC 7662 §2.1)
// or, for Google's dialect, also a JSON body read as Google's front end
// reads it (oauth2.ReadGoogleJSON). A parameter of Params sent twice is refused (docs/security.md T-06), any other ignored (T-226); an oversized
// body is 413 (T-01).
func readBody(r *http.Request, google bool) (formValues, error) {
	// The plain form type, as every client sends it, needs no parsing
	// (ParseMediaType allocates its parameter map).
	mt := r.Header.Get("Content-Type")
	if mt != formType {
		var err error
		if mt, _, err = mime.ParseMediaType(mt); err != nil {
			mt = ""
		}
	}
	if err := oauth2.CheckContentEncoding(r); err != nil {
		return formValues{}, err
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return formValues{}, &oauth2.Error{Code: oauth2.ErrorInvalidRequest, Description: "request body too large", Status: http.StatusRequestEntityTooLarge}
		}
		return formValues{}, oauth2.NewError(oauth2.ErrorInvalidRequest, "unreadable body")
	}
	switch {
	case mt == formType:
		v, err := url.ParseQuery(string(body))
		if err != nil {
			return formValues{}, oauth2.NewError(oauth2.ErrorInvalidRequest, "malformed form body")
		}
		// A parameter sent empty is omitted, one we do not know ignored,
		// sent once or more (RFC 6749 §3.1, §3.2; docs/security.md T-226).
		if k := oauth2.ReadParams(v, Params); k != "" {
			return formValues{}, oauth2.NewError(oauth2.ErrorInvalidRequest, "parameter '"+k+"' repeated")
		}
		return formValues{v}, nil
	case google && mt == "application/json":
		v, err := oauth2.ReadGoogleJSON(body, googleNames, nil)
		if err != nil {
			return formValues{}, err
		}
		return formValues{v}, nil
	default:
		return formValues{}, &oauth2.Error{Code: oauth2.ErrorInvalidRequest, Description: "unsupported content type", Status: http.StatusUnsupportedMediaType}
	}
}
