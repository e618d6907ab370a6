package introspect

import (
	"strconv"

	"github.com/opensts/sts/internal/tokens"
)

// Response is an RFC 7662 §2.2 introspection answer. An inactive answer
// carries nothing but active=false (docs/security.md T-62).
type Response struct {
	Active    bool            `json:"active"`
	Scope     string          `json:"scope,omitempty"`
	ClientID  string          `json:"client_id,omitempty"`
	Subject   string          `json:"sub,omitempty"`
	Audience  tokens.Audience `json:"aud,omitempty"`
	Issuer    string          `json:"iss,omitempty"`
	Expiry    int64           `json:"exp,omitempty"`
	IssuedAt  int64           `json:"iat,omitempty"`
	NotBefore int64           `json:"nbf,omitempty"`
	JTI       string          `json:"jti,omitempty"`
	TokenType string          `json:"token_type,omitempty"`
	// Extensions of docs/design.md#tokens: delegation (act, may_act), access boundary, provenance.
	OrgID     string         `json:"org_id,omitempty"`
	Principal string         `json:"principal,omitempty"`
	Act       *tokens.Actor  `json:"act,omitempty"`
	MayAct    *tokens.MayAct `json:"may_act,omitempty"`
	CAB       map[string]any `json:"cab,omitempty"`
	Pool      string         `json:"pool,omitempty"`
	Provider  string         `json:"provider,omitempty"`
	Src       *tokens.Source `json:"src,omitempty"`
}

// inactive is the one answer for every token that is not active.
var inactive = &Response{}

// Token types reported in token_type (RFC 7662 §2.2; RFC 6749 §5.1 for
// access tokens).
const (
	TypeBearer  = "Bearer"
	TypeRefresh = "refresh_token"
)

// fromAccess is the answer for a verified access JWT.
func fromAccess(c *tokens.AccessClaims) *Response {
	return &Response{
		Active: true, Scope: c.Scope, ClientID: c.ClientID, Subject: c.Subject,
		Audience: c.Audience, Issuer: c.Issuer, Expiry: int64(c.Expiry), IssuedAt: int64(c.IssuedAt),
		NotBefore: int64(c.NotBefore), JTI: c.ID, TokenType: TypeBearer, OrgID: c.OrgID,
		Principal: c.Principal, Act: c.Act, MayAct: c.JudgedMayAct(), CAB: c.CAB, Pool: c.Pool, Provider: c.Provider, Src: c.Src,
	}
}

// GoogleResponse is Google's GoogleIdentityStsV1IntrospectTokenResponse:
// its discovery document types exp and iat as int64, which Google's
// clients send and expect as JSON strings, and it has username. Our
// extension members stay (Google's clients ignore them), with nbf a string
// like its siblings. The RFC 7662 answer with JSON numbers stays on
// /oauth2/introspect.
type GoogleResponse struct {
	*Response
	Exp       string `json:"exp,omitempty"`
	Iat       string `json:"iat,omitempty"`
	NotBefore string `json:"nbf,omitempty"`
	// Username is the human-readable name of the subject; sts has none
	// apart from sub, so it repeats sub.
	Username string `json:"username,omitempty"`
}

func googleShape(r *Response) *GoogleResponse {
	if !r.Active {
		return &GoogleResponse{Response: inactive}
	}
	str := func(n int64) string {
		if n == 0 {
			return ""
		}
		return strconv.FormatInt(n, 10)
	}
	return &GoogleResponse{Response: r, Exp: str(r.Expiry), Iat: str(r.IssuedAt), NotBefore: str(r.NotBefore), Username: r.Subject}
}
