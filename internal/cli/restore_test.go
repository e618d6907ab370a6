package cli_test

import (
	"database/sql"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/opensts/sts/internal/cli"
	stsv1 "github.com/opensts/sts/internal/gen/sts/v1"
	"github.com/opensts/sts/internal/gen/sts/v1/stsv1connect"
	"github.com/opensts/sts/internal/oauth2"
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
	t.Parallel()
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
	if code, out, e := runCLI(t, "keys", "revoke", "--kid="+bad, "--data-dir", dir); code != 0 {
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
	if code != 0 || out != "" {
		t.Fatalf("restore = %d %q %q; want the report on stderr only", code, out, e)
	}
	for _, want := range []string{"restored " + backup, "revoked", "refresh token", "sts audit list --since "} {
		if !strings.Contains(e, want) {
			t.Errorf("restore report lacks %q:\n%s", want, e)
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
	t.Parallel()
	dsn := ststest.PostgresDSN(t)
	setenv(t, "STS_STORAGE_TYPE", "postgres")
	setenv(t, "STS_STORAGE_DSN", dsn)
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

// mintOneTime signs a subject token of iss with jti, for a one-time-use
// provider (audience sts, repository owner acme).
func mintOneTime(t *testing.T, iss *loopbackIssuer, jti string) string {
	t.Helper()
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: iss.key}, (&jose.SignerOptions{}).WithHeader("kid", "k1").WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	payload, _ := json.Marshal(map[string]any{"iss": iss.url, "sub": "repo:acme/app", "aud": "sts", "jti": jti,
		"iat": now.Unix(), "exp": now.Add(10 * time.Minute).Unix(), "repository_owner": "acme"})
	jws, err := s.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := jws.CompactSerialize()
	return out
}

// exchangeReason posts an RFC 8693 exchange of tok to base and returns
// the status and the reason of a refusal (errors.detail: reason).
func exchangeReason(t *testing.T, base, tok string) (int, string) {
	t.Helper()
	resp, err := http.PostForm(base+"/oauth2/token", url.Values{"grant_type": {oauth2.GrantTypeTokenExchange},
		"subject_token": {tok}, "subject_token_type": {oauth2.TokenTypeJWT}, "scope": {"read"}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&m)
	reason, _ := m["reason"].(string)
	return resp.StatusCode, reason
}

// redeemExchangeToken redeems a gitpod.v1 exchange token at base and
// returns the HTTP status.
func redeemExchangeToken(t *testing.T, base, ext string) int {
	t.Helper()
	resp, err := http.Post(base+"/api/gitpod.v1.IdentityService/ExchangeToken", "application/json",
		strings.NewReader(`{"exchangeToken":"`+ext+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

var exchangeTokenRE = regexp.MustCompile(`sts_ext_[0-9A-Za-z]{36}`)

func newExchangeToken(t *testing.T, dir string) string {
	t.Helper()
	code, out, e := runCLI(t, "exchange-token", "create", "--data-dir", dir, "--principal", "admin")
	ext := exchangeTokenRE.FindString(out)
	if code != 0 || ext == "" {
		t.Fatalf("exchange-token create = %d %q %q", code, out, e)
	}
	return ext
}

// TestRestoreEndsOneTimeCredentials (docs/security.md F-62): what was
// spent after a backup stays spent after its restore, although the record
// of its use went with the replaced database. A subject token of a
// one-time-use provider and a gitpod.v1 exchange token, both made before
// the backup and used after it, are refused after the restore (the
// subject token as a replay); fresh ones are accepted once the leeway
// after the restore has passed. The restore says so.
func TestRestoreEndsOneTimeCredentials(t *testing.T) {
	t.Parallel()
	setenv(t, "STS_FEDERATION_ALLOW_LOOPBACK", "true")
	setenv(t, "STS_ERRORS_DETAIL", "reason")
	setenv(t, "STS_KEYS_LEEWAY", "1s") // one-time tokens issued within a leeway of the restore are refused too
	setenv(t, "STS_KEYS_EXTRA_ALGORITHMS", "none")
	iss := newLoopbackIssuer(t)
	s := startAdminServer(t)
	ps := stsv1connect.NewPoolServiceClient(h2cClient(s.admin), s.api)
	if _, err := ps.CreatePool(t.Context(), &stsv1.CreatePoolRequest{
		PoolId: "ci", OrganizationId: s.orgID, Condition: `assertion.repository_owner == "acme"`,
		Mapping: &stsv1.PoolMapping{Subject: "assertion.sub"}, Scopes: []string{"read"}, AllowUnauthenticated: true,
	}); err != nil {
		t.Fatalf("CreatePool: %v", err)
	}
	if _, err := ps.CreateProvider(t.Context(), &stsv1.CreateProviderRequest{PoolId: "ci", ProviderId: "local", Issuer: iss.url,
		Audiences: []string{"sts"}, OneTimeUse: true}); err != nil {
		t.Fatalf("CreateProvider: %v", err)
	}
	tok := mintOneTime(t, iss, "job-1")
	ext := newExchangeToken(t, s.dir)

	backup := filepath.Join(t.TempDir(), "sts-backup.db")
	mustCLI(t, "backup", backup, "--data-dir", s.dir)
	// Spent after the backup: the backup does not know.
	if code, reason := exchangeReason(t, s.r.base, tok); code != 200 {
		t.Fatalf("first exchange of the one-time token = %d %s", code, reason)
	}
	if code, reason := exchangeReason(t, s.r.base, tok); code != 400 || reason != "subject_token_replayed" {
		t.Fatalf("second exchange before the restore = %d %s, want 400 subject_token_replayed", code, reason)
	}
	if code := redeemExchangeToken(t, s.r.base, ext); code != 200 {
		t.Fatalf("first redemption of the exchange token = %d", code)
	}
	s.r.stop(t)

	_, _, out := runCLI(t, "restore", backup, "--data-dir", s.dir)
	restored := time.Now()
	for _, want := range []string{"one-time", "exchange token"} {
		if !strings.Contains(out, want) {
			t.Errorf("restore output lacks %q:\n%s", want, out)
		}
	}
	r := serve(t, "--data-dir", s.dir)
	checkServing(t, r)
	if code, reason := exchangeReason(t, r.base, tok); code != 400 || reason != "subject_token_replayed" {
		t.Errorf("one-time token spent after the backup, exchanged after the restore = %d %s, want 400 subject_token_replayed", code, reason)
	}
	if code := redeemExchangeToken(t, r.base, ext); code != http.StatusUnauthorized {
		t.Errorf("exchange token redeemed after the backup, redeemed after the restore = %d, want 401", code)
	}
	// Fresh credentials work: a one-time token issued a leeway (1 s, and
	// iat's whole second) after the restore, a new exchange token at once.
	time.Sleep(time.Until(restored.Add(2100 * time.Millisecond)))
	if code, reason := exchangeReason(t, r.base, mintOneTime(t, iss, "job-2")); code != 200 {
		t.Errorf("a one-time token issued after the restore = %d %s, want 200", code, reason)
	}
	if code := redeemExchangeToken(t, r.base, newExchangeToken(t, s.dir)); code != 200 {
		t.Errorf("an exchange token made after the restore = %d, want 200", code)
	}
	r.stop(t)
}

// TestBackupAuditsItself (docs/security.md D-20): sts backup records
// instance.backup (actor, time, the file's name without its directory)
// in the copy it made and then in the database, so the backup holds its own
// moment; sts restore reads it back and prints that time, and the
// audit listing it prints starts a minute before it. A refused backup
// (the file exists) records nothing.
func TestBackupAuditsItself(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	db := filepath.Join(dir, "sts.db")
	migrateSeeded(t, dir)
	mustCLI(t, "keys", "generate-master", "--out", filepath.Join(dir, "master.key"))
	backupDir := t.TempDir()
	backup := filepath.Join(backupDir, "sts-backup.db")
	mustCLI(t, "backup", backup, "--data-dir", dir)
	if e := mustFail(t, "backup", backup, "--data-dir", dir); !strings.Contains(e, "already exists") {
		t.Errorf("backup to an existing file: %q", e)
	}

	live := backupEvents(t, db)
	if len(live) != 1 {
		t.Fatalf("instance.backup events in the database = %d, want 1 (a refused backup records none)", len(live))
	}
	ev := live[0]
	if ev.Actor != "cli" || ev.Outcome != "success" || !strings.Contains(ev.Detail, "sts-backup.db") || strings.Contains(ev.Detail, backupDir) {
		t.Errorf("instance.backup = %+v, want actor cli, the file's name and not its directory", ev)
	}
	if inBackup := backupEvents(t, backup); len(inBackup) != 1 || inBackup[0].ID != ev.ID {
		t.Fatalf("the backup holds %v, want its own instance.backup event %s", inBackup, ev.ID)
	}

	_, _, out := runCLI(t, "restore", backup, "--data-dir", dir)
	taken := ev.Time.UTC().Format(time.RFC3339)
	since := ev.Time.Add(-time.Minute).UTC().Format(time.RFC3339)
	if !strings.Contains(out, "backup taken at "+taken) || !strings.Contains(out, "--since "+since+" ") {
		t.Errorf("restore output lacks the backup's time %s and --since %s:\n%s", taken, since, out)
	}
	code, out, e := runCLI(t, "audit", "list", "--data-dir", dir, "--action", "instance.restore")
	if code != 0 || !strings.Contains(out, "backup_time="+taken) {
		t.Errorf("instance.restore lacks the backup's time: %d %q %q", code, out, e)
	}
}

// TestRestoreListsInstanceAdminRevocation (docs/security.md F-64): a
// restore gives back the instance administrator role taken from a
// principal after the backup (`sts principal revoke-instance-admin`), as
// it gives back a deleted PAT; the restore cannot tell, so the list of
// actions it prints to re-apply by hand must name the role's revocation,
// or the operator following it leaves a former instance administrator
// with every organization's keys.
func TestRestoreListsInstanceAdminRevocation(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	r := serve(t, "--data-dir", dir)
	checkServing(t, r)
	if code := r.stop(t); code != 0 {
		t.Fatalf("serve exit = %d", code)
	}
	code, out, e := runCLI(t, "principal", "create", "--data-dir", dir, "--org", "default", "--name", "ops")
	if code != 0 {
		t.Fatalf("principal create = %d %s", code, e)
	}
	ops := strings.TrimSpace(out)
	if code, _, e := runCLI(t, "principal", "grant-instance-admin", "--data-dir", dir, ops); code != 0 {
		t.Fatalf("grant-instance-admin = %d %s", code, e)
	}
	backup := filepath.Join(t.TempDir(), "sts-backup.db")
	if code, out, e := runCLI(t, "backup", backup, "--data-dir", dir); code != 0 {
		t.Fatalf("backup = %d %q %q", code, out, e)
	}
	if code, _, e := runCLI(t, "principal", "revoke-instance-admin", "--data-dir", dir, ops); code != 0 {
		t.Fatalf("revoke-instance-admin = %d %s", code, e)
	}
	code, e, out = runCLI(t, "restore", backup, "--data-dir", dir)
	if code != 0 {
		t.Fatalf("restore = %d %q %q", code, e, out)
	}
	if !strings.Contains(out, "principal.instance_admin.revoke") {
		t.Errorf("restore's list of actions to re-apply lacks principal.instance_admin.revoke:\n%s", out)
	}
	// What the list is for: the role is back after the restore.
	_, list, _ := runCLI(t, "principal", "list", "--data-dir", dir, "--org", "default")
	for _, line := range strings.Split(list, "\n") {
		if strings.HasPrefix(line, ops) && !strings.HasSuffix(strings.TrimSpace(line), "true") {
			t.Errorf("after the restore principal list shows %q; the backup's role was expected back", line)
		}
	}
}

// TestBackupNameWithURICharacters: a backup file whose name holds '?',
// '#' or '%' (a file: URI's query, fragment and escape) gets its own
// instance.backup event, and no other file is written or changed: the
// copy's event once went to the file the name read as a URI (an older
// backup, "sts.db" for "sts.db?2"), making that backup's moment later.
func TestBackupNameWithURICharacters(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	migrateSeeded(t, dir)
	backupDir := t.TempDir()
	first := filepath.Join(backupDir, "sts.db")
	mustCLI(t, "backup", first, "--data-dir", dir)
	names := []string{"sts.db?2", "x%41.db", "h#x.db"}
	for _, name := range names {
		mustCLI(t, "backup", filepath.Join(backupDir, name), "--data-dir", dir)
	}
	if n := len(backupEvents(t, first)); n != 1 {
		t.Errorf("the first backup holds %d instance.backup events, want 1 (its own)", n)
	}
	for i, name := range names {
		// Each copy holds the events before it and its own.
		if n := len(backupEvents(t, filepath.Join(backupDir, name))); n != i+2 {
			t.Errorf("backup %q holds %d instance.backup events, want %d", name, n, i+2)
		}
	}
	entries, err := os.ReadDir(backupDir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	if want := append([]string{"sts.db"}, names...); !sameSet(got, want) {
		t.Errorf("files beside the backups: %q, want %q", got, want)
	}
}

// TestBackupEventRefusedIsAFailure: a backup whose copy was made but
// whose event could not be stored (here a trigger refuses a successful
// instance.backup, in the database and so in the copy) leaves no file
// and one instance.backup event, with outcome failure (docs/security.md
// D-23): one backup, one outcome, even when it fails after the copy.
func TestBackupEventRefusedIsAFailure(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	migrateSeeded(t, dir)
	db, err := sql.Open("sqlite", filepath.Join(dir, "sts.db"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(t.Context(), `CREATE TRIGGER refuse_backup_success BEFORE INSERT ON audit_events
		WHEN NEW.action = 'instance.backup' AND NEW.outcome = 'success'
		BEGIN SELECT RAISE(ABORT, 'refused by the test'); END`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	backup := filepath.Join(t.TempDir(), "sts-backup.db")
	if e := mustFail(t, "backup", backup, "--data-dir", dir); !strings.Contains(e, "refused by the test") {
		t.Errorf("backup whose event is refused: %q", e)
	}
	if _, err := os.Stat(backup); !os.IsNotExist(err) {
		t.Errorf("the copy without its event was left behind: %v", err)
	}
	if evs := backupEvents(t, filepath.Join(dir, "sts.db")); len(evs) != 1 || evs[0].Outcome != "failure" {
		t.Errorf("instance.backup events: %+v, want one failure", evs)
	}
}

// backupEvents returns the instance.backup events of the SQLite database
// at path, newest first.
func backupEvents(t *testing.T, path string) []storage.AuditEvent {
	t.Helper()
	st, err := sqlstore.Open(t.Context(), sqlstore.Config{Driver: sqlstore.DriverSQLite, DSN: path})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	evs, err := st.ListAudit(t.Context(), storage.AuditFilter{Action: "instance.backup", Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

// TestRestoreRefusesAnotherMasterKey (docs/security.md F-84): restoring a
// backup on a host whose configured master key is not the one the backup
// was sealed under (another installation's, or a rotated-away key missing
// from previous_master_key_files) is refused before anything moves: the
// current database stays in place, no file is set aside, and it still
// serves. With the backup's key configured the same restore succeeds.
func TestRestoreRefusesAnotherMasterKey(t *testing.T) {
	t.Parallel()
	a, b := t.TempDir(), t.TempDir()
	r := serve(t, "--data-dir", a)
	checkServing(t, r)
	r.stop(t)
	backup := filepath.Join(t.TempDir(), "sts-a.db")
	if code, out, e := runCLI(t, "backup", backup, "--data-dir", a); code != 0 {
		t.Fatalf("backup = %d %q %q", code, out, e)
	}
	r = serve(t, "--data-dir", b)
	checkServing(t, r)
	r.stop(t)
	db := filepath.Join(b, "sts.db")
	before, err := os.ReadFile(db)
	if err != nil {
		t.Fatal(err)
	}

	code, out, e := runCLI(t, "restore", backup, "--data-dir", b)
	if code == 0 || !strings.Contains(e, "master key") || strings.Contains(e, "restored ") {
		t.Fatalf("restore under another master key = %d %q %q; want a refusal naming the master key, before the copy", code, out, e)
	}
	if m, _ := filepath.Glob(db + ".*"); len(m) != 0 {
		t.Fatalf("a refused restore left files beside the database: %v", m)
	}
	if after, err := os.ReadFile(db); err != nil || !slices.Equal(before, after) {
		t.Fatalf("a refused restore changed the database (%v)", err)
	}
	r = serve(t, "--data-dir", b)
	checkServing(t, r)
	r.stop(t)

	// The backup's own key, as previous_master_key_files: the restore goes
	// ahead (the rows open under the keyring).
	cfg := filepath.Join(t.TempDir(), "sts.yaml")
	yaml := "previous_master_key_files: [" + filepath.Join(a, "master.key") + "]\n"
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out, e := runCLI(t, "restore", backup, "--data-dir", b, "--config", cfg); code != 0 {
		t.Fatalf("restore with the backup's key among the previous ones = %d %q %q", code, out, e)
	}
}

// markSchemaNewer records in the SQLite database at path a migration past
// any this binary carries, as a newer release's sts migrate would.
func markSchemaNewer(t *testing.T, path string) {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ExecContext(t.Context(), "INSERT INTO schema_migrations (version_id, is_applied) VALUES (9999, 1)"); err != nil {
		t.Fatal(err)
	}
}

// TestOlderBinaryRefusesNewerSchema (docs/security.md F-85): a binary
// older than its database (a rollback after an upgrade migrated it, or a
// restore of a newer release's backup) must not serve on it or write to
// it. serve exits 2 naming both versions; migrate and migrate status
// (after its list) fail; a direct-mode admin command refuses; restore
// refuses a newer release's backup before anything moves.
func TestOlderBinaryRefusesNewerSchema(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	r := serve(t, "--data-dir", dir)
	checkServing(t, r)
	r.stop(t)
	waitSQLiteClosed(t, dir) // serve may return before its store closes (F-41)
	backup := filepath.Join(t.TempDir(), "sts-newer.db")
	if code, out, e := runCLI(t, "backup", backup, "--data-dir", dir); code != 0 {
		t.Fatalf("backup = %d %q %q", code, out, e)
	}
	markSchemaNewer(t, filepath.Join(dir, "sts.db"))
	markSchemaNewer(t, backup)

	r = serve(t, "--data-dir", dir)
	select {
	case code := <-r.code:
		r.code <- code
		if code != cli.ExitUsage || !strings.Contains(r.stderr.String(), "9999") {
			t.Errorf("serve on a newer schema exited %d, want %d naming version 9999:\n%s", code, cli.ExitUsage, r.stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("serve on a newer schema is still running:\n%s", r.stderr.String())
	}
	code, out, e := runCLI(t, "migrate", "--data-dir", dir)
	if code == 0 || !strings.Contains(e, "newer") {
		t.Errorf("migrate on a newer schema = %d %q %q, want a refusal", code, out, e)
	}
	code, out, e = runCLI(t, "migrate", "status", "--data-dir", dir)
	if code == 0 || !strings.Contains(out, "0001_init.sql") || !strings.Contains(e, "9999") {
		t.Errorf("migrate status on a newer schema = %d %q %q, want the list and a refusal naming 9999", code, out, e)
	}
	code, out, e = runCLI(t, "org", "list", "--data-dir", dir)
	if code == 0 || !strings.Contains(e, "newer") || strings.Contains(e, "run sts migrate") {
		t.Errorf("org list (direct) on a newer schema = %d %q %q, want a refusal", code, out, e)
	}

	other := t.TempDir()
	r = serve(t, "--data-dir", other)
	checkServing(t, r)
	r.stop(t)
	db := filepath.Join(other, "sts.db")
	before, err := os.ReadFile(db)
	if err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(t.TempDir(), "sts.yaml")
	if err := os.WriteFile(cfg, []byte("previous_master_key_files: ["+filepath.Join(dir, "master.key")+"]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, e = runCLI(t, "restore", backup, "--data-dir", other, "--config", cfg)
	if code == 0 || !strings.Contains(e, "9999") || strings.Contains(e, "restored ") {
		t.Fatalf("restore of a newer release's backup = %d %q %q, want a refusal before the copy", code, out, e)
	}
	if m, _ := filepath.Glob(db + ".*"); len(m) != 0 {
		t.Fatalf("a refused restore left files beside the database: %v", m)
	}
	if after, err := os.ReadFile(db); err != nil || !slices.Equal(before, after) {
		t.Fatalf("a refused restore changed the database (%v)", err)
	}
}

// TestRestoreRefusesPepperUnderUnknownKey (docs/security.md F-84): a
// deployment that moved to a new master key (the old one in
// previous_master_key_files) and rotated its signing keys since, but never
// ran sts keys rotate-master, has its signing keys under the new key and
// its digest pepper under the old one. Restoring its backup on a host
// configured with the new key alone passed the signing-key check, moved
// the database and left a server that exits 1 on start (pepper: unknown
// master key). It is refused before anything moves, naming the key, and
// the current database still serves.
func TestRestoreRefusesPepperUnderUnknownKey(t *testing.T) {
	t.Parallel()
	a, b := t.TempDir(), t.TempDir()
	r := serve(t, "--data-dir", a)
	checkServing(t, r)
	r.stop(t)
	newKey := filepath.Join(t.TempDir(), "new.key")
	if code, out, e := runCLI(t, "keys", "generate-master", "--out", newKey); code != 0 {
		t.Fatalf("generate-master = %d %q %q", code, out, e)
	}
	writeConfig := func(data, extra string) string {
		f := filepath.Join(t.TempDir(), "sts.yaml")
		body := "storage: {path: " + filepath.Join(data, "sts.db") + "}\nmaster_key_file: " + newKey + "\n" + extra
		if err := os.WriteFile(f, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return f
	}
	both := writeConfig(a, "previous_master_key_files: ["+filepath.Join(a, "master.key")+"]\n")
	for range 2 {
		if code, out, e := runCLI(t, "keys", "rotate", "--force", "--config", both); code != 0 {
			t.Fatalf("keys rotate = %d %q %q", code, out, e)
		}
	}
	backup := filepath.Join(t.TempDir(), "sts-a.db")
	if code, out, e := runCLI(t, "backup", backup, "--config", both); code != 0 {
		t.Fatalf("backup = %d %q %q", code, out, e)
	}
	newOnly := writeConfig(b, "")
	r = serve(t, "--config", newOnly)
	checkServing(t, r)
	r.stop(t)
	before, err := os.ReadFile(filepath.Join(b, "sts.db"))
	if err != nil {
		t.Fatal(err)
	}

	code, _, e := runCLI(t, "restore", backup, "--config", newOnly)
	if code == 0 || strings.Contains(e, "restored ") {
		c, se := serveBounded(t, "--config", newOnly, "--listen", "127.0.0.1:0")
		t.Fatalf("restore of a backup whose pepper the configured key does not open went ahead (exit %d, %q); serve afterwards = %d %q", code, e, c, se)
	}
	if !strings.Contains(e, "pepper") || !strings.Contains(e, "nothing was changed") {
		t.Errorf("restore refused with %q; want it to name the pepper's master key and say nothing was changed", e)
	}
	if after, err := os.ReadFile(filepath.Join(b, "sts.db")); err != nil || !slices.Equal(before, after) {
		t.Errorf("the current database changed under a refused restore (%v)", err)
	}
	if m, _ := filepath.Glob(filepath.Join(b, "sts.db.*")); len(m) != 0 {
		t.Errorf("a refused restore left %v", m)
	}
	r = serve(t, "--config", newOnly)
	checkServing(t, r)
	r.stop(t)
}

// TestBackupRefusesNewerSchema (docs/security.md F-85): sts backup
// appends its instance.backup event to the database; on a schema a newer
// release migrated, that is an older binary writing to it. It refuses and
// writes nothing, neither the copy nor the event; the newer release takes
// the backup.
func TestBackupRefusesNewerSchema(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	r := serve(t, "--data-dir", dir)
	checkServing(t, r)
	r.stop(t)
	waitSQLiteClosed(t, dir) // serve may return before its store closes (F-41)
	db := filepath.Join(dir, "sts.db")
	markSchemaNewer(t, db)
	before := len(backupEvents(t, db))
	out := filepath.Join(t.TempDir(), "b.db")
	code, _, e := runCLI(t, "backup", out, "--data-dir", dir)
	if code == 0 || !strings.Contains(e, "9999") {
		t.Errorf("backup of a newer release's schema = %d %q; want a refusal naming its version", code, e)
	}
	if n := len(backupEvents(t, db)); n != before {
		t.Errorf("instance.backup events in the database %d -> %d; want none written", before, n)
	}
	if _, err := os.Stat(out); err == nil {
		t.Errorf("backup refused but %s was written", out)
	}
}

// TestRestoreOverALeftoverCopySaysWhatItIs: a restore cut short (a crash,
// a full disk) while copying the backup leaves <database>.restoring; the
// next restore failed with a bare "file exists". It now names the file,
// says what it is and what to do, and changes nothing: the file may be a
// restore running now, so it is not removed.
func TestRestoreOverALeftoverCopySaysWhatItIs(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	db := filepath.Join(dir, "sts.db")
	migrateSeeded(t, dir)
	mustCLI(t, "keys", "generate-master", "--out", filepath.Join(dir, "master.key"))
	backup := filepath.Join(t.TempDir(), "sts-backup.db")
	mustCLI(t, "backup", backup, "--data-dir", dir)
	leftover := db + ".restoring"
	if err := os.WriteFile(leftover, []byte("half a copy"), 0o600); err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(db)
	if err != nil {
		t.Fatal(err)
	}
	e := mustFail(t, "restore", backup, "--data-dir", dir)
	for _, want := range []string{leftover, "did not finish", "another sts restore", "delete it"} {
		if !strings.Contains(e, want) {
			t.Errorf("restore over a leftover copy: %q lacks %q", e, want)
		}
	}
	if after, err := os.ReadFile(db); err != nil || string(after) != string(before) {
		t.Errorf("restore over a leftover copy changed the database (%v)", err)
	}
	if b, err := os.ReadFile(leftover); err != nil || string(b) != "half a copy" {
		t.Errorf("restore over a leftover copy touched it: %q, %v", b, err)
	}
	if m, _ := filepath.Glob(db + ".pre-restore-*"); len(m) != 0 {
		t.Errorf("restore over a leftover copy moved the database aside: %v", m)
	}
	// Deleted as the message says, the restore goes through.
	if err := os.Remove(leftover); err != nil {
		t.Fatal(err)
	}
	mustCLI(t, "restore", backup, "--data-dir", dir)
}
