package cli_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2/clientcredentials"

	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/storage/sqlstore"
	"github.com/opensts/sts/internal/ststest"
)

// restoreClient creates a service account and a client_credentials
// client on the server of dir and returns its token source's config.
func restoreClient(t *testing.T, r *run, dir string) clientcredentials.Config {
	t.Helper()
	sa := newServiceAccount(t, dir, "restore-bot")
	id, secret := newClient(t, dir, sa, r.base, "read")
	return clientcredentials.Config{ClientID: id, ClientSecret: secret, TokenURL: r.base + "/oauth2/token", Scopes: []string{"read"}}
}

// introspectActive reports whether the server at base finds tok active,
// asking as the client of cc.
func introspectActive(t *testing.T, base string, cc clientcredentials.Config, tok string) bool {
	t.Helper()
	req, _ := http.NewRequest("POST", base+"/oauth2/introspect", strings.NewReader(url.Values{"token": {tok}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(cc.ClientID, cc.ClientSecret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil || resp.StatusCode != 200 {
		t.Fatalf("introspect = %d %v %v", resp.StatusCode, m, err)
	}
	return m["active"] == true
}

// addRefreshToken stores a live refresh-token family in the database at
// path, as the token endpoint would, and returns its ID.
func addRefreshToken(t *testing.T, path string) string {
	t.Helper()
	st, err := sqlstore.Open(t.Context(), sqlstore.Config{Driver: sqlstore.DriverSQLite, DSN: path})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	orgs, err := st.ListOrganizations(t.Context())
	if err != nil || len(orgs) == 0 {
		t.Fatalf("organizations: %v %v", orgs, err)
	}
	id, now := storage.NewID(), storage.Now(time.Now())
	rt := storage.RefreshToken{ID: id, FamilyID: id, Digest: []byte(id), OrgID: orgs[0].ID, Subject: "restore-user",
		CreatedAt: now, ExpiresAt: now.Add(24 * time.Hour)}
	if err := st.CreateRefreshToken(t.Context(), rt); err != nil {
		t.Fatal(err)
	}
	return id
}

func refreshRevoked(t *testing.T, path, id string) bool {
	t.Helper()
	st, err := sqlstore.Open(t.Context(), sqlstore.Config{Driver: sqlstore.DriverSQLite, DSN: path})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	rt, err := st.GetRefreshToken(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	return rt.Revoked
}

// TestRestoreRevokesKeysAndRefreshTokens (docs/security.md F-61): a key
// revoked after a backup (T-77) must not come back with the backup.
// `sts restore` refuses while a server holds the database; with the
// server stopped it puts the backup in place (mode 0600, the old files
// moved aside) and, in the restored database, replaces every signing key
// and revokes every refresh token, audited as instance.restore. After it
// the revoked kid is neither listed nor published, no key of before the
// restore is, a token signed before the restore is inactive, and a
// refresh token of before is revoked; new tokens are signed and verify.
func TestRestoreRevokesKeysAndRefreshTokens(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "sts.db")
	r := serve(t, "--data-dir", dir)
	checkServing(t, r)
	cc := restoreClient(t, r, dir)
	old, err := cc.Token(t.Context())
	if err != nil {
		t.Fatalf("clientcredentials: %v", err)
	}
	rt := addRefreshToken(t, db)
	oldKids := jwksKIDs(t, r)

	backup := filepath.Join(t.TempDir(), "sts-backup.db")
	if code, out, e := runCLI(t, "backup", backup, "--data-dir", dir); code != 0 {
		t.Fatalf("backup = %d %q %q", code, out, e)
	}
	bad := (&adminServer{dir: dir}).activeKids(t, "--data-dir", dir)["ES256"]
	if code, out, e := runCLI(t, "keys", "revoke", bad, "--data-dir", dir); code != 0 {
		t.Fatalf("keys revoke = %d %q %q", code, out, e)
	}

	// Refused while the server holds the database; nothing changes.
	code, out, e := runCLI(t, "restore", backup, "--data-dir", dir)
	if code == 0 || !strings.Contains(e, "in use") {
		t.Fatalf("restore while serving = %d %q %q, want a refusal naming the database in use", code, out, e)
	}
	if m, _ := filepath.Glob(db + ".*"); slices.ContainsFunc(m, func(s string) bool { return strings.Contains(s, "pre-restore") }) {
		t.Fatalf("a refused restore moved files: %v", m)
	}
	if code := r.stop(t); code != 0 {
		t.Fatalf("serve exit = %d", code)
	}

	code, out, e = runCLI(t, "restore", backup, "--data-dir", dir)
	if code != 0 {
		t.Fatalf("restore = %d %q %q", code, out, e)
	}
	for _, want := range []string{"restored " + backup, "revoked", "refresh token", "sts audit list --since "} {
		if !strings.Contains(out, want) {
			t.Errorf("restore output lacks %q:\n%s", want, out)
		}
	}
	if fi, err := os.Stat(db); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("restored database: %v, mode %v; want 0600", err, fi)
	}
	if m, _ := filepath.Glob(db + ".pre-restore-*"); len(m) == 0 {
		t.Errorf("the replaced database was not kept aside: %v", m)
	}

	r = serve(t, "--data-dir", dir)
	checkServing(t, r)
	kids := jwksKIDs(t, r)
	for _, k := range oldKids {
		if slices.Contains(kids, k) {
			t.Errorf("key %s of before the restore is published after it (revoked one: %s): %v", k, bad, kids)
		}
	}
	if slices.Contains(kids, bad) {
		t.Fatalf("the key revoked after the backup is published after the restore: %v", kids)
	}
	if got := (&adminServer{dir: dir}).activeKids(t, "--data-dir", dir); got["ES256"] == "" || got["ES256"] == bad {
		t.Errorf("active keys after the restore = %v (revoked %s)", got, bad)
	}
	cc.TokenURL = r.base + "/oauth2/token"
	if introspectActive(t, r.base, cc, old.AccessToken) {
		t.Error("a token signed before the restore is still active")
	}
	fresh, err := cc.Token(t.Context())
	if err != nil || !introspectActive(t, r.base, cc, fresh.AccessToken) {
		t.Fatalf("a token issued after the restore: %v", err)
	}
	r.stop(t)
	if !refreshRevoked(t, db, rt) {
		t.Error("a refresh token of before the restore is not revoked")
	}
	code, out, e = runCLI(t, "audit", "list", "--data-dir", dir, "--action", "instance.restore")
	if code != 0 || !strings.Contains(out, "sts-backup.db") {
		t.Errorf("audit list --action instance.restore = %d %q %q", code, out, e)
	}
	if strings.Contains(out, cc.ClientSecret) || strings.Contains(out, old.AccessToken) {
		t.Error("the restore's audit event carries a secret")
	}
}

// TestRestoreAfterPostgres: on PostgreSQL, restored by the operator with
// pg_restore, `sts restore --after` does the same in the configured
// database; a plain `sts restore FILE` points there.
func TestRestoreAfterPostgres(t *testing.T) {
	dsn := ststest.PostgresDSN(t)
	t.Setenv("STS_STORAGE_TYPE", "postgres")
	t.Setenv("STS_STORAGE_DSN", dsn)
	dir := t.TempDir()
	if code, out, e := runCLI(t, "migrate", "--data-dir", dir); code != 0 {
		t.Fatalf("migrate = %d %q %q", code, out, e)
	}
	if code, out, e := runCLI(t, "keys", "list", "--data-dir", dir); code != 0 {
		t.Fatalf("keys list = %d %q %q", code, out, e)
	}
	// serve creates the key set and the master key; start and stop it once.
	r := serve(t, "--data-dir", dir)
	checkServing(t, r)
	oldKids := jwksKIDs(t, r)
	r.stop(t)

	if code, _, e := runCLI(t, "restore", "x.dump", "--data-dir", dir); code == 0 || !strings.Contains(e, "pg_restore") || !strings.Contains(e, "--after") {
		t.Errorf("restore FILE on postgres = %d %q, want a pointer to pg_restore and --after", code, e)
	}
	code, out, e := runCLI(t, "restore", "--after", "sts-20260101.dump", "--data-dir", dir)
	if code != 0 {
		t.Fatalf("restore --after = %d %q %q", code, out, e)
	}
	r = serve(t, "--data-dir", dir)
	checkServing(t, r)
	for _, k := range jwksKIDs(t, r) {
		if slices.Contains(oldKids, k) {
			t.Errorf("key %s of before the restore is published after it", k)
		}
	}
	r.stop(t)
	code, out, e = runCLI(t, "audit", "list", "--data-dir", dir, "--action", "instance.restore")
	if code != 0 || !strings.Contains(out, "sts-20260101.dump") {
		t.Errorf("audit list --action instance.restore = %d %q %q", code, out, e)
	}
}
