package grants

import (
	"context"
	"net/http"
	"net/url"

	"github.com/opensts/sts/internal/clientauth"
	"github.com/opensts/sts/internal/storage"
)

// Clients adapts a [clientauth.Authenticator] to the dispatcher's
// [ClientAuthenticator] extension point: credentials are optional at this
// phase (each grant's ClientAuth policy decides), but credentials that are
// present must be valid (invalid_client, 401; docs/security.md T-09).
//
// With Principals, an authenticated client is also refused (invalid_client)
// when its service account is disabled, deleted or of another
// organization (docs/security.md A-94): every grant, on every dialect. The
// principal read is kept on the request, and client_credentials issues
// from it instead of reading it again.
type Clients struct {
	Authenticator *clientauth.Authenticator
	// Principals reads a client's service account; nil (a handler in a
	// test without principals) skips the check. Cache, when set, serves an
	// enabled copy from the per-node record cache, as client_credentials
	// does: a service account disabled on another replica stops its
	// clients here within the cache's TTL, at once on this one.
	Principals clientauth.PrincipalReader
	Cache      clientauth.PrincipalCache
}

var _ ClientAuthenticator = Clients{}

// Authenticate implements [ClientAuthenticator].
func (c Clients) Authenticate(ctx context.Context, r *http.Request, req *Request) (*storage.Client, error) {
	res, err := c.Authenticator.Authenticate(ctx, r, req.form, clientauth.Optional)
	if err != nil {
		return nil, err
	}
	if res == nil {
		// A public client that named itself in HTTP Basic with an empty
		// password is identified as one sending client_id in the body
		// (the authenticator has checked it is one, and that a body
		// client_id is the same): the grant reads it there.
		if id, ok, _ := clientauth.PublicBasic(r); ok && req.form.Get("client_id") == "" {
			if req.form == nil {
				req.form = url.Values{}
			}
			req.form.Set("client_id", id)
			req.ClientID = id
		}
		return nil, nil
	}
	if c.Principals != nil {
		p, err := clientauth.ServiceAccount(ctx, c.Principals, c.Cache, &res.Client)
		if err != nil {
			// The client proved its credential: its refusal is its
			// organization's to see, naming it (docs/security.md D-19).
			req.trace.client, req.trace.clientOrg = res.Client.ID, res.Client.OrgID
			return nil, err
		}
		req.clientPrincipal = p
	}
	return &res.Client, nil
}
