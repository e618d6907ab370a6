package app

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/opensts/sts/internal/grants"
	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/signer"
	"github.com/opensts/sts/internal/storage/cache"
	"github.com/opensts/sts/internal/storage/sqlstore"
	"github.com/opensts/sts/internal/ststest/pgtest"
)

// restart replaces e's endpoints by a fresh set on the same database, the
// same pepper and the same clock, as a new process (or another replica
// after a failover) would build them: nothing survives but what storage
// holds.
func (e *oauthEnv) restart(t *testing.T) {
	t.Helper()
	keys, err := signer.NewStatic(signer.ES256)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	e.srv.Close()
	e.srv = srv
	e.records = cache.New(e.store)
	e.records.Now = e.clock.Now
	e.parts = newOAuth(oauthDeps{Store: e.records, Issuer: srv.URL, Keys: keys, Pepper: e.pepper, Now: e.clock.Now})
	(&grants.Handler{Grants: e.parts.Grants, Clients: e.parts.ClientAuth}).Mount(mux)
	for _, m := range e.parts.Mounters {
		m.Mount(mux)
	}
}

// TestRefreshRotationSurvivesRestart (docs/security.md F-44): a rotation
// whose response was lost can be retried after a restart that took longer
// than the old 5 s grace: the same successor comes back and the family
// stays intact. Once the successor has been used, the old token is a reuse
// and ends the family.
func TestRefreshRotationSurvivesRestart(t *testing.T) { testRefreshRestart(t, newOAuthEnv(t)) }

// TestRefreshRotationSurvivesRestartPostgres runs it on PostgreSQL.
func TestRefreshRotationSurvivesRestartPostgres(t *testing.T) {
	t.Parallel()
	testRefreshRestart(t, newOAuthEnvOn(t, sqlstore.Config{Driver: sqlstore.DriverPostgres, DSN: pgtest.DSN(t)}))
}

func testRefreshRestart(t *testing.T, e *oauthEnv) {
	outer := t // the restarted server lives as long as the test
	issue := func() string { return e.issueRefresh(t) }
	refresh := func(rt string) (int, map[string]any) {
		t.Helper()
		status, _, body := e.post(t, "/oauth2/token", url.Values{"grant_type": {oauth2.GrantTypeRefreshToken}, "refresh_token": {rt}}, e.a.ID, e.secA)
		var m map[string]any
		json.Unmarshal([]byte(body), &m)
		return status, m
	}

	t.Run("lost response, restart, retry", func(t *testing.T) {
		rt0 := issue()
		status, lost := refresh(rt0) // the client never sees this answer
		if status != 200 || lost["refresh_token"] == nil {
			t.Fatalf("first rotation = %d %v", status, lost)
		}
		e.restart(outer)
		e.clock.Advance(30 * time.Second) // a failover longer than the old grace
		status, again := refresh(rt0)
		if status != 200 || again["refresh_token"] != lost["refresh_token"] {
			t.Fatalf("retry after the restart = %d %v, want 200 with the same successor", status, again)
		}
		// The family is intact: the successor rotates normally.
		if status, next := refresh(again["refresh_token"].(string)); status != 200 || next["refresh_token"] == nil {
			t.Fatalf("successor after the retry = %d %v, want 200", status, next)
		}
	})
	t.Run("retry after the successor was used is reuse", func(t *testing.T) {
		rt0 := issue()
		_, r1 := refresh(rt0)
		status, r2 := refresh(r1["refresh_token"].(string)) // the successor's first use
		if status != 200 {
			t.Fatalf("successor = %d %v", status, r2)
		}
		e.restart(outer)
		if status, r := refresh(rt0); status != 400 || r["reason"] != grants.ReasonRefreshReused {
			t.Fatalf("old token after its successor was used = %d %v, want invalid_grant refresh_token_reused", status, r)
		}
		if status, r := refresh(r2["refresh_token"].(string)); status != 400 || r["error"] != "invalid_grant" {
			t.Fatalf("family after the reuse = %d %v, want revoked", status, r)
		}
	})
}
