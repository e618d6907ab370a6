package clients_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/opensts/sts/internal/clientauth"
	"github.com/opensts/sts/internal/clients"
	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/secret"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/storage/sqlstore"
	"github.com/opensts/sts/internal/sts"
	"github.com/opensts/sts/internal/ststest/pgtest"
	"github.com/opensts/sts/internal/ststest/sqlitetest"
)

var pepper = []byte(strings.Repeat("k", 32))

var caller = clients.Caller{Actor: "test"}

// auditFails makes AppendAudit fail, to check the secret is never
// disclosed without its audit event (docs/security.md D-08).
type auditFails struct {
	storage.Store
	fail bool
}

func (a *auditFails) AppendAudit(ctx context.Context, ev ...storage.AuditEvent) error {
	if a.fail {
		return errors.New("audit sink down")
	}
	return a.Store.AppendAudit(ctx, ev...)
}

// WithTx fails the unit of work's audit writes too.
func (a *auditFails) WithTx(ctx context.Context, fn func(storage.Tx) error) error {
	return a.Store.WithTx(ctx, func(tx storage.Tx) error {
		if a.fail {
			return fn(failingTx{tx})
		}
		return fn(tx)
	})
}

type failingTx struct{ storage.Tx }

func (failingTx) AppendAudit(context.Context, ...storage.AuditEvent) error {
	return errors.New("audit sink down")
}

// fixture is a migrated store with an organization, an enabled service
// account, a disabled one, a user and a service account of another
// organization.
type fixture struct {
	store                       *auditFails
	svc                         *clients.Service
	org, other                  storage.Organization
	sa, disabledSA, user, alien storage.Principal
}

// backends runs fn on SQLite and on PostgreSQL (skipped without
// STS_TEST_POSTGRES_DSN outside CI).
func backends(t *testing.T, fn func(t *testing.T, f *fixture)) {
	open := map[string]func(t *testing.T) sqlstore.Config{
		"sqlite": func(t *testing.T) sqlstore.Config {
			path := filepath.Join(t.TempDir(), "sts.db")
			sqlitetest.WriteMigrated(t, path)
			return sqlstore.Config{Driver: sqlstore.DriverSQLite, DSN: path}
		},
		"postgres": func(t *testing.T) sqlstore.Config {
			return sqlstore.Config{Driver: sqlstore.DriverPostgres, DSN: pgtest.DSN(t)}
		},
	}
	for _, name := range []string{"sqlite", "postgres"} {
		t.Run(name, func(t *testing.T) {
			st, err := sqlstore.Open(t.Context(), open[name](t))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			if err := st.Migrate(t.Context()); err != nil {
				t.Fatal(err)
			}
			fn(t, newFixture(t, st))
		})
	}
}

func newFixture(t *testing.T, st storage.Store) *fixture {
	t.Helper()
	now := storage.Now(time.Now())
	f := &fixture{store: &auditFails{Store: st}}
	f.org = storage.Organization{ID: storage.NewID(), Name: "acme", Tier: "free", CreatedAt: now, UpdatedAt: now}
	f.other = storage.Organization{ID: storage.NewID(), Name: "beta", Tier: "free", CreatedAt: now, UpdatedAt: now}
	p := func(org string, kind storage.PrincipalKind, name string, disabled bool) storage.Principal {
		return storage.Principal{ID: storage.NewID(), OrgID: org, Kind: kind, Name: name, Disabled: disabled, CreatedAt: now, UpdatedAt: now}
	}
	f.sa = p(f.org.ID, storage.PrincipalServiceAccount, "ci", false)
	f.disabledSA = p(f.org.ID, storage.PrincipalServiceAccount, "old-ci", true)
	f.user = p(f.org.ID, storage.PrincipalUser, "ada", false)
	f.alien = p(f.other.ID, storage.PrincipalServiceAccount, "theirs", false)
	for _, o := range []storage.Organization{f.org, f.other} {
		if err := st.CreateOrganization(t.Context(), o); err != nil {
			t.Fatal(err)
		}
	}
	for _, pr := range []storage.Principal{f.sa, f.disabledSA, f.user, f.alien} {
		if err := st.CreatePrincipal(t.Context(), pr); err != nil {
			t.Fatal(err)
		}
	}
	svc, err := clients.NewService(f.store, pepper)
	if err != nil {
		t.Fatal(err)
	}
	f.svc = svc
	return f
}

