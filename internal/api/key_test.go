package api

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"connectrpc.com/connect"
	jose "github.com/go-jose/go-jose/v4"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	gitpodv1 "github.com/opensts/sts/internal/gen/gitpod/v1"
	stsv1 "github.com/opensts/sts/internal/gen/sts/v1"
	"github.com/opensts/sts/internal/gen/sts/v1/stsv1connect"
	"github.com/opensts/sts/internal/pat"
	"github.com/opensts/sts/internal/seal"
	"github.com/opensts/sts/internal/signer"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/tokens"
)

// keyEnv is an env whose tokens are signed by a real rotating
// signer.Manager (the one KeyService drives), with its master key.
type keyEnv struct {
	*env
	keys    *signer.Manager
	keyring *seal.Keyring
}

func newKeyring(t testing.TB) *seal.Keyring {
	t.Helper()
	k := make([]byte, seal.KeySize)
	rand.Read(k)
	kr, err := seal.NewKeyring(k)
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

func newManager(t testing.TB, store storage.KeyStore, kr *seal.Keyring) *signer.Manager {
	t.Helper()
	m, err := signer.New(store, kr, signer.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	m.Logger = slog.New(slog.DiscardHandler)
	return m
}

func newKeyEnvOn(t testing.TB, store storage.Store) *keyEnv {
	t.Helper()
	kr := newKeyring(t)
	m := newManager(t, store, kr)
	if err := m.Init(context.Background()); err != nil {
		t.Fatalf("signer Init: %v", err)
	}
	e := newEnvOn(t, store, func(h *Handler) {
		h.Keys, h.Audit = m, store
		h.Issuer = &tokens.Issuer{Signer: m, IssuerURL: testIssuer}
		h.Verifier = &tokens.Verifier{Keys: m, Issuer: testIssuer, Revocations: tokens.StoreRevocations{Store: store}}
	})
	return &keyEnv{env: e, keys: m, keyring: kr}
}

// keyClients are generated KeyService and AuditService clients speaking
// one protocol.
type keyClients struct {
	keys  stsv1connect.KeyServiceClient
	audit stsv1connect.AuditServiceClient
}

// keyProtocols mirrors env.protocols for KeyService and AuditService.
func (e *env) keyProtocols() map[string]keyClients {
	mk := func(base string, opts ...connect.ClientOption) keyClients {
		c := e.srv.Client()
		return keyClients{stsv1connect.NewKeyServiceClient(c, base, opts...), stsv1connect.NewAuditServiceClient(c, base, opts...)}
	}
	return map[string]keyClients{
		"connect":          mk(e.srv.URL),
		"connect-json-api": mk(e.srv.URL+"/api", connect.WithProtoJSON()),
		"grpc":             mk(e.srv.URL, connect.WithGRPC()),
		"grpc-web-api":     mk(e.srv.URL+"/api", connect.WithGRPCWeb()),
	}
}

// storedKeys is the key set read straight from storage.
func (e *keyEnv) storedKeys(t *testing.T) []storage.SigningKey {
	t.Helper()
	rows, err := e.store.ListSigningKeys(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

// privateNeedles returns every encoding of the stored private material of
// the set a response must never contain: the sealed bytes, the opened
// PKCS#8 DER (the body of a PEM block) and the private scalar, raw, hex
// and base64 (standard and URL), plus a PEM header.
func (e *keyEnv) privateNeedles(t *testing.T) [][]byte {
	t.Helper()
	needles := [][]byte{[]byte("PRIVATE KEY")}
	add := func(b []byte) {
		needles = append(needles, b, []byte(hex.EncodeToString(b)),
			[]byte(base64.StdEncoding.EncodeToString(b)), []byte(base64.RawURLEncoding.EncodeToString(b)))
	}
	for _, r := range e.storedKeys(t) {
		if len(r.Sealed) == 0 {
			continue // retired: the private half is already dropped
		}
		add(r.Sealed)
		der, err := e.keyring.Open(r.Sealed, r.MasterKeyID, []byte("signing_key:"+r.ID))
		if err != nil {
			t.Fatalf("open stored key %s: %v", r.ID, err)
		}
		add(der)
		// A PEM block wraps the base64 of the DER at 64 characters.
		needles = append(needles, []byte(base64.StdEncoding.EncodeToString(der)[:64]))
		k, err := x509.ParsePKCS8PrivateKey(der)
		if err != nil {
			t.Fatal(err)
		}
		if ec, ok := k.(*ecdsa.PrivateKey); ok {
			d, err := ec.Bytes()
			if err != nil {
				t.Fatal(err)
			}
			add(d)
		}
	}
	return needles
}

// noPrivate fails if msg, in binary or JSON form, carries any needle.
func noPrivate(t *testing.T, what string, msg proto.Message, needles [][]byte) {
	t.Helper()
	bin, err := proto.Marshal(msg)
	if err != nil {
		t.Fatal(err)
	}
	js, err := protojson.Marshal(msg)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range needles {
		if strings.Contains(string(bin), string(n)) || strings.Contains(string(js), string(n)) {
			t.Errorf("%s carries private key material (%d bytes matched)", what, len(n))
		}
	}
}

// kidOf returns the kid of a compact JWS header.
func kidOf(t *testing.T, jws string) string {
	t.Helper()
	h, _, _ := strings.Cut(jws, ".")
	b, err := base64.RawURLEncoding.DecodeString(h)
	if err != nil {
		t.Fatal(err)
	}
	var hdr struct{ Kid string }
	if err := json.Unmarshal(b, &hdr); err != nil {
		t.Fatal(err)
	}
	return hdr.Kid
}

// verifiesWith checks jws against the key set document jwks.
func verifiesWith(t *testing.T, jws string, jwks []byte) bool {
	t.Helper()
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(jwks, &set); err != nil {
		t.Fatal(err)
	}
	sig, err := jose.ParseSigned(jws, []jose.SignatureAlgorithm{jose.ES256, jose.RS256, jose.EdDSA})
	if err != nil {
		t.Fatal(err)
	}
	keys := set.Key(kidOf(t, jws))
	return len(keys) == 1 && func() bool { _, err := sig.Verify(keys[0].Key); return err == nil }()
}

func kidsByState(list []*stsv1.SigningKey) map[stsv1.SigningKeyState][]string {
	out := map[stsv1.SigningKeyState][]string{}
	for _, k := range list {
		out[k.GetState()] = append(out[k.GetState()], k.GetKid())
	}
	return out
}

// idToken mints an ID token through the API (GetIDToken): signed by the
// node's active key.
func (e *keyEnv) idToken(t *testing.T) string {
	t.Helper()
	c := e.clients(e.srv.URL)
	r, err := c.identity.GetIDToken(as(e.secret), &gitpodv1.GetIDTokenRequest{Audience: []string{"https://rs.example"}})
	if err != nil {
		t.Fatalf("GetIDToken: %v", err)
	}
	return r.GetToken()
}

// TestKeyService runs both KeyService RPCs with generated clients over
// Connect, Connect JSON (under /api), gRPC and gRPC-Web, on SQLite and
// PostgreSQL. Listing never carries private or sealed key material. A
// rotation without force refuses a just-published next key and changes
// nothing; with force the next key signs at once on this node (the
// handler's own manager), the JWKS keeps the retired key so tokens it
// signed still verify, and the rotation is in the audit trail.
func TestKeyService(t *testing.T) {
	t.Parallel()
	for name, open := range map[string]func(testing.TB) storage.Store{"sqlite": newSQLiteStore, "postgres": newPostgresStore} {
		t.Run(name, func(t *testing.T) {
			e := newKeyEnvOn(t, open(t))
			for name, c := range e.keyProtocols() {
				t.Run(name, func(t *testing.T) { testKeyService(t, e, c) })
			}
		})
	}
}

func testKeyService(t *testing.T, e *keyEnv, c keyClients) {
	l, err := c.keys.ListSigningKeys(as(e.admin), &stsv1.ListSigningKeysRequest{})
	if err != nil {
		t.Fatalf("ListSigningKeys: %v", err)
	}
	noPrivate(t, "ListSigningKeys", l, e.privateNeedles(t))
	before := kidsByState(l.GetKeys())
	if len(before[stsv1.SigningKeyState_SIGNING_KEY_STATE_ACTIVE]) != 1 || len(before[stsv1.SigningKeyState_SIGNING_KEY_STATE_NEXT]) != 1 ||
		len(l.GetKeys()) != len(e.storedKeys(t)) {
		t.Fatalf("ListSigningKeys = %v, want the stored set with one active and one next key", l)
	}
	oldActive, oldNext := before[stsv1.SigningKeyState_SIGNING_KEY_STATE_ACTIVE][0], before[stsv1.SigningKeyState_SIGNING_KEY_STATE_NEXT][0]
	for _, k := range l.GetKeys() {
		if k.GetAlgorithm() != signer.ES256 || k.GetCreatedAt() == nil {
			t.Errorf("key %v lacks its algorithm or creation time", k)
		}
		switch k.GetState() {
		case stsv1.SigningKeyState_SIGNING_KEY_STATE_ACTIVE:
			if k.GetActivatedAt() == nil || k.GetRotatesAt() == nil || k.GetRetiredAt() != nil {
				t.Errorf("active key times = %v", k)
			}
		case stsv1.SigningKeyState_SIGNING_KEY_STATE_NEXT:
			if k.GetSignsFrom() == nil || k.GetActivatedAt() != nil {
				t.Errorf("next key times = %v", k)
			}
		case stsv1.SigningKeyState_SIGNING_KEY_STATE_RETIRED:
			if k.GetRetiredAt() == nil || k.GetDeleteAfter() == nil {
				t.Errorf("retired key times = %v", k)
			}
		default:
			t.Errorf("key %v has no state", k)
		}
	}
	oldToken := e.idToken(t)
	if kidOf(t, oldToken) != oldActive {
		t.Fatalf("token signed by %s, want the active key %s", kidOf(t, oldToken), oldActive)
	}

	// The next key was published just now: refused without force, and
	// nothing changes.
	stored := e.storedKeys(t)
	_, err = c.keys.RotateSigningKey(as(e.admin), &stsv1.RotateSigningKeyRequest{})
	if connect.CodeOf(err) != connect.CodeFailedPrecondition || !strings.Contains(err.Error(), "force") || !strings.Contains(err.Error(), oldNext) {
		t.Errorf("RotateSigningKey without force = %v, want failed_precondition naming %s and force", err, oldNext)
	}
	if diffKeys(stored, e.storedKeys(t)) {
		t.Error("a refused rotation changed the stored keys")
	}

	r, err := c.keys.RotateSigningKey(as(e.admin), &stsv1.RotateSigningKeyRequest{Force: true})
	if err != nil {
		t.Fatalf("RotateSigningKey force: %v", err)
	}
	if !r.GetRotated() || r.GetAlreadyRotated() || r.GetActivatedKid() != oldNext || r.GetRetiredKid() != oldActive ||
		r.GetNextKid() == "" || slices.Contains([]string{oldActive, oldNext}, r.GetNextKid()) {
		t.Fatalf("RotateSigningKey = %v, want %s activated, %s retired and a new next key", r, oldNext, oldActive)
	}
	noPrivate(t, "RotateSigningKeyResponse", r, e.privateNeedles(t))
	after := kidsByState(r.GetKeys())
	if !slices.Equal(after[stsv1.SigningKeyState_SIGNING_KEY_STATE_ACTIVE], []string{oldNext}) ||
		!slices.Equal(after[stsv1.SigningKeyState_SIGNING_KEY_STATE_NEXT], []string{r.GetNextKid()}) ||
		!slices.Contains(after[stsv1.SigningKeyState_SIGNING_KEY_STATE_RETIRED], oldActive) {
		t.Errorf("keys after rotation = %v", after)
	}
	// This node switched at once: new tokens carry the new kid, and the
	// node's JWKS publishes the retired, active and new next keys.
	if e.keys.ActiveKeyID() != oldNext {
		t.Errorf("manager's active key = %s, want %s at once", e.keys.ActiveKeyID(), oldNext)
	}
	newToken := e.idToken(t)
	if kidOf(t, newToken) != oldNext {
		t.Errorf("token after rotation signed by %s, want %s", kidOf(t, newToken), oldNext)
	}
	jwks, err := e.keys.JWKS()
	if err != nil {
		t.Fatal(err)
	}
	for _, kid := range []string{oldActive, oldNext, r.GetNextKid()} {
		if !strings.Contains(string(jwks), `"`+kid+`"`) {
			t.Errorf("JWKS lacks %s after rotation", kid)
		}
	}
	if !verifiesWith(t, oldToken, jwks) || !verifiesWith(t, newToken, jwks) {
		t.Error("a token signed before or after the rotation does not verify against the JWKS")
	}

	ev, err := c.audit.ListAuditEvents(as(e.admin), &stsv1.ListAuditEventsRequest{Action: signer.ActionRotate, PageSize: 1})
	if err != nil || len(ev.GetEvents()) != 1 {
		t.Fatalf("ListAuditEvents(signing_key.rotate) = %v, %v", ev, err)
	}
	if got := ev.GetEvents()[0]; got.GetTarget() != "signing_key:"+oldNext || !strings.HasPrefix(got.GetActor(), "principal:") ||
		!strings.Contains(got.GetDetail(), "force=true") || !strings.Contains(got.GetDetail(), "retired="+oldActive) {
		t.Errorf("rotation audit event = %v", got)
	}
}

// diffKeys reports whether two stored sets differ in any field.
func diffKeys(a, b []storage.SigningKey) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) != string(jb)
}

// TestKeyServiceRotatesFromStoredSet: when another replica (a second
// manager over the same storage) rotated after this node last loaded the
// set, an API rotation still rotates away from the key that signs now:
// it reloads first rather than reporting "already rotated" on a stale
// snapshot.
func TestKeyServiceRotatesFromStoredSet(t *testing.T) {
	t.Parallel()
	e := newKeyEnvOn(t, newSQLiteStore(t))
	other := newManager(t, e.store, e.keyring)
	if err := other.Init(t.Context()); err != nil {
		t.Fatal(err)
	}
	r1, err := other.RotateNow(t.Context(), true)
	if err != nil || !r1.Rotated {
		t.Fatalf("other replica's rotation = %+v, %v", r1, err)
	}
	if e.keys.ActiveKeyID() == r1.Activated {
		t.Fatal("test setup: this node already saw the other replica's rotation")
	}
	c := stsv1connect.NewKeyServiceClient(e.srv.Client(), e.srv.URL)
	r, err := c.RotateSigningKey(as(e.admin), &stsv1.RotateSigningKeyRequest{Force: true})
	if err != nil {
		t.Fatalf("RotateSigningKey: %v", err)
	}
	if r.GetAlreadyRotated() || r.GetRetiredKid() != r1.Activated || r.GetActivatedKid() != r1.Next || e.keys.ActiveKeyID() != r1.Next {
		t.Errorf("RotateSigningKey = %v (node active %s), want %s retired and %s active", r, e.keys.ActiveKeyID(), r1.Activated, r1.Next)
	}
}

// TestKeyServiceSealed: a node whose master key does not open the stored
// keys refuses to rotate, forced or not, and writes nothing (docs/security.md
// D-06: never generate keys over a set that cannot be opened); listing
// still works, since it needs no master key.
func TestKeyServiceSealed(t *testing.T) {
	t.Parallel()
	store := newSQLiteStore(t)
	good := newManager(t, store, newKeyring(t))
	if err := good.Init(t.Context()); err != nil {
		t.Fatal(err)
	}
	wrong := newManager(t, store, newKeyring(t))
	e := newEnvOn(t, store, func(h *Handler) { h.Keys, h.Audit = wrong, store })
	ke := &keyEnv{env: e, keys: wrong}
	stored := ke.storedKeys(t)
	c := stsv1connect.NewKeyServiceClient(e.srv.Client(), e.srv.URL)
	for _, force := range []bool{false, true} {
		_, err := c.RotateSigningKey(as(e.admin), &stsv1.RotateSigningKeyRequest{Force: force})
		if connect.CodeOf(err) != connect.CodeFailedPrecondition || !strings.Contains(err.Error(), "sealed") {
			t.Errorf("RotateSigningKey(force=%v) with the wrong master key = %v, want failed_precondition naming sealed", force, err)
		}
	}
	if diffKeys(stored, ke.storedKeys(t)) {
		t.Error("a sealed node changed the stored keys")
	}
	if l, err := c.ListSigningKeys(as(e.admin), &stsv1.ListSigningKeysRequest{}); err != nil || len(l.GetKeys()) != len(stored) {
		t.Errorf("ListSigningKeys on a sealed node = %v, %v", l, err)
	}
	// No manager at all: unavailable, not a panic.
	bare := newEnvOn(t, newSQLiteStore(t), nil)
	_, err := stsv1connect.NewKeyServiceClient(bare.srv.Client(), bare.srv.URL).ListSigningKeys(as(bare.admin), &stsv1.ListSigningKeysRequest{})
	wantCode(t, "ListSigningKeys without a manager", err, connect.CodeUnavailable)
	_, err = stsv1connect.NewAuditServiceClient(bare.srv.Client(), bare.srv.URL).ListAuditEvents(as(bare.admin), &stsv1.ListAuditEventsRequest{})
	wantCode(t, "ListAuditEvents without a store", err, connect.CodeUnavailable)
}

// TestKeyAndAuditServiceAuthz: without a credential every RPC is
// unauthenticated, with a credential lacking sts:admin (even "*") it is
// permission_denied, and a refused rotation changes nothing.
func TestKeyAndAuditServiceAuthz(t *testing.T) {
	t.Parallel()
	e := newKeyEnvOn(t, newSQLiteStore(t))
	c := e.keyProtocols()["connect"]
	calls := map[string]func(ctx context.Context) error{
		"ListSigningKeys": func(ctx context.Context) error {
			_, err := c.keys.ListSigningKeys(ctx, &stsv1.ListSigningKeysRequest{})
			return err
		},
		"RotateSigningKey": func(ctx context.Context) error {
			_, err := c.keys.RotateSigningKey(ctx, &stsv1.RotateSigningKeyRequest{Force: true})
			return err
		},
		"ListAuditEvents": func(ctx context.Context) error {
			_, err := c.audit.ListAuditEvents(ctx, &stsv1.ListAuditEventsRequest{})
			return err
		},
	}
	stored := e.storedKeys(t)
	readOnly := e.mintPAT(e.user.ID, pat.ScopeIdentityRead)
	for name, call := range calls {
		wantCode(t, name+" without a credential", call(as("")), connect.CodeUnauthenticated)
		wantCode(t, name+" with a bad credential", call(as(pat.PrefixPAT.Generate())), connect.CodeUnauthenticated)
		wantCode(t, name+" with full access but not sts:admin", call(as(e.secret)), connect.CodePermissionDenied)
		wantCode(t, name+" with identity:read", call(as(readOnly)), connect.CodePermissionDenied)
	}
	if diffKeys(stored, e.storedKeys(t)) {
		t.Error("an unauthorized RotateSigningKey changed the keys")
	}
}

// TestKeyAndAuditServiceGRPCGo calls both services with grpc-go itself.
func TestKeyAndAuditServiceGRPCGo(t *testing.T) {
	t.Parallel()
	e := newKeyEnvOn(t, newSQLiteStore(t))
	conn := grpcConn(t, e.srv)
	ctx := metadata.AppendToOutgoingContext(t.Context(), "authorization", "Bearer "+e.admin)
	l := &stsv1.ListSigningKeysResponse{}
	if err := conn.Invoke(ctx, "/sts.v1.KeyService/ListSigningKeys", &stsv1.ListSigningKeysRequest{}, l); err != nil || len(l.GetKeys()) != 2 {
		t.Fatalf("ListSigningKeys = %v, %v", l, err)
	}
	noPrivate(t, "ListSigningKeys over gRPC", l, e.privateNeedles(t))
	err := conn.Invoke(ctx, "/sts.v1.KeyService/RotateSigningKey", &stsv1.RotateSigningKeyRequest{}, &stsv1.RotateSigningKeyResponse{})
	if status.Code(err) != codes.FailedPrecondition {
		t.Errorf("RotateSigningKey without force over gRPC: %v", err)
	}
	r := &stsv1.RotateSigningKeyResponse{}
	if err := conn.Invoke(ctx, "/sts.v1.KeyService/RotateSigningKey", &stsv1.RotateSigningKeyRequest{Force: true}, r); err != nil || !r.GetRotated() {
		t.Fatalf("RotateSigningKey = %v, %v", r, err)
	}
	a := &stsv1.ListAuditEventsResponse{}
	if err := conn.Invoke(ctx, "/sts.v1.AuditService/ListAuditEvents", &stsv1.ListAuditEventsRequest{Action: signer.ActionRotate}, a); err != nil ||
		len(a.GetEvents()) != 1 || a.GetEvents()[0].GetTarget() != "signing_key:"+r.GetActivatedKid() {
		t.Fatalf("ListAuditEvents = %v, %v", a, err)
	}
	err = conn.Invoke(ctx, "/sts.v1.AuditService/ListAuditEvents", &stsv1.ListAuditEventsRequest{PageSize: -1}, a)
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(status.Convert(err).Message(), "page_size") {
		t.Errorf("bad page size over gRPC: %v", err)
	}
	err = conn.Invoke(t.Context(), "/sts.v1.KeyService/ListSigningKeys", &stsv1.ListSigningKeysRequest{}, l)
	if status.Code(err) != codes.Unauthenticated {
		t.Errorf("no credential over gRPC: %v", err)
	}
}
