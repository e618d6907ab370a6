package introspect

import (
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"

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

// readBody reads an application/x-www-form-urlencoded body (RFC 7662 §2.1)
// or, for Google's dialect, also a JSON body read as Google's front end
// reads it (oauth2.ReadGoogleJSON). Repeated parameters are refused (docs/security.md T-06); an oversized
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
		for _, vs := range v {
			if len(vs) > 1 {
				return formValues{}, oauth2.NewError(oauth2.ErrorInvalidRequest, "repeated parameter")
			}
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