// count is the number of clients stored, read straight from storage.
func (f *fixture) count(t *testing.T) int {
	t.Helper()
	l, err := f.store.ListClients(t.Context(), "")
	if err != nil {
		t.Fatal(err)
	}
	return len(l)
}

// authenticates reports whether client id with sec passes the token
// endpoint's client authentication (clientauth, client_secret_basic).
func (f *fixture) authenticates(t *testing.T, id, sec string) bool {
	t.Helper()
	a := &clientauth.Authenticator{Store: f.store, Pepper: pepper}
	r := httptest.NewRequest("POST", "/oauth2/token", nil)
	r.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(sec))
	res, err := a.Authenticate(t.Context(), r, url.Values{}, clientauth.Required)
	return err == nil && res != nil && res.Client.ID == id
}

func jwks(t *testing.T) []byte {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &k.PublicKey, KeyID: "k1", Algorithm: "ES256", Use: "sig"}}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (f *fixture) valid() clients.CreateInput {
	return clients.CreateInput{OrgID: f.org.ID, PrincipalID: f.sa.ID, Name: "ci", GrantTypes: []string{oauth2.GrantTypeClientCredentials},
		Scopes: []string{"read"}, Audiences: []string{"https://api.example"}, Pools: []string{"github-actions"}}
}

func wantErr(t *testing.T, what string, err error, code sts.Code, msg string) {
	t.Helper()
	if sts.ErrorCode(err) != code || !strings.Contains(sts.ErrorMessage(err), msg) {
		t.Errorf("%s: err = %v (code %q), want %s containing %q", what, err, sts.ErrorCode(err), code, msg)
	}
}

