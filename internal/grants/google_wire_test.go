package grants

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	googlecreds "golang.org/x/oauth2/google"
	"golang.org/x/oauth2/google/externalaccount"

	"github.com/opensts/sts/internal/oauth2"
	"github.com/opensts/sts/internal/ststest/logbuf"
)

// cloudPlatform is the scope Google's API clients ask for when their user
// sets none.
const cloudPlatform = "https://www.googleapis.com/auth/cloud-platform"

// credentialFile is the external_account credential file of docs/api.md
// for the pool "ci" and its provider "github", pointing at srv.
func credentialFile(tokenURL string, source map[string]any) []byte {
	b, _ := json.Marshal(map[string]any{
		"type":               "external_account",
		"audience":           "//sts.example/pools/ci/providers/github",
		"subject_token_type": oauth2.TokenTypeJWT,
		"token_url":          tokenURL,
		"credential_source":  source,
	})
	return b
}

// TestGoogleDefaultScope: Google's clients send the cloud-platform scope
// when their user sets none; it stands for the pool's default scopes.
// The judges are Google's own loaders: a credential file with a file and
// with a URL credential source, and externalaccount with no scopes.
func TestGoogleDefaultScope(t *testing.T) {
	e := newEnv(t, nil)
	subjectToken := func() string { return e.issuer.mint(t, "RS256", e.issuer.claims(time.Now(), "ext-user")) }
	path := filepath.Join(t.TempDir(), "token.jwt")
	if err := os.WriteFile(path, []byte(subjectToken()), 0o600); err != nil {
		t.Fatal(err)
	}
	src := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Metadata-Flavor") != "test" {
			http.Error(w, "missing header", http.StatusForbidden)
			return
		}
		w.Write([]byte(subjectToken()))
	}))
	defer src.Close()

	check := func(t *testing.T, token string) {
		t.Helper()
		c, err := e.verify.VerifyAccessToken(t.Context(), token, stsIssuer)
		if err != nil {
			t.Fatalf("our verifier rejects the token: %v", err)
		}
		if c.Scope != "read write" || c.Pool != "ci" {
			t.Errorf("scope %q pool %q, want the pool's default scopes \"read write\"", c.Scope, c.Pool)
		}
	}
	for name, source := range map[string]map[string]any{
		"file": {"file": path},
		"url":  {"url": src.URL, "headers": map[string]string{"Metadata-Flavor": "test"}, "format": map[string]string{"type": "text"}},
	} {
		t.Run("credential file, "+name+" source", func(t *testing.T) {
			creds, err := googlecreds.CredentialsFromJSONWithTypeAndParams(t.Context(), credentialFile(e.srv.URL+PathGoogleToken, source),
				googlecreds.ExternalAccount, googlecreds.CredentialsParams{Scopes: []string{cloudPlatform}})
			if err != nil {
				t.Fatal(err)
			}
			tok, err := creds.TokenSource.Token()
			if err != nil {
				t.Fatalf("Token(): %v", err)
			}
			check(t, tok.AccessToken)
		})
	}
	t.Run("externalaccount without scopes", func(t *testing.T) {
		ts, err := externalaccount.NewTokenSource(t.Context(), externalaccount.Config{
			Audience: "//sts.example/pools/ci/providers/github", SubjectTokenType: oauth2.TokenTypeJWT,
			TokenURL: e.srv.URL + PathGoogleToken, CredentialSource: &externalaccount.CredentialSource{File: path},
		})
		if err != nil {
			t.Fatal(err)
		}
		tok, err := ts.Token()
		if err != nil {
			t.Fatalf("Token(): %v", err)
		}
		check(t, tok.AccessToken)
	})
	t.Run("with other scopes it is refused", func(t *testing.T) {
		resp, out := e.post(t, PathGoogleToken, exchangeForm(subjectToken(), "audience", "pools/ci/providers/github", "scope", cloudPlatform+" read"))
		if resp.StatusCode != 400 || out["error"] != oauth2.ErrorInvalidScope {
			t.Errorf("got %d %v, want invalid_scope", resp.StatusCode, out)
		}
	})
}

