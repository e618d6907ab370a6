package api

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	gitpodv1 "github.com/opensts/sts/internal/gen/gitpod/v1"
	stsv1 "github.com/opensts/sts/internal/gen/sts/v1"
	"github.com/opensts/sts/internal/gen/sts/v1/stsv1connect"
	"github.com/opensts/sts/internal/signer"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/tokens"
)

// accessToken mints an access token of ada (scope "*") with the node's
// active key: what a holder of that key's private half can forge.
func (e *keyEnv) accessToken(t *testing.T) string {
	t.Helper()
	now := time.Now()
	tok, _, err := e.h.Issuer.MintAccessToken(t.Context(), tokens.AccessClaims{Subject: e.user.ID, Audience: tokens.Audience{testIssuer},
		IssuedAt: tokens.NewNumericDate(now), Expiry: tokens.NewNumericDate(now.Add(time.Hour)),
		ClientID: "revoke-test", Scope: "*", OrgID: e.org.ID, Principal: string(storage.PrincipalUser)})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestKeyServiceRevokeSigningKey (docs/security.md T-77): an instance
// administrator revokes the active key over Connect, Connect JSON, gRPC
// and gRPC-Web. Before the call returns, the node signs with the
// successor, its JWKS lacks the key, an access token the key signed no
// longer authenticates (unauthenticated, as every bad credential) and an
// ID token it signed no longer verifies against the JWKS; the response
// carries no key material, and the revocation is in the audit trail. An
// unknown kid is not_found, a missing or overlong one invalid_argument.
func TestKeyServiceRevokeSigningKey(t *testing.T) {
	t.Parallel()
	for name, open := range map[string]func(testing.TB) storage.Store{"sqlite": newSQLiteStore, "postgres": newPostgresStore} {
		t.Run(name, func(t *testing.T) {
			e := newKeyEnvOn(t, open(t))
			ids := e.clients(e.srv.URL).identity
			var revoked []string
			for name, c := range e.keyProtocols() {
				t.Run(name, func(t *testing.T) {
					bad := e.keys.ActiveKeyID()
					access, idTok := e.accessToken(t), e.idToken(t)
					if _, err := ids.GetAuthenticatedIdentity(as(access), &gitpodv1.GetAuthenticatedIdentityRequest{}); err != nil {
						t.Fatalf("test setup: the access token does not authenticate: %v", err)
					}
					var next string
					for _, k := range e.storedKeys(t) {
						if k.State == storage.KeyNext {
							next = k.ID
						}
					}

					r, err := c.keys.RevokeSigningKey(as(e.admin), &stsv1.RevokeSigningKeyRequest{Kid: bad})
					if err != nil {
						t.Fatalf("RevokeSigningKey(%s): %v", bad, err)
					}
					revoked = append(revoked, bad)
					if r.GetRevokedKid() != bad || r.GetState() != stsv1.SigningKeyState_SIGNING_KEY_STATE_ACTIVE ||
						r.GetActivatedKid() != next || r.GetNextKid() == "" || r.GetNextKid() == next {
						t.Fatalf("RevokeSigningKey = %v, want %s revoked, %s activated and a new next key", r, bad, next)
					}
					noPrivate(t, "RevokeSigningKeyResponse", r, e.privateNeedles(t))
					for _, k := range r.GetKeys() {
						if k.GetKid() == bad {
							t.Errorf("the key set after revocation still lists %s as %s", bad, k.GetState())
						}
					}
					if e.keys.ActiveKeyID() != next {
						t.Errorf("node's active key = %s, want %s at once", e.keys.ActiveKeyID(), next)
					}
					jwks, err := e.keys.JWKS()
					if err != nil {
						t.Fatal(err)
					}
					if strings.Contains(string(jwks), `"`+bad+`"`) {
						t.Errorf("JWKS still publishes %s", bad)
					}
					if verifiesWith(t, idTok, jwks) {
						t.Error("an ID token of the revoked key still verifies against the JWKS")
					}
					for try := range 2 {
						_, err := ids.GetAuthenticatedIdentity(as(access), &gitpodv1.GetAuthenticatedIdentityRequest{})
						wantCode(t, fmt.Sprintf("an access token of the revoked key (try %d)", try), err, connect.CodeUnauthenticated)
					}
					if _, err := ids.GetAuthenticatedIdentity(as(e.accessToken(t)), &gitpodv1.GetAuthenticatedIdentityRequest{}); err != nil {
						t.Errorf("an access token of the successor: %v", err)
					}
				})
			}

			c := e.keyProtocols()["connect"]
			_, err := c.keys.RevokeSigningKey(as(e.admin), &stsv1.RevokeSigningKeyRequest{Kid: revoked[0]})
			wantCode(t, "RevokeSigningKey of a revoked key", err, connect.CodeNotFound)
			_, err = c.keys.RevokeSigningKey(as(e.admin), &stsv1.RevokeSigningKeyRequest{})
			wantCode(t, "RevokeSigningKey without a kid", err, connect.CodeInvalidArgument)
			_, err = c.keys.RevokeSigningKey(as(e.admin), &stsv1.RevokeSigningKeyRequest{Kid: strings.Repeat("k", 300)})
			wantCode(t, "RevokeSigningKey with a 300-byte kid", err, connect.CodeInvalidArgument)

			ev, err := c.audit.ListAuditEvents(as(e.admin), &stsv1.ListAuditEventsRequest{Action: signer.ActionRevoke})
			if err != nil || len(ev.GetEvents()) != len(revoked) {
				t.Fatalf("ListAuditEvents(signing_key.revoke) = %v, %v; want %d", ev, err, len(revoked))
			}
			for _, got := range ev.GetEvents() {
				if kid, ok := strings.CutPrefix(got.GetTarget(), "signing_key:"); !ok || !slices.Contains(revoked, kid) ||
					!strings.HasPrefix(got.GetActor(), "principal:") || !strings.Contains(got.GetDetail(), "state=active") {
					t.Errorf("revoke audit event = %v", got)
				}
			}
		})
	}
}

// TestKeyServiceRevokeAuthz: only an instance administrator revokes a
// key. Without a credential it is unauthenticated; an organization
// administrator, and a full-access credential without sts:admin, get
// permission_denied; none of them changes the key set. A node whose master
// key is wrong refuses to revoke the active key (nothing could sign in
// its place): failed_precondition, nothing changed.
func TestKeyServiceRevokeAuthz(t *testing.T) {
	t.Parallel()
	e := newKeyEnvOn(t, newSQLiteStore(t))
	c := e.keyProtocols()["connect"]
	active := e.keys.ActiveKeyID()
	stored := e.storedKeys(t)
	orgAdmin := e.orgAdmin(t, e.org.ID, "acme-admin")
	for _, tc := range []struct {
		name, token string
		want        connect.Code
	}{
		{"no credential", "", connect.CodeUnauthenticated},
		{"organization administrator", orgAdmin, connect.CodePermissionDenied},
		{"full access without sts:admin", e.secret, connect.CodePermissionDenied},
	} {
		_, err := c.keys.RevokeSigningKey(as(tc.token), &stsv1.RevokeSigningKeyRequest{Kid: active})
		wantCode(t, "RevokeSigningKey as "+tc.name, err, tc.want)
	}
	if diffKeys(stored, e.storedKeys(t)) || e.keys.ActiveKeyID() != active {
		t.Error("an unauthorized RevokeSigningKey changed the keys")
	}

	wrong := newManager(t, e.store, newKeyring(t))
	sealed := newEnvOn(t, e.store, func(h *Handler) { h.Keys, h.Audit = wrong, e.store })
	_, err := stsv1connect.NewKeyServiceClient(sealed.srv.Client(), sealed.srv.URL).
		RevokeSigningKey(as(sealed.admin), &stsv1.RevokeSigningKeyRequest{Kid: active})
	if connect.CodeOf(err) != connect.CodeFailedPrecondition || !strings.Contains(err.Error(), "sealed") {
		t.Errorf("RevokeSigningKey on a sealed node = %v, want failed_precondition naming sealed", err)
	}
	if diffKeys(stored, e.storedKeys(t)) {
		t.Error("a sealed node's refused revocation changed the keys")
	}
}