// TestCreateAndRotate: the secret works at client authentication, is
// stored only as its digest, and rotation kills the old one at once.
func TestCreateAndRotate(t *testing.T) {
	backends(t, func(t *testing.T, f *fixture) {
		in := f.valid()
		in.Scopes = []string{"read", "write", "read"}
		c, sec, err := f.svc.Create(t.Context(), caller, in)
		if err != nil {
			t.Fatal(err)
		}
		if secret.PrefixClientSecret.Parse(sec) != nil || c.AuthMethod != oauth2.AuthMethodClientSecretBasic {
			t.Fatalf("Create = %+v, secret well-formed: %v", c, secret.PrefixClientSecret.Parse(sec))
		}
		stored, err := f.store.GetClient(t.Context(), c.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !secret.Equal(stored.SecretDigest, secret.Digest(pepper, sec)) || strings.Join(stored.Scopes, " ") != "read write" {
			t.Errorf("stored = %+v, want the digest of the secret and deduplicated scopes", stored)
		}
		if !f.authenticates(t, c.ID, sec) {
			t.Fatal("new secret does not authenticate")
		}
		_, sec2, err := f.svc.RotateSecret(t.Context(), caller, c.ID)
		if err != nil || sec2 == sec {
			t.Fatalf("RotateSecret = %v", err)
		}
		if f.authenticates(t, c.ID, sec) || !f.authenticates(t, c.ID, sec2) {
			t.Error("after rotation the old secret must fail and the new one work")
		}
		ev, err := f.store.ListAudit(t.Context(), storage.AuditFilter{OrgID: f.org.ID})
		if err != nil || len(ev) != 2 || ev[0].Action != clients.ActionRotateSecret || ev[1].Action != clients.ActionCreate || ev[1].Target != "client:"+c.ID {
			t.Errorf("audit = %+v, %v", ev, err)
		}
		for _, e := range ev {
			if strings.Contains(e.Detail, sec) || strings.Contains(e.Detail, sec2) {
				t.Error("a secret reached the audit trail")
			}
		}

		pk := f.valid()
		pk.AuthMethod, pk.Keys = oauth2.AuthMethodPrivateKeyJWT, clients.Keys{JWKS: jwks(t)}
		jc, jsec, err := f.svc.Create(t.Context(), caller, pk)
		if err != nil || jsec != "" || len(jc.SecretDigest) != 0 {
			t.Fatalf("Create private_key_jwt = %+v, secret %q, %v", jc, jsec, err)
		}
		_, _, err = f.svc.RotateSecret(t.Context(), caller, jc.ID)
		wantErr(t, "rotate private_key_jwt", err, sts.FailedPrecondition, "does not use a secret")
		up, err := f.svc.Update(t.Context(), caller, jc.ID, clients.UpdateInput{Keys: &clients.Keys{JWKSURI: "https://keys.example/jwks.json"}})
		if err != nil || len(up.JWKS) != 0 || up.JWKSURI != "https://keys.example/jwks.json" {
			t.Errorf("Update keys = %+v, %v; want the URI to replace the JWKS", up, err)
		}
	})
}

// TestBadInputChangesNothing: every invalid create is refused with the
// field named and writes nothing.
func TestBadInputChangesNothing(t *testing.T) {
	backends(t, func(t *testing.T, f *fixture) {
		tests := []struct {
			name   string
			mutate func(in *clients.CreateInput)
			code   sts.Code
			msg    string
		}{
			{"no organization", func(in *clients.CreateInput) { in.OrgID = "" }, sts.Invalid, "organization_id"},
			{"unknown organization", func(in *clients.CreateInput) { in.OrgID = storage.NewID() }, sts.NotFound, "organization not found"},
			{"no principal", func(in *clients.CreateInput) { in.PrincipalID = "" }, sts.Invalid, "principal_id"},
			{"unknown principal", func(in *clients.CreateInput) { in.PrincipalID = storage.NewID() }, sts.NotFound, "principal not found"},
			{"principal of another organization", func(in *clients.CreateInput) { in.PrincipalID = f.alien.ID }, sts.NotFound, "principal not found"},
			{"user principal", func(in *clients.CreateInput) { in.PrincipalID = f.user.ID }, sts.Invalid, "SERVICE_ACCOUNT"},
			{"disabled principal", func(in *clients.CreateInput) { in.PrincipalID = f.disabledSA.ID }, sts.FailedPrecondition, "disabled"},
			{"unknown auth method", func(in *clients.CreateInput) { in.AuthMethod = "none" }, sts.Invalid, "auth_method"},
			{"no grant types", func(in *clients.CreateInput) { in.GrantTypes = nil }, sts.Invalid, "grant_types"},
			{"unknown grant type", func(in *clients.CreateInput) { in.GrantTypes = []string{"password"} }, sts.Invalid, "grant_types[0]"},
			{"scope with a space", func(in *clients.CreateInput) { in.Scopes = []string{"read", "a b"} }, sts.Invalid, "scopes[1]"},
			{"scope with a quote", func(in *clients.CreateInput) { in.Scopes = []string{`a"b`} }, sts.Invalid, "scopes[0]"},
			{"empty scope", func(in *clients.CreateInput) { in.Scopes = []string{""} }, sts.Invalid, "scopes[0]"},
			{"long scope", func(in *clients.CreateInput) { in.Scopes = []string{strings.Repeat("s", 129)} }, sts.Invalid, "scopes[0]"},
			{"too many scopes", func(in *clients.CreateInput) { in.Scopes = strings.Fields(strings.Repeat("s ", 101)) }, sts.Invalid, "scopes: at most 100"},
			{"audience with a newline", func(in *clients.CreateInput) { in.Audiences = []string{"https://a\n"} }, sts.Invalid, "audiences[0]"},
			{"long audience", func(in *clients.CreateInput) { in.Audiences = []string{strings.Repeat("a", 513)} }, sts.Invalid, "audiences[0]"},
			{"bad pool", func(in *clients.CreateInput) { in.Pools = []string{"pools/x"} }, sts.Invalid, "pools[0]"},
			{"long name", func(in *clients.CreateInput) { in.Name = strings.Repeat("n", 201) }, sts.Invalid, "name"},
			{"control character in name", func(in *clients.CreateInput) { in.Name = "a\x00b" }, sts.Invalid, "name"},
			{"bidi control in name", func(in *clients.CreateInput) { in.Name = "Dash\u202eboard" }, sts.Invalid, "U+202E"},
			{"secret client with a jwks", func(in *clients.CreateInput) { in.Keys.JWKS = jwks(t) }, sts.Invalid, "jwks"},
			{"private_key_jwt without keys", func(in *clients.CreateInput) { in.AuthMethod = oauth2.AuthMethodPrivateKeyJWT }, sts.Invalid, "exactly one of jwks and jwks_uri"},
			{"private_key_jwt with both", func(in *clients.CreateInput) {
				in.AuthMethod, in.Keys = oauth2.AuthMethodPrivateKeyJWT, clients.Keys{JWKS: jwks(t), JWKSURI: "https://k.example/jwks"}
			}, sts.Invalid, "exactly one of jwks and jwks_uri"},
			{"private_key_jwt with a bad jwks", func(in *clients.CreateInput) {
				in.AuthMethod, in.Keys = oauth2.AuthMethodPrivateKeyJWT, clients.Keys{JWKS: []byte(`{"keys":[]}`)}
			}, sts.Invalid, "jwks:"},
			{"private_key_jwt with a private key", func(in *clients.CreateInput) {
				k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
				b, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: k, KeyID: "p"}}})
				in.AuthMethod, in.Keys = oauth2.AuthMethodPrivateKeyJWT, clients.Keys{JWKS: b}
			}, sts.Invalid, "jwks:"},
			{"private_key_jwt with an http jwks_uri", func(in *clients.CreateInput) {
				in.AuthMethod, in.Keys = oauth2.AuthMethodPrivateKeyJWT, clients.Keys{JWKSURI: "http://keys.example/jwks"}
			}, sts.Invalid, "jwks_uri"},
			{"private_key_jwt with a relative jwks_uri", func(in *clients.CreateInput) {
				in.AuthMethod, in.Keys = oauth2.AuthMethodPrivateKeyJWT, clients.Keys{JWKSURI: "/jwks"}
			}, sts.Invalid, "jwks_uri"},
		}
		for _, tc := range tests {
			in := f.valid()
			tc.mutate(&in)
			before := f.count(t)
			c, sec, err := f.svc.Create(t.Context(), caller, in)
			wantErr(t, tc.name, err, tc.code, tc.msg)
			if sec != "" || c.ID != "" || f.count(t) != before {
				t.Errorf("%s: a client was written or a secret returned", tc.name)
			}
		}
		// Loopback http is accepted for development.
		in := f.valid()
		in.AuthMethod, in.Keys = oauth2.AuthMethodPrivateKeyJWT, clients.Keys{JWKSURI: "http://127.0.0.1:8443/jwks"}
		if _, _, err := f.svc.Create(t.Context(), caller, in); err != nil {
			t.Errorf("loopback http jwks_uri: %v", err)
		}
	})
}

