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
    reauth_after: 30m
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
	if w.Session.IdleTimeout != 30*time.Minute || w.Session.AbsoluteTimeout != 8*time.Hour || w.Session.ReauthAfter != 30*time.Minute {
		t.Errorf("session: %+v", w.Session)
	}
	if len(w.Login.OIDC) != 1 || w.Login.OIDC[0].ClientSecret.Reveal() != "s3cret" || w.Login.OIDC[0].LinkClaim != "email" {
		t.Errorf("oidc: %+v", w.Login.OIDC)
	}

	bad := strings.NewReplacer("link_claim: email", "link_claim: name", "idle_timeout: 30m", "idle_timeout: 9h", "id: corp", "id: Corp!", "reauth_after: 30m", "reauth_after: 1m").Replace(yaml)
	if err := os.WriteFile(file, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Load(Options{File: file, Environ: env})
	for _, want := range []string{"web.login.oidc[Corp!].link_claim", "web.login.oidc[Corp!].id", "web.session.absolute_timeout", "web.session.reauth_after"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Load(bad) = %v, want a problem with %s", err, want)
		}
	}
}

// TestReauthAfterDefault: web.session.reauth_after is 2h unless set, and
// it is bounded on both sides; a lowered absolute_timeout below it is no
// error (the session then ends before it asks; docs/security.md T-139).
func TestReauthAfterDefault(t *testing.T) {
	file := filepath.Join(t.TempDir(), "sts.yaml")
	for _, c := range []struct {
		yaml string
		want time.Duration
		bad  bool
	}{
		{"", 2 * time.Hour, false},
		{"web:\n  session:\n    idle_timeout: 30m\n    absolute_timeout: 1h\n", 2 * time.Hour, false},
		{"web:\n  session:\n    reauth_after: 5m\n", 5 * time.Minute, false},
		{"web:\n  session:\n    reauth_after: 720h\n", 720 * time.Hour, false},
		{"web:\n  session:\n    reauth_after: 4m\n", 0, true},
		{"web:\n  session:\n    reauth_after: 721h\n", 0, true},
	} {
		if err := os.WriteFile(file, []byte(c.yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := Load(Options{File: file, Environ: func() []string { return nil }})
		switch {
		case c.bad && (err == nil || !strings.Contains(err.Error(), "web.session.reauth_after")):
			t.Errorf("%q: %v, want a problem with web.session.reauth_after", c.yaml, err)
		case !c.bad && err != nil:
			t.Errorf("%q: %v", c.yaml, err)
		case !c.bad && cfg.Web.Session.ReauthAfter != c.want:
			t.Errorf("%q: reauth_after %s, want %s", c.yaml, cfg.Web.Session.ReauthAfter, c.want)
		}
	}
}