// TestGoogleOptions: options accepts userProject and audiences besides
// accessBoundary, exactly spelled and each once.
func TestGoogleOptions(t *testing.T) {
	e := newEnv(t, nil)
	tok := e.issuer.mint(t, "RS256", e.issuer.claims(time.Now(), "u1"))
	const boundary = `{"accessBoundaryRules":[{"availableResource":"//storage.example/buckets/logs","availablePermissions":["inRole:roles/storage.objectViewer"]}]}`
	send := func(options string) (int, map[string]any) {
		body, _ := json.Marshal(map[string]any{
			"grantType": oauth2.GrantTypeTokenExchange, "subjectToken": tok, "subjectTokenType": oauth2.TokenTypeJWT,
			"audience": "pools/ci/providers/github", "options": json.RawMessage(options),
		})
		r, _ := http.NewRequest(http.MethodPost, e.srv.URL+PathGoogleToken, strings.NewReader(string(body)))
		r.Header.Set("Content-Type", "application/json")
		resp, out := do(t, r)
		return resp.StatusCode, out
	}
	for _, tc := range []struct {
		name, options string
		wantStatus    int
		wantReason    string
		wantAud       []string
		wantCAB       bool
	}{
		{"boundary", `{"accessBoundary":` + boundary + `}`, 200, "", []string{stsIssuer}, true},
		{"userProject", `{"userProject":"my-project","accessBoundary":` + boundary + `}`, 200, "", []string{stsIssuer}, true},
		{"audiences", `{"audiences":["https://api.example","https://other.example"]}`, 200, "", []string{"https://api.example", "https://other.example"}, false},
		{"audience not allowed", `{"audiences":["https://nowhere.example"]}`, 400, ReasonAudienceNotAllowed, nil, false},
		{"six audiences", `{"audiences":["a","b","c","d","e","f"]}`, 400, ReasonBoundaryInvalid, nil, false},
		{"audiences not strings", `{"audiences":"https://api.example"}`, 400, ReasonBoundaryInvalid, nil, false},
		{"case variant drops nothing", `{"accessBoundary":` + boundary + `,"accessboundary":null}`, 400, ReasonBoundaryInvalid, nil, false},
		{"duplicate member", `{"accessBoundary":` + boundary + `,"accessBoundary":null}`, 400, ReasonBoundaryInvalid, nil, false},
		{"case variant inside the boundary", `{"accessBoundary":{"accessBoundaryRules":[],"AccessBoundaryRules":[]}}`, 400, ReasonBoundaryInvalid, nil, false},
		{"unknown member", `{"quotaProject":"x"}`, 400, ReasonBoundaryInvalid, nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, out := send(tc.options)
			if status != tc.wantStatus || (tc.wantReason != "" && out["reason"] != tc.wantReason) {
				t.Fatalf("got %d %v, want %d reason %q", status, out, tc.wantStatus, tc.wantReason)
			}
			if status != 200 {
				if d, _ := out["error_description"].(string); !strings.Contains(d, "options") && tc.wantReason == ReasonBoundaryInvalid {
					t.Errorf("error_description %q does not name options", d)
				}
				return
			}
			c, err := e.verify.VerifyAccessToken(t.Context(), out["access_token"].(string), tc.wantAud[0])
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(c.Audience, " ") != strings.Join(tc.wantAud, " ") || (c.CAB != nil) != tc.wantCAB {
				t.Errorf("aud %v cab %v, want %v cab %v", c.Audience, c.CAB, tc.wantAud, tc.wantCAB)
			}
		})
	}
}

