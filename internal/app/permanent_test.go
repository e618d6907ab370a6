package app

import (
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/opensts/sts/internal/grants"
	"github.com/opensts/sts/internal/server"
)

// TestMountConflictIsPermanent: a token endpoint route that conflicts with
// one the server already has is a start-up error retrying cannot fix:
// mount returns it as a *PermanentError and permanent (what start-up and
// boot's retry loop ask) says so, where Ready used to panic (on
// PostgreSQL in the retry goroutine, ending the process with a stack
// trace).
func TestMountConflictIsPermanent(t *testing.T) {
	late := &server.Deferred{}
	server.New(server.Options{GCInterval: time.Hour, Mounters: []server.Mounter{
		server.MounterFunc(func(mux *http.ServeMux) {
			mux.HandleFunc("POST "+grants.PathToken, func(http.ResponseWriter, *http.Request) {})
		}), late,
	}})
	ep := &tokenEndpoints{handler: &grants.Handler{}, oauth: &oauthParts{}}
	err := ep.mount(late)
	var pe *PermanentError
	if !errors.As(err, &pe) {
		t.Fatalf("mount with a conflicting route = %v, want a *PermanentError", err)
	}
	for _, e := range []error{err, fmt.Errorf("token endpoints: %w", err)} {
		if perr := permanent(e); perr == e || !errors.As(perr, &pe) {
			t.Errorf("permanent(%v) = %v, want a new *PermanentError (start-up stops)", e, perr)
		}
	}
}
