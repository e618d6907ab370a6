package oauth2

import (
	"net/http"
	"net/url"
)

// CredentialParams are the names a caller's own credentials travel under:
// a client's secret or assertion, and a bearer token under the names
// Google's APIs read it from a query by. No endpoint reads any of them
// from a URL (docs/security.md T-07, T-212).
var CredentialParams = []string{"client_secret", "client_assertion", "access_token", "oauth_token"}

// SecretInQuery returns the first of CredentialParams, then of names,
// present in r's query string, or "" when there is none. The query is
// never read, so a secret there was ignored and the request served from
// its body: the caller never learnt its secret had reached access logs.
// A query url.ParseQuery cannot read is an error: URL.Query skips the
// pair, and a secret in it with it (?token=…;alt=json, T-212). Callers
// refuse either before reading the body, so nothing changes.
func SecretInQuery(r *http.Request, names ...string) (string, error) {
	// ParseQuery builds a new map: skip it when there is no query.
	if r.URL.RawQuery == "" {
		return "", nil
	}
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return "", err
	}
	for _, list := range [][]string{CredentialParams, names} {
		for _, k := range list {
			if q.Has(k) {
				return k, nil
			}
		}
	}
	return "", nil
}

// RefuseSecretInQuery is [SecretInQuery] as an endpoint answers it: nil,
// or invalid_request naming the parameter found, or saying the query is
// malformed (docs/security.md T-07, T-212).
func RefuseSecretInQuery(r *http.Request, names ...string) error {
	name, err := SecretInQuery(r, names...)
	if err != nil {
		return NewError(ErrorInvalidRequest, "malformed query string")
	}
	if name != "" {
		return NewError(ErrorInvalidRequest, name+" in the query string")
	}
	return nil
}