// TestUpdate: fields set change together, unset ones stay, bad input
// changes nothing.
func TestUpdate(t *testing.T) {
	backends(t, func(t *testing.T, f *fixture) {
		c, sec, err := f.svc.Create(t.Context(), caller, f.valid())
		if err != nil {
			t.Fatal(err)
		}
		disabled, name := true, "renamed"
		none := []string{}
		got, err := f.svc.Update(t.Context(), caller, c.ID, clients.UpdateInput{Disabled: &disabled, Name: &name, Scopes: &none})
		if err != nil || !got.Disabled || got.Name != name || len(got.Scopes) != 0 || strings.Join(got.Audiences, ",") != "https://api.example" {
			t.Fatalf("Update = %+v, %v", got, err)
		}
		if f.authenticates(t, c.ID, sec) {
			t.Error("a disabled client authenticates")
		}
		enabled := false
		if _, err := f.svc.Update(t.Context(), caller, c.ID, clients.UpdateInput{Disabled: &enabled}); err != nil || !f.authenticates(t, c.ID, sec) {
			t.Errorf("re-enable: %v", err)
		}
		before, _ := f.store.GetClient(t.Context(), c.ID)
		bad := []string{"ok", "not ok"}
		_, err = f.svc.Update(t.Context(), caller, c.ID, clients.UpdateInput{Name: &name, Scopes: &bad})
		wantErr(t, "bad scope", err, sts.Invalid, "scopes[1]")
		_, err = f.svc.Update(t.Context(), caller, c.ID, clients.UpdateInput{GrantTypes: &none})
		wantErr(t, "no grant types", err, sts.Invalid, "grant_types")
		_, err = f.svc.Update(t.Context(), caller, c.ID, clients.UpdateInput{Keys: &clients.Keys{JWKSURI: "https://k.example/jwks"}})
		wantErr(t, "keys on a secret client", err, sts.FailedPrecondition, "private_key_jwt")
		_, err = f.svc.Update(t.Context(), caller, c.ID, clients.UpdateInput{})
		wantErr(t, "nothing set", err, sts.Invalid, "nothing to update")
		_, err = f.svc.Update(t.Context(), caller, storage.NewID(), clients.UpdateInput{Name: &name})
		wantErr(t, "unknown client", err, sts.NotFound, "client not found")
		after, _ := f.store.GetClient(t.Context(), c.ID)
		if after.UpdatedAt != before.UpdatedAt || after.Name != before.Name || len(after.Scopes) != 0 {
			t.Errorf("a refused update changed the client: %+v → %+v", before, after)
		}

		if err := f.svc.Delete(t.Context(), caller, c.ID); err != nil {
			t.Fatal(err)
		}
		if f.authenticates(t, c.ID, sec) {
			t.Error("a deleted client authenticates")
		}
		wantErr(t, "delete twice", f.svc.Delete(t.Context(), caller, c.ID), sts.NotFound, "client not found")
		_, err = f.svc.Get(t.Context(), "")
		wantErr(t, "get without id", err, sts.Invalid, "client_id")
		_, err = f.svc.List(t.Context(), storage.NewID())
		wantErr(t, "list an unknown organization", err, sts.NotFound, "organization not found")
	})
}

