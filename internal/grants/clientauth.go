package grants

import (
	"context"
	"net/http"

	"github.com/opensts/sts/internal/clientauth"
	"github.com/opensts/sts/internal/storage"
)

// Clients adapts a [clientauth.Authenticator] to the dispatcher's
// [ClientAuthenticator] extension point: credentials are optional at this
// phase (each grant's ClientAuth policy decides), but credentials that are
// present must be valid (invalid_client, 401; docs/security.md T-09).
type Clients struct {
	Authenticator *clientauth.Authenticator
}

var _ ClientAuthenticator = Clients{}

// Authenticate implements [ClientAuthenticator].
func (c Clients) Authenticate(ctx context.Context, r *http.Request, req *Request) (*storage.Client, error) {
	res, err := c.Authenticator.Authenticate(ctx, r, req.form, clientauth.Optional)
	if err != nil || res == nil {
		return nil, err
	}
	return &res.Client, nil
}
