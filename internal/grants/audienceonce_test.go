package grants

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestAudienceAndResourceNamedOnce (docs/security.md T-250): a target
// named both as audience and as resource (RFC 8693 §2.1 lets a client
// send both) is one audience of the issued token. It was carried twice,
// "aud":["A","A"], which a resource server or a relying party that takes
// a token for exactly one audience (sts's own providers without
// allow_multiple_audiences) refuses as a token for several.
func TestAudienceAndResourceNamedOnce(t *testing.T) {
	e := newEnv(t, nil)
	const api = "https://api.example"
	tok := e.issuer.mint(t, "RS256", e.issuer.claims(time.Now(), "u1"))
	resp, body := e.post(t, PathToken, exchangeForm(tok, "pool", "ci", "audience", api, "resource", api))
	at, _ := body["access_token"].(string)
	if resp.StatusCode != http.StatusOK || at == "" {
		t.Fatalf("exchange = %d %v %v, want 200", resp.StatusCode, body["error"], body["reason"])
	}
	seg := strings.Split(at, ".")[1]
	raw, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		t.Fatal(err)
	}
	var payload struct {
		Aud json.RawMessage `json:"aud"`
	}
	if err := json.Unmarshal(raw, &payload); err != nil {
		t.Fatal(err)
	}
	var one string
	var many []string
	if json.Unmarshal(payload.Aud, &one) != nil && (json.Unmarshal(payload.Aud, &many) != nil || len(many) != 1 || many[0] != api) {
		t.Errorf("aud = %s, want %q once", payload.Aud, api)
	} else if one != "" && one != api {
		t.Errorf("aud = %s, want %q", payload.Aud, api)
	}
}