// TestAuditFailureDisclosesNothing: with the audit sink down, create
// leaves no row and returns no secret; rotate returns no secret and keeps
// the old one; update and delete change nothing.
func TestAuditFailureDisclosesNothing(t *testing.T) {
	backends(t, func(t *testing.T, f *fixture) {
		c, sec, err := f.svc.Create(t.Context(), caller, f.valid())
		if err != nil {
			t.Fatal(err)
		}
		f.store.fail = true
		before := f.count(t)
		_, s2, err := f.svc.Create(t.Context(), caller, f.valid())
		wantErr(t, "create", err, sts.Unavailable, "storage unavailable")
		if s2 != "" || f.count(t) != before {
			t.Error("create with the audit sink down disclosed a secret or kept the row")
		}
		_, s3, err := f.svc.RotateSecret(t.Context(), caller, c.ID)
		wantErr(t, "rotate", err, sts.Unavailable, "storage unavailable")
		if s3 != "" || !f.authenticates(t, c.ID, sec) {
			t.Error("rotate with the audit sink down disclosed a secret or stopped the old one (it must change nothing)")
		}
		// An update or a delete without its event changes nothing either
		// (docs/design.md#audit).
		name := "renamed"
		_, err = f.svc.Update(t.Context(), caller, c.ID, clients.UpdateInput{Name: &name})
		wantErr(t, "update", err, sts.Unavailable, "storage unavailable")
		err = f.svc.Delete(t.Context(), caller, c.ID)
		wantErr(t, "delete", err, sts.Unavailable, "storage unavailable")
		got, err := f.store.Store.GetClient(t.Context(), c.ID)
		if err != nil || got.Name != c.Name {
			t.Errorf("client after a failed update and delete: %+v, %v; want it unchanged", got, err)
		}
	})
}

// TestNoPepperYet: before the pepper arrives (serve on a database that is
// not up yet) secret operations are unavailable, not broken.
func TestNoPepperYet(t *testing.T) {
	backends(t, func(t *testing.T, f *fixture) {
		svc, err := clients.NewService(f.store, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, _, err = svc.Create(t.Context(), caller, f.valid())
		wantErr(t, "create", err, sts.Unavailable, "starting")
		if err := svc.SetPepper(pepper); err != nil {
			t.Fatal(err)
		}
		if _, _, err := svc.Create(t.Context(), caller, f.valid()); err != nil {
			t.Errorf("after SetPepper: %v", err)
		}
		if err := svc.SetPepper([]byte("short")); err == nil {
			t.Error("a short pepper was accepted")
		}
	})
}

// crashAfterCreate fails the audit write and the clean-up delete, as a
// crash between the two would.
type crashAfterCreate struct{ *auditFails }

func (crashAfterCreate) DeleteClient(context.Context, string) error {
	return errors.New("process died here")
}

// TestCreateIsAtomicWithItsEvent: a client is never stored without its
// audit event, even when nothing runs after the failure to clean up
// (docs/design.md#audit).
func TestCreateIsAtomicWithItsEvent(t *testing.T) {
	backends(t, func(t *testing.T, f *fixture) {
		svc, err := clients.NewService(crashAfterCreate{f.store}, pepper)
		if err != nil {
			t.Fatal(err)
		}
		f.store.fail = true
		before := f.count(t)
		if _, sec, err := svc.Create(t.Context(), caller, f.valid()); err == nil || sec != "" {
			t.Fatalf("Create with the audit write failing = %q, %v; want an error and no secret", sec, err)
		}
		if f.count(t) != before {
			t.Error("a client row was stored without its audit event")
		}
	})
}
