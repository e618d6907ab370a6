package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLoadWeb(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "sts.yaml")
	yaml := `web:
  session:
    idle_timeout: 30m
    absolute_timeout: 8h
  login:
    oidc:
      - id: corp
        display_name: Corp
        issuer: https://idp.example
        client_id: sts
        client_secret: ${WEBTEST_SECRET}
        link_claim: email
        organization: default
`
	if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	env := func() []string { return []string{"WEBTEST_SECRET=s3cret"} }
	cfg, err := Load(Options{File: file, Environ: env})
	if err != nil {
		t.Fatal(err)
	}
	w := cfg.Web
	if w.Session.IdleTimeout != 30*time.Minute || w.Session.AbsoluteTimeout != 8*time.Hour {
		t.Errorf("session: %+v", w.Session)
	}
	if len(w.Login.OIDC) != 1 || w.Login.OIDC[0].ClientSecret.Reveal() != "s3cret" || w.Login.OIDC[0].LinkClaim != "email" {
		t.Errorf("oidc: %+v", w.Login.OIDC)
	}

	bad := strings.NewReplacer("link_claim: email", "link_claim: name", "idle_timeout: 30m", "idle_timeout: 9h", "id: corp", "id: Corp!").Replace(yaml)
	if err := os.WriteFile(file, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Load(Options{File: file, Environ: env})
	for _, want := range []string{"web.login.oidc[Corp!].link_claim", "web.login.oidc[Corp!].id", "web.session.absolute_timeout"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Load(bad) = %v, want a problem with %s", err, want)
		}
	}
}
