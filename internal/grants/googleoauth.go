package grants

import (
	"net/http"

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
}

// googleOAuth is POST /v1/oauthtoken in its grant_type=refresh_token form:
// a form body with the client authenticated by HTTP Basic, as Google's
// client libraries send it. Any other grant type is refused here (the
// authorization_code form needs the web login); the refresh itself is the
// same rotating refresh_token grant as /oauth2/token.
var googleOAuth = &dialect{
	name: "google-oauth",
	parse: func(r *http.Request) (*Request, error) {
		req, err := standard.parse(r)
		if err != nil {
			return nil, err
		}
		if req.GrantType != "" && req.GrantType != oauth2.GrantTypeRefreshToken {
			req.GrantType = "unsupported:" + req.GrantType // never matches a grant
		}
		return req, nil
	},
	writeOK: func(w http.ResponseWriter, resp *Response) {
		oauth2.WriteJSON(w, http.StatusOK, googleOAuthResponse{
			AccessToken: resp.AccessToken, ExpiresIn: resp.ExpiresIn, RefreshToken: resp.RefreshToken,
			Scope: resp.Scope, TokenType: resp.TokenType,
		})
	},
	writeError: standard.writeError,
}
