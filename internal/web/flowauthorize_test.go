package web

import (
	"bytes"
	"compress/flate"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestOIDCFlowCarriesEveryAuthorizeRequest (docs/security.md T-184;
// adopted from review rev6's TestRev6FlowCapRefusesValidAuthorizeRequests):
// /oauth2/authorize hands its whole request to the upstream sign-in as
// return_to (state up to 1024 bytes and nonce up to 512 of UTF-8 without
// control characters, percent-encoded, an id_token_hint, a registered
// redirect_uri), so every request it accepts must fit in the flow's
// cookies, and come back out of them as it went in. Random text is the
// worst case for the flow's compression.
func TestOIDCFlowCarriesEveryAuthorizeRequest(t *testing.T) {
	h := &Handler{signedIn: &SignedIn{secure: true}}
	rnd := rand.New(rand.NewPCG(188, 6))
	text := func(n int, lo, hi rune) string { // n bytes of random runes in [lo, hi)
		var b strings.Builder
		for b.Len() < n {
			r := lo + rnd.Int32N(hi-lo)
			if r >= 0xD800 && r < 0xE000 || r == 0x7F || r >= 0x80 && r < 0xA0 {
				continue
			}
			if b.Len()+len(string(r)) > n {
				break
			}
			b.WriteRune(r)
		}
		return b.String()
	}
	random := func(n int) string { // base64url, as an ES256 ID token's parts are
		b := make([]byte, n*3/4)
		for i := range b {
			b[i] = byte(rnd.Uint32())
		}
		return base64.RawURLEncoding.EncodeToString(b)
	}
	hint := random(300) + "." + random(700) + "." + random(86) // an ES256 ID token with email, name and a long nonce
	for _, c := range []struct{ name, state, nonce string }{
		{"JSON state of 1024 bytes, short nonce", `{"r":"` + strings.Repeat("https://app.example/p?a=1&b=2#", 40)[:1016] + `"}`, strings.Repeat("n", 43)},
		{"UTF-8 state of 1024 bytes", strings.Repeat("é", 512), strings.Repeat("n", 43)},
		{"state and nonce at their maximum, UTF-8", strings.Repeat("é", 512), strings.Repeat("é", 256)},
		{"UTF-8 state of 1024 bytes, a longer registered redirect_uri", strings.Repeat("é", 512), strings.Repeat("n", 43)},
		{"state and nonce at their maximum, ASCII", strings.Repeat("a/b", 341) + "x", strings.Repeat("n/", 256)},
		{"state and nonce at their maximum, random printable ASCII", text(1024, 0x20, 0x7F), text(512, 0x20, 0x7F)},
		{"state and nonce at their maximum, random 2-byte UTF-8", text(1024, 0xA0, 0x800), text(512, 0xA0, 0x800)},
		{"state and nonce at their maximum, random 3-byte UTF-8, a longer registered redirect_uri", text(1024, 0x800, 0x10000), text(512, 0x800, 0x10000)},
		{"state and nonce at their maximum, random 4-byte UTF-8, a longer registered redirect_uri", text(1024, 0x10000, 0x110000), text(512, 0x10000, 0x110000)},
	} {
		redirect := "https://app.example.com/oauth/callback/sts"
		if strings.Contains(c.name, "longer registered") {
			redirect = "https://app.example.com/oauth/callback/sts/" + strings.Repeat("tenant/", 20)
		}
		v := url.Values{
			"client_id": {"01JBQ8Z5T7Y2M4K6N8P0R2S4V6"}, "redirect_uri": {redirect},
			"response_type": {"code"}, "scope": {"openid email profile offline_access"}, "state": {c.state}, "nonce": {c.nonce},
			"prompt": {"login"}, "code_challenge": {random(43)}, "code_challenge_method": {"S256"}, "max_age": {"0"},
			"id_token_hint": {hint}, "reauth": {"1796615711." + random(43)},
		}
		returnTo := "/oauth2/authorize?" + v.Encode()
		f := oidcFlow{Provider: "corp", State: random(43), Nonce: random(43), Verifier: random(43),
			ReturnTo: returnTo, Expires: time.Now().Unix(), Fresh: time.Now().Unix()}
		parts := flowChunks(h.flowSlot(f.State), encodeFlow(f))
		t.Logf("%s: return_to %d bytes, flow value %d bytes", c.name, len(returnTo), len(encodeFlow(f)))
		if parts == nil {
			t.Errorf("%s (state %d bytes, nonce %d, all within authorize's limits): return_to of %d bytes refused at the sign-in's start",
				c.name, len(c.state), len(c.nonce), len(returnTo))
			continue
		}
		if got := readFlowParts(t, h, h.flowSlot(f.State), parts); got != f {
			t.Errorf("%s: the flow read back is not the flow kept: %+v", c.name, got)
		}
	}
}

// readFlowParts is the flow a browser carrying parts as the flow's
// cookies sends back.
func readFlowParts(t *testing.T, h *Handler, slot string, parts []string) oidcFlow {
	t.Helper()
	r := httptest.NewRequest("GET", "/login/oidc/corp/callback", nil)
	for i, p := range parts {
		r.AddCookie(&http.Cookie{Name: flowCookieN(slot, i), Value: p})
	}
	f, err := h.readFlow(r, slot)
	if err != nil {
		t.Fatalf("reading back a flow of %d cookies: %v", len(parts), err)
	}
	return f
}

// TestOIDCFlowFormatsRead (docs/security.md T-184): a flow kept before
// compression (its JSON only base64url, over two cookies) is still read,
// and a compressed one that inflates past maxFlowJSON is refused, not
// read into memory.
func TestOIDCFlowFormatsRead(t *testing.T) {
	h := &Handler{signedIn: &SignedIn{secure: true}}
	f := oidcFlow{Provider: "corp", State: "s", Nonce: "n", Verifier: "v", ReturnTo: "/tokens?x=" + strings.Repeat("a&b", 1500), Expires: 1}
	b, _ := json.Marshal(f)
	old := base64.RawURLEncoding.EncodeToString(b)
	if got := readFlowParts(t, h, h.flowCookie(), []string{"2." + old[:flowChunk], old[flowChunk:]}); got != f {
		t.Errorf("a flow of the earlier format read as %+v", got)
	}
	var z bytes.Buffer
	w, _ := flate.NewWriter(&z, flate.BestCompression)
	_, _ = w.Write([]byte(`{"p":"corp","r":"` + strings.Repeat("x", maxFlowJSON) + `"}`))
	_ = w.Close()
	r := httptest.NewRequest("GET", "/login/oidc/corp/callback", nil)
	r.AddCookie(&http.Cookie{Name: h.flowCookie(), Value: flowDeflated + base64.RawURLEncoding.EncodeToString(z.Bytes())})
	if got, err := h.readFlow(r, h.flowCookie()); err == nil || !strings.Contains(err.Error(), "past its bound") {
		t.Errorf("a flow inflating past %d bytes: %v, read as %.60v", maxFlowJSON, err, got)
	}
}

// TestOIDCFlowsOfOneBrowserBounded (docs/security.md T-201): each flow
// under way in a browser keeps its own cookies, and a start beside
// maxFlows others already under way drops those begun longest ago, so a
// browser's flows stay within maxFlows (and maxFlowBytes) together.
func TestOIDCFlowsOfOneBrowserBounded(t *testing.T) {
	h := &Handler{signedIn: &SignedIn{secure: true}}
	r := httptest.NewRequest("POST", "/login/oidc/corp", nil)
	var slots []string
	for i := range maxFlows {
		f := oidcFlow{Provider: "corp", State: fmt.Sprint("state-", i), Nonce: "n", Verifier: "v", ReturnTo: "/tokens", Expires: int64(1000 + i)}
		slot := h.flowSlot(f.State)
		slots = append(slots, slot)
		r.AddCookie(&http.Cookie{Name: slot, Value: encodeFlow(f)})
	}
	f := oidcFlow{Provider: "corp", State: "state-new", Nonce: "n", Verifier: "v", ReturnTo: "/tokens", Expires: 2000}
	w := httptest.NewRecorder()
	if !h.keepFlow(w, r, f) {
		t.Fatal("a short flow refused")
	}
	set := map[string]int{}
	for _, c := range w.Result().Cookies() {
		set[c.Name] = c.MaxAge
	}
	if set[h.flowSlot(f.State)] <= 0 {
		t.Errorf("the new flow's cookie not set: %v", set)
	}
	if set[slots[0]] >= 0 {
		t.Errorf("the flow begun longest ago kept beside %d others: %v", maxFlows, set)
	}
	for _, s := range slots[1:] {
		if _, touched := set[s]; touched {
			t.Errorf("a newer flow's cookie %s changed: %v", s, set)
		}
	}
}
