package grants

import (
	"log/slog"
	"net/http"

	"github.com/opensts/sts/internal/oauth2"
)

// standard is POST /oauth2/token: RFC 6749 §3.2 form body, RFC 6749 §5.2
// error JSON plus our reason.
var standard = &dialect{
	name:  "oauth2",
	parse: func(r *http.Request) (*Request, error) { return parseForm(r, tokenParams) },
	writeOK: func(w http.ResponseWriter, resp *Response) {
		oauth2.WriteJSON(w, http.StatusOK, resp) // Cache-Control: no-store
	},
	writeError: func(w http.ResponseWriter, _ string, e *oauth2.Error) {
		oauth2.WriteError(w, nil, e)
	},
}

func (h *Handler) logger() *slog.Logger {
	if h.Logger != nil {
		return h.Logger
	}
	return slog.New(slog.DiscardHandler)
}

// parseForm reads a token request's form, whose parameters are known
// (readForm), and its standard parameters.
func parseForm(r *http.Request, known oauth2.Params) (*Request, error) {
	v, err := readForm(r, known)
	if err != nil {
		// A form refused for a repeated parameter still hands its
		// code to the replay check (docs/security.md T-206).
		return formCode(v), err
	}
	req := &Request{}
	// A refusal keeps the request it read: a spent code in it is
	// judged all the same (Handler.spentCodeFirst).
	return req, req.fromValues(v)
}
