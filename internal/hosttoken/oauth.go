package hosttoken

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"golang.org/x/oauth2"

	"github.com/opensts/sts/internal/sts"
)

// fetched is a token endpoint's answer to a refresh_token grant.
type fetched struct {
	access, refresh string
	expiry          time.Time
}

// refreshError is a refresh failure whose message is safe to store on the
// token and show its owner: never a response body, which might echo a
// secret.
type refreshError struct {
	msg string
	err error
}

func (e *refreshError) Error() string { return e.msg }
func (e *refreshError) Unwrap() error { return e.err }

func safeMessage(err error) string {
	if re, ok := errors.AsType[*refreshError](err); ok {
		return re.msg
	}
	if se, ok := errors.AsType[*sts.Error](err); ok {
		return "refresh failed: " + sts.ErrorMessage(se)
	}
	return "refresh failed"
}

// fetch runs the RFC 6749 §6 refresh_token grant against integ. A
// provider that does not rotate the refresh token keeps the old one
// (x/oauth2 copies it over).
func fetch(ctx context.Context, client *http.Client, integ Integration, refresh string) (fetched, error) {
	if integ.TokenURL == "" {
		return fetched{}, &refreshError{msg: "integration not configured"}
	}
	if client != nil {
		ctx = context.WithValue(ctx, oauth2.HTTPClient, client)
	}
	conf := &oauth2.Config{ClientID: integ.ClientID, ClientSecret: integ.ClientSecret,
		Endpoint: oauth2.Endpoint{TokenURL: integ.TokenURL}}
	tok, err := conf.TokenSource(ctx, &oauth2.Token{RefreshToken: refresh}).Token()
	if err != nil {
		if re, ok := errors.AsType[*oauth2.RetrieveError](err); ok {
			if re.ErrorCode != "" {
				return fetched{}, &refreshError{msg: "token endpoint returned " + sanitize(re.ErrorCode), err: err}
			}
			return fetched{}, &refreshError{msg: fmt.Sprintf("token endpoint returned HTTP %d", re.Response.StatusCode), err: err}
		}
		return fetched{}, &refreshError{msg: "token endpoint unreachable", err: err}
	}
	if tok.AccessToken == "" {
		return fetched{}, &refreshError{msg: "token endpoint returned no access_token"}
	}
	if len(tok.AccessToken) > MaxValueLength || len(tok.RefreshToken) > MaxValueLength {
		return fetched{}, &refreshError{msg: "token endpoint returned an oversized token"}
	}
	return fetched{access: tok.AccessToken, refresh: tok.RefreshToken, expiry: tok.Expiry}, nil
}

// sanitize keeps an RFC 6749 §5.2 error code printable and short.
func sanitize(code string) string {
	b := make([]byte, 0, min(len(code), 64))
	for i := 0; i < len(code) && len(b) < 64; i++ {
		if c := code[i]; c >= 0x20 && c < 0x7f && c != '"' && c != '\\' {
			b = append(b, c)
		}
	}
	return string(b)
}