// TestGoogleTargets: the audience names a workload or workforce pool's
// provider; an unknown one is invalid_target naming what was not found,
// and one that is no provider's resource name is invalid_request saying
// which forms are.
func TestGoogleTargets(t *testing.T) {
	e := newEnv(t, nil)
	var logs syncBuffer
	e.handler.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	tok := e.issuer.mint(t, "RS256", e.issuer.claims(time.Now(), "u1"))
	for _, tc := range []struct {
		audience, wantError, wantInDesc string
	}{
		{"//iam.googleapis.com/projects/123/locations/global/workloadIdentityPools/ci/providers/github", "", ""},
		{"//iam.googleapis.com/locations/global/workforcePools/ci/providers/github", "", ""},
		{"pools/nope/providers/github", oauth2.ErrorInvalidTarget, `pool 'nope'`},
		{"//iam.googleapis.com/locations/global/workforcePools/nope/providers/github", oauth2.ErrorInvalidTarget, `pool 'nope'`},
		{"pools/ci/providers/nope", oauth2.ErrorInvalidTarget, `provider 'nope'`},
		{"pools/off/providers/p", oauth2.ErrorInvalidTarget, `pool 'off'`},
		// Every documented form (docs/api.md), under any host.
		{"//sts.example.com/pools/ci/providers/github", "", ""},
		{"pools/ci/providers/github", "", ""},
		// Anything else is not a provider's name, whatever it ends with
		// (T-117): Google's invalid_request, before any pool is looked at.
		{"sts", oauth2.ErrorInvalidRequest, `Invalid value for 'audience'`},
		{"//iam.googleapis.com/anything/workloadIdentityPools/ci/providers/github", oauth2.ErrorInvalidRequest, `Invalid value for 'audience'`},
		{"//iam.googleapis.com/projects/123/locations/global/workforcePools/ci/providers/github", oauth2.ErrorInvalidRequest, `Invalid value for 'audience'`},
		{"https://iam.googleapis.com/projects/123/locations/global/workloadIdentityPools/ci/providers/github", oauth2.ErrorInvalidRequest, "full resource name"},
		{"locations/global/workforcePools/ci/providers/github", oauth2.ErrorInvalidRequest, "workforcePools/<pool>"},
		// Google's two names under another host, or naming a project by
		// its ID rather than its number, are no Google name: Google STS
		// refuses them (T-130). Our own form is the one for any host.
		{"//sts.example.com/projects/123/locations/global/workloadIdentityPools/ci/providers/github", oauth2.ErrorInvalidRequest, `Invalid value for 'audience'`},
		{"//sts.example.com/locations/global/workforcePools/ci/providers/github", oauth2.ErrorInvalidRequest, `Invalid value for 'audience'`},
		{"//iam.googleapis.com/projects/my-project/locations/global/workloadIdentityPools/ci/providers/github", oauth2.ErrorInvalidRequest, "projects/<project number>"},
	} {
		resp, out := e.post(t, PathGoogleToken, exchangeForm(tok, "audience", tc.audience))
		if tc.wantError == "" {
			if resp.StatusCode != 200 {
				t.Errorf("%s: %d %v", tc.audience, resp.StatusCode, out)
			}
			continue
		}
		d, _ := out["error_description"].(string)
		if resp.StatusCode != 400 || out["error"] != tc.wantError || !strings.Contains(d, tc.wantInDesc) {
			t.Errorf("%s: %d %v, want %s naming %s", tc.audience, resp.StatusCode, out, tc.wantError, tc.wantInDesc)
		}
	}
	// The refusal is logged as it was answered, naming the pool asked for.
	if l := logs.String(); !strings.Contains(l, "error=invalid_target") || !strings.Contains(l, "pool=nope") {
		t.Errorf("refusal log = %q, want error=invalid_target and pool=nope", l)
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent writers.
type syncBuffer = logbuf.Buffer

// TestGoogleParameterMessages: a refused request says which parameter is
// wrong.
func TestGoogleParameterMessages(t *testing.T) {
	e := newEnv(t, nil)
	tok := e.issuer.mint(t, "RS256", e.issuer.claims(time.Now(), "u1"))
	for _, tc := range []struct {
		form url.Values
		want string
	}{
		{url.Values{"subject_token": {tok}}, "grant_type"},
		{exchangeForm("", "audience", "pools/ci/providers/github"), "subject_token"},
		{exchangeForm(tok, "audience", "pools/ci/providers/github", "requested_token_type", "urn:x"), "requested_token_type"},
		{exchangeForm(tok, "audience", "pools/ci/providers/github", "options", "[]"), "options"},
	} {
		resp, out := e.post(t, PathGoogleToken, tc.form)
		if d, _ := out["error_description"].(string); resp.StatusCode != 400 || !strings.Contains(d, tc.want) {
			t.Errorf("%d %v, want a description naming %s", resp.StatusCode, out, tc.want)
		}
	}
}

// TestGoogleActorToken: actor_token and actor_token_type on /v1/token act
// as on /oauth2/token, in the form and in camelCase JSON.
func TestGoogleActorToken(t *testing.T) {
	e := newEnv(t, nil)
	now := time.Now()
	subj := e.issuer.claims(now, "u1")
	subj["may_act"] = map[string]any{"sub": "bot"}
	tok := e.issuer.mint(t, "RS256", subj)
	actor := e.issuer.mint(t, "ES256", e.issuer.claims(now, "bot"))
	check := func(name string, status int, out map[string]any) {
		t.Helper()
		if status != 200 {
			t.Fatalf("%s: %d %v", name, status, out)
		}
		c, err := e.verify.VerifyAccessToken(t.Context(), out["access_token"].(string), stsIssuer)
		if err != nil || c.Act == nil || c.Act.Subject != "bot" {
			t.Errorf("%s: act = %+v, %v", name, c, err)
		}
	}
	resp, out := e.post(t, PathGoogleToken, exchangeForm(tok, "audience", "pools/ci/providers/github", "actor_token", actor, "actor_token_type", oauth2.TokenTypeJWT))
	check("form", resp.StatusCode, out)
	body, _ := json.Marshal(map[string]any{
		"grantType": oauth2.GrantTypeTokenExchange, "subjectToken": tok, "subjectTokenType": oauth2.TokenTypeJWT,
		"audience": "pools/ci/providers/github", "actorToken": actor, "actorTokenType": oauth2.TokenTypeJWT,
	})
	r, _ := http.NewRequest(http.MethodPost, e.srv.URL+PathGoogleToken, strings.NewReader(string(body)))
	r.Header.Set("Content-Type", "application/json")
	resp, out = do(t, r)
	check("json", resp.StatusCode, out)
	// An actor the subject does not name is refused as on /oauth2/token.
	other := e.issuer.mint(t, "ES256", e.issuer.claims(now, "intruder"))
	resp, out = e.post(t, PathGoogleToken, exchangeForm(tok, "audience", "pools/ci/providers/github", "actor_token", other, "actor_token_type", oauth2.TokenTypeJWT))
	if resp.StatusCode != 400 || out["reason"] != ReasonActorNotAllowed {
		t.Errorf("intruder actor: %d %v", resp.StatusCode, out)
	}
}

// TestGoogleBodyCaseVariants: a JSON body naming a member in another case
// is refused as an unknown name, as Google's front end refuses it
// (docs/security.md T-116), rather than half-read; one named twice, also
// under both of its names, is refused as repeated.
func TestGoogleBodyCaseVariants(t *testing.T) {
	e := newEnv(t, nil)
	tok := e.issuer.mint(t, "RS256", e.issuer.claims(time.Now(), "u1"))
	body := `{"grantType":"` + oauth2.GrantTypeTokenExchange + `","subjectToken":"` + tok + `","SubjectToken":"x",` +
		`"subjectTokenType":"` + oauth2.TokenTypeJWT + `","audience":"pools/ci/providers/github"}`
	r, _ := http.NewRequest(http.MethodPost, e.srv.URL+PathGoogleToken, strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	resp, out := do(t, r)
	if d, _ := out["error_description"].(string); resp.StatusCode != 400 || out["reason"] != ReasonMalformed || !strings.Contains(d, `Unknown name 'SubjectToken'`) {
		t.Errorf("got %d %v, want 400 %s naming SubjectToken", resp.StatusCode, out, ReasonMalformed)
	}
	for _, body := range []string{
		`{"subjectToken":"` + tok + `","subjectToken":"x"}`,
		`{"subjectToken":"` + tok + `","subject_token":"x"}`,
	} {
		r, _ := http.NewRequest(http.MethodPost, e.srv.URL+PathGoogleToken, strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		resp, out := do(t, r)
		if d, _ := out["error_description"].(string); resp.StatusCode != 400 || out["reason"] != ReasonParameterRepeated || !strings.Contains(d, "subject_token") {
			t.Errorf("%s: got %d %v, want 400 %s naming subject_token", body, resp.StatusCode, out, ReasonParameterRepeated)
		}
	}
	// Google's front end knows no other member: an sts form parameter is
	// no exception in JSON.
	r, _ = http.NewRequest(http.MethodPost, e.srv.URL+PathGoogleToken, strings.NewReader(`{"subjectToken":"`+tok+`","pool":"ci"}`))
	r.Header.Set("Content-Type", "application/json")
	resp, out = do(t, r)
	if d, _ := out["error_description"].(string); resp.StatusCode != 400 || !strings.Contains(d, `Unknown name 'pool'`) {
		t.Errorf("unknown member: got %d %v, want 400 naming pool", resp.StatusCode, out)
	}
}

// TestGooglePercentEncodedOptions: Google's Python library (google-auth,
// and so gcloud) percent-encodes the options JSON once more before it
// form-encodes the body (sts.py: urllib.parse.quote(json.dumps(...))).
// Its workforce credential files send userProject that way, its
// downscoped credentials the accessBoundary. The bodies below are what
// urllib.parse.urlencode made of them; a value encoded twice over is not
// decoded again.
func TestGooglePercentEncodedOptions(t *testing.T) {
	e := newEnv(t, nil)
	e.handler.OmitReason = true // serve's default: the description alone must tell
	const (
		userProject = "options=%257B%2522userProject%2522%253A%2520%2522my-project%2522%257D"
		boundary    = "options=%257B%2522accessBoundary%2522%253A%2520%257B%2522accessBoundaryRules%2522%253A%2520%255B%257B%2522availableResource%2522%253A%2520%2522//storage.example/buckets/logs%2522%252C%2520%2522availablePermissions%2522%253A%2520%255B%2522inRole%253Aroles/storage.objectViewer%2522%255D%257D%255D%257D%257D"
		twice       = "options=%25257B%252522userProject%252522%25253A%252520%252522my-project%252522%25257D"
	)
	for _, tc := range []struct {
		name, options string
		wantStatus    int
		wantCAB       bool
	}{
		{"workforce userProject", userProject, 200, false},
		{"downscoping", boundary, 200, true},
		{"encoded twice", twice, 400, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok := e.issuer.mint(t, "RS256", e.issuer.claims(time.Now(), "u1"))
			form := exchangeForm(tok, "audience", "//iam.googleapis.com/locations/global/workforcePools/ci/providers/github",
				"scope", cloudPlatform, "requested_token_type", oauth2.TokenTypeAccessToken)
			r, _ := http.NewRequest(http.MethodPost, e.srv.URL+PathGoogleToken, strings.NewReader(form.Encode()+"&"+tc.options))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			resp, out := do(t, r)
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("got %d %v, want %d", resp.StatusCode, out, tc.wantStatus)
			}
			if resp.StatusCode != 200 {
				if d, _ := out["error_description"].(string); !strings.Contains(d, "options") {
					t.Errorf("error_description %q does not name options", d)
				}
				return
			}
			c, err := e.verify.VerifyAccessToken(t.Context(), out["access_token"].(string), stsIssuer)
			if err != nil {
				t.Fatal(err)
			}
			if (c.CAB != nil) != tc.wantCAB {
				t.Errorf("cab %v, want one: %v", c.CAB, tc.wantCAB)
			}
		})
	}
}

// TestGoogleSubjectTokenTypes: subject token types Google STS takes and
// sts does not (AWS signed requests, SAML) are refused as the parameter
// they are, invalid_request naming subject_token_type (docs/security.md
// T-52), not as Google's invalid_grant for a refused credential: a user
// moving an AWS or SAML credential file learns what to change.
func TestGoogleSubjectTokenTypes(t *testing.T) {
	e := newEnv(t, nil)
	e.handler.OmitReason = true // serve's default: the description alone must tell
	tok := e.issuer.mint(t, "RS256", e.issuer.claims(time.Now(), "u1"))
	for _, typ := range []string{"urn:ietf:params:aws:token-type:aws4_request", oauth2.TokenTypeSAML2} {
		t.Run("T-52 "+typ, func(t *testing.T) {
			form := exchangeForm(tok, "audience", "pools/ci/providers/github")
			form.Set("subject_token_type", typ)
			resp, out := e.post(t, PathGoogleToken, form)
			d, _ := out["error_description"].(string)
			if resp.StatusCode != 400 || out["error"] != oauth2.ErrorInvalidRequest || !strings.Contains(d, "subject_token_type") {
				t.Errorf("got %d %v, want 400 invalid_request naming subject_token_type", resp.StatusCode, out)
			}
		})
	}
}

// TestGoogleActorTokenTypes: an actor_token_type sts does not take, or an
// actor_token without its type, is the parameter at fault, named as such
// on every dialect (docs/security.md T-118): not "actor_token rejected",
// which Google's /v1/token answers as invalid_grant for a refused
// credential, and before any token is verified.
func TestGoogleActorTokenTypes(t *testing.T) {
	e := newEnv(t, nil)
	e.handler.OmitReason = true // serve's default: the description alone must tell
	tok := e.issuer.mint(t, "RS256", e.issuer.claims(time.Now(), "u1"))
	for _, tc := range []struct {
		name, typ, wantDesc string
	}{
		{"T-118 unknown type", "urn:x", `actor_token_type 'urn:x' is not supported`},
		{"T-118 saml2", oauth2.TokenTypeSAML2, `actor_token_type '` + oauth2.TokenTypeSAML2 + `' is not supported`},
		{"T-118 PAT", oauth2.TokenTypePAT, "is not supported"},
		{"T-51 no type", "", "actor_token and actor_token_type go together"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, path := range []string{PathGoogleToken, PathToken} {
				form := exchangeForm(tok, "audience", "pools/ci/providers/github", "actor_token", tok)
				if path == PathToken {
					form = exchangeForm(tok, "pool", "ci", "actor_token", tok)
				}
				if tc.typ != "" {
					form.Set("actor_token_type", tc.typ)
				}
				resp, out := e.post(t, path, form)
				d, _ := out["error_description"].(string)
				if resp.StatusCode != 400 || out["error"] != oauth2.ErrorInvalidRequest || !strings.Contains(d, tc.wantDesc) {
					t.Errorf("%s: got %d %v, want 400 invalid_request %q", path, resp.StatusCode, out, tc.wantDesc)
				}
				// Answered before the subject token is verified.
				form.Set("subject_token", "a.b.c")
				if resp, out = e.post(t, path, form); resp.StatusCode != 400 || !strings.Contains(fmt.Sprint(out["error_description"]), tc.wantDesc) {
					t.Errorf("%s, bad subject token: got %d %v, want %q", path, resp.StatusCode, out, tc.wantDesc)
				}
			}
		})
	}
}

// TestGoogleServiceAccountImpersonation: a credential file with
// service_account_impersonation_url (what gcloud writes for a pool bound
// to a service account) makes Google's libraries hand the token they get
// from /v1/token on to that URL, Google's IAM Credentials API, as a
// bearer token. sts serves no such API and issues the final token
// itself, so such an exchange is refused up front, the credential file's
// field named, and no token leaves for the URL (docs/security.md T-136).
// Every Google library announces it in x-goog-api-client
// ("google-byoid-sdk … sa-impersonation/true").
func TestGoogleServiceAccountImpersonation(t *testing.T) {
	e := newEnv(t, nil)
	e.handler.OmitReason = true // serve's default: the description alone must tell
	subjectToken := func() string { return e.issuer.mint(t, "RS256", e.issuer.claims(time.Now(), "ext-user")) }
	path := filepath.Join(t.TempDir(), "token.jwt")
	if err := os.WriteFile(path, []byte(subjectToken()), 0o600); err != nil {
		t.Fatal(err)
	}
	var handedOn atomic.Int32
	iam := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		handedOn.Add(1)
		http.Error(w, `{"error":{"code":401,"status":"UNAUTHENTICATED"}}`, http.StatusUnauthorized)
	}))
	defer iam.Close()

	t.Run("T-136 Google's loader with service_account_impersonation_url", func(t *testing.T) {
		var file map[string]any
		json.Unmarshal(credentialFile(e.srv.URL+PathGoogleToken, map[string]any{"file": path}), &file)
		file["service_account_impersonation_url"] = iam.URL + "/v1/projects/-/serviceAccounts/sa@p.iam.gserviceaccount.com:generateAccessToken"
		b, _ := json.Marshal(file)
		creds, err := googlecreds.CredentialsFromJSON(t.Context(), b, cloudPlatform)
		if err != nil {
			t.Fatal(err)
		}
		_, err = creds.TokenSource.Token()
		if err == nil || !strings.Contains(err.Error(), "status code 400") || !strings.Contains(err.Error(), `"invalid_request"`) ||
			!strings.Contains(err.Error(), "service_account_impersonation_url") {
			t.Errorf("Token() = %v, want 400 invalid_request naming service_account_impersonation_url", err)
		}
		if n := handedOn.Load(); n != 0 {
			t.Errorf("the impersonation URL received %d requests, want none (no sts token handed on)", n)
		}
	})

	// The header as each library writes it: refused when it says the
	// token is for impersonation, served when it says it is not.
	for _, tc := range []struct {
		header string
		refuse bool
	}{
		{"gl-python/3.12.3 auth/2.40.0 google-byoid-sdk source/file sa-impersonation/true config-lifetime/false", true},
		{"gl-node/22.1.0 auth/9.15.0 google-byoid-sdk source/url sa-impersonation/true config-lifetime/true", true},
		{"gl-java/17 auth/1.30.0 google-byoid-sdk source/executable sa-impersonation/TRUE config-lifetime/false", true},
		{"gl-go/1.26.0 auth/unknown google-byoid-sdk source/file sa-impersonation/false config-lifetime/false", false},
		{"gl-go/1.26.0 gdcl/0.170.0", false},
		{"", false},
	} {
		t.Run(fmt.Sprintf("T-136 x-goog-api-client %q", tc.header), func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, e.srv.URL+PathGoogleToken,
				strings.NewReader(exchangeForm(subjectToken(), "audience", "pools/ci/providers/github").Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if tc.header != "" {
				req.Header.Set("X-Goog-Api-Client", tc.header)
			}
			resp, out := do(t, req)
			d, _ := out["error_description"].(string)
			switch {
			case tc.refuse && (resp.StatusCode != 400 || out["error"] != oauth2.ErrorInvalidRequest ||
				!strings.Contains(d, "service_account_impersonation_url") || out["access_token"] != nil):
				t.Errorf("got %d %v %q (a token: %t), want 400 invalid_request naming service_account_impersonation_url",
					resp.StatusCode, out["error"], d, out["access_token"] != nil)
			case !tc.refuse && (resp.StatusCode != 200 || out["access_token"] == nil):
				t.Errorf("got %d %v %q, want a token", resp.StatusCode, out["error"], d)
			}
		})
	}
}
