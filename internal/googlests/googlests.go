// Package googlests is the wire behaviour of Google's generated Go client
// for the Security Token Service v1 (google.golang.org/api/sts/v1) for the
// two calls sts serves besides token exchange: Introspect and Oauthtoken.
// Tests use it as the judge of the Google dialect.
//
// The types below are those of google.golang.org/api v0.170.0,
// sts/v1/sts-gen.go (Copyright Google LLC, BSD-3-Clause), with their JSON
// tags unchanged; the calls do what that file's doRequest and Do do: POST
// a JSON body to BasePath + "v1/…?alt=json&prettyPrint=false" and decode
// the answer with encoding/json. The generated package itself cannot be
// imported: v0.170.0 is the newest google.golang.org/api that still has
// these calls, and google.golang.org/grpc requires a newer one, which Go's
// minimal version selection then picks for the whole build.
package googlests

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strings"
)

// IntrospectTokenRequest is GoogleIdentityStsV1IntrospectTokenRequest.
type IntrospectTokenRequest struct {
	Token         string `json:"token,omitempty"`
	TokenTypeHint string `json:"tokenTypeHint,omitempty"`
}

// IntrospectTokenResponse is GoogleIdentityStsV1IntrospectTokenResponse:
// exp and iat are int64 values sent as JSON strings (the discovery
// document's "format": "int64").
type IntrospectTokenResponse struct {
	Active   bool   `json:"active,omitempty"`
	ClientId string `json:"client_id,omitempty"`
	Exp      int64  `json:"exp,omitempty,string"`
	Iat      int64  `json:"iat,omitempty,string"`
	Iss      string `json:"iss,omitempty"`
	Scope    string `json:"scope,omitempty"`
	Sub      string `json:"sub,omitempty"`
	Username string `json:"username,omitempty"`
}

// ExchangeOauthTokenRequest is GoogleIdentityStsV1ExchangeOauthTokenRequest.
type ExchangeOauthTokenRequest struct {
	ClientId     string `json:"clientId,omitempty"`
	Code         string `json:"code,omitempty"`
	CodeVerifier string `json:"codeVerifier,omitempty"`
	GrantType    string `json:"grantType,omitempty"`
	RedirectUri  string `json:"redirectUri,omitempty"`
	RefreshToken string `json:"refreshToken,omitempty"`
	Scope        string `json:"scope,omitempty"`
}

// ExchangeOauthTokenResponse is GoogleIdentityStsV1ExchangeOauthTokenResponse.
type ExchangeOauthTokenResponse struct {
	AccessToken  string `json:"access_token,omitempty"`
	ExpiresIn    int64  `json:"expires_in,omitempty"`
	IdToken      string `json:"id_token,omitempty"`
	RefreshToken string `json:"refresh_token,omitempty"`
	Scope        string `json:"scope,omitempty"`
	TokenType    string `json:"token_type,omitempty"`
}

// Service is the generated Service: BasePath ends with "/", Client carries
// the caller's credentials (the generated client takes them the same way,
// through option.WithHTTPClient).
type Service struct {
	BasePath string
	Client   *http.Client
}

// Error is a non-2xx answer (googleapi.Error).
type Error struct {
	Code int
	Body string
}

func (e *Error) Error() string {
	return fmt.Sprintf("googleapi: got HTTP response code %d with body: %s", e.Code, e.Body)
}

// Introspect is V1Service.Introspect(req).Context(ctx).Do().
func (s *Service) Introspect(ctx context.Context, req *IntrospectTokenRequest) (*IntrospectTokenResponse, error) {
	var out IntrospectTokenResponse
	return &out, s.call(ctx, "v1/introspect", req, &out)
}

// Oauthtoken is V1Service.Oauthtoken(req).Context(ctx).Do().
func (s *Service) Oauthtoken(ctx context.Context, req *ExchangeOauthTokenRequest) (*ExchangeOauthTokenResponse, error) {
	var out ExchangeOauthTokenResponse
	return &out, s.call(ctx, "v1/oauthtoken", req, &out)
}

func (s *Service) call(ctx context.Context, path string, in, out any) error {
	body, err := json.Marshal(in)
	if err != nil {
		return err
	}
	r, err := http.NewRequestWithContext(ctx, http.MethodPost, s.BasePath+path+"?alt=json&prettyPrint=false", bytes.NewReader(body))
	if err != nil {
		return err
	}
	r.Header.Set("x-goog-api-client", "gl-go/"+strings.TrimPrefix(runtime.Version(), "go")+" gdcl/0.170.0")
	r.Header.Set("User-Agent", "google-api-go-client/0.5")
	r.Header.Set("Content-Type", "application/json")
	client := s.Client
	if client == nil {
		client = http.DefaultClient
	}
	res, err := client.Do(r)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode < 200 || res.StatusCode > 299 {
		b, _ := io.ReadAll(io.LimitReader(res.Body, 64<<10))
		return &Error{Code: res.StatusCode, Body: string(b)}
	}
	// gensupport.DecodeResponse: json.NewDecoder(res.Body).Decode(target).
	return json.NewDecoder(res.Body).Decode(out)
}
