package introspect

import (
	"encoding/json"
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

// readBody reads an application/x-www-form-urlencoded body (RFC 7662 §2.1)
// or, for Google's dialect, also a JSON body with snake_case or camelCase
// names. Repeated parameters are refused (docs/security.md T-06); an oversized
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
		var j struct {
			Token          string `json:"token"`
			TokenTypeHint  string `json:"token_type_hint"`
			TokenTypeHint2 string `json:"tokenTypeHint"`
		}
		if err := json.Unmarshal(body, &j); err != nil {
			return formValues{}, oauth2.NewError(oauth2.ErrorInvalidRequest, "malformed json body")
		}
		v := url.Values{}
		if j.Token != "" {
			v.Set("token", j.Token)
		}
		return formValues{v}, nil
	default:
		return formValues{}, &oauth2.Error{Code: oauth2.ErrorInvalidRequest, Description: "unsupported content type", Status: http.StatusUnsupportedMediaType}
	}
}
