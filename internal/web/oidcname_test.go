package web_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/opensts/sts/internal/sts"
)

// TestOIDCFirstSignInNameFollowsTheRule (docs/security.md T-135): the user
// a first sign-in creates is named after the upstream's subject or email,
// which sts does not choose. The sign-in does not fail for an odd name:
// each character the name rule refuses is replaced by U+FFFD, so the
// stored name passes sts.CheckDisplayText and shows that something was
// replaced; the email is kept as sent (it links the person), and the next
// sign-in lands in the same user. A name the rule keeps (a subdivision
// flag) is stored as sent.
func TestOIDCFirstSignInNameFollowsTheRule(t *testing.T) {
	t.Parallel()
	mail, corp := newIDP(t), newIDP(t)
	y := loopbackProviders + "web:\n  login:\n    oidc:\n"
	for _, pv := range []struct {
		id, link string
		p        *idp
	}{{"mail", "email", mail}, {"corp", "sub", corp}} {
		y += "      - id: " + pv.id + "\n        issuer: " + pv.p.URL + "\n        client_id: " + pv.p.ClientID +
			"\n        client_secret: " + pv.p.ClientSecret + "\n        link_claim: " + pv.link + "\n        organization: default\n"
	}
	s := startServer(t, y)
	const flag = "\U0001F3F4\U000E0067\U000E0062\U000E0065\U000E006E\U000E0067\U000E007F"
	for _, tc := range []struct {
		name, via   string
		p           *idp
		claims      map[string]any
		sent, named string
	}{
		{"bidi in sub", "corp", corp, map[string]any{"sub": "ci\u202Egpj.exe"}, "ci\u202Egpj.exe", "ci\uFFFDgpj.exe"},
		{"tag and newline in sub", "corp", corp, map[string]any{"sub": "a\U000E0041b\nc"}, "a\U000E0041b\nc", "a\uFFFDb\uFFFDc"},
		{"flag in sub", "corp", corp, map[string]any{"sub": "fan " + flag}, "fan " + flag, "fan " + flag},
		{"zero-width space in email", "mail", mail,
			map[string]any{"sub": "m-1", "email": "dora\u200B@example.com", "email_verified": true},
			"dora\u200B@example.com", "dora\uFFFD@example.com"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for i := range 2 { // the first sign-in creates the user, the second finds it
				tc.p.signInAs(tc.claims)
				b := follower(t)
				r := signInWith(t, b, s, tc.via, "")
				if r.status != http.StatusOK || !strings.Contains(r.body, "Signed in as <strong>"+tc.named+"</strong>") || !hasSession(s, b) {
					t.Fatalf("sign-in %d: %d, want signed in as %q\n%s", i+1, r.status, tc.named, r.body)
				}
			}
			if got := principalsNamed(t, s, tc.named); len(got) != 1 {
				t.Errorf("users named %q: %v, want one", tc.named, got)
			}
			if tc.sent != tc.named {
				if got := principalsNamed(t, s, tc.sent); len(got) != 0 {
					t.Errorf("users named %q as sent: %v, want none", tc.sent, got)
				}
			}
		})
	}
	st := s.store(t)
	ps, err := st.ListPrincipals(t.Context(), mustOrg(t, st))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ps {
		if err := sts.CheckDisplayText("name", p.Name); err != nil {
			t.Errorf("principal %s stored with name %q: %v", p.ID, p.Name, err)
		}
		if p.Name == "dora\uFFFD@example.com" && p.Email != "dora\u200B@example.com" {
			t.Errorf("email stored as %q, want it as sent", p.Email)
		}
	}
}

// TestOIDCFirstSignInLongNameIsCut (docs/security.md T-138): the subject
// or email a first sign-in names its user after may be longer than the
// API's limit on a name (sts.MaxNameBytes; a subject may have 255
// characters, OpenID Connect Core §2). The sign-in is not refused for it:
// the name is cut at the limit on a character boundary, after the
// characters T-135 refuses are replaced, and a subdivision flag the cut
// leaves open has its tag replaced too, so the stored name passes the
// API's rules. The email is kept as sent (it links the person), and the
// next sign-in lands in the same user.
func TestOIDCFirstSignInLongNameIsCut(t *testing.T) {
	t.Parallel()
	mail, corp := newIDP(t), newIDP(t)
	y := loopbackProviders + "web:\n  login:\n    oidc:\n"
	for _, pv := range []struct {
		id, link string
		p        *idp
	}{{"mail", "email", mail}, {"corp", "sub", corp}} {
		y += "      - id: " + pv.id + "\n        issuer: " + pv.p.URL + "\n        client_id: " + pv.p.ClientID +
			"\n        client_secret: " + pv.p.ClientSecret + "\n        link_claim: " + pv.link + "\n        organization: default\n"
	}
	s := startServer(t, y)
	const flag = "\U0001F3F4\U000E0067\U000E0062\U000E0065\U000E006E\U000E0067\U000E007F" // 28 bytes
	x190, e120 := strings.Repeat("x", 190), strings.Repeat("é", 120)
	longEmail := "a" + e120 + "@example.com" // 253 bytes; byte 200 falls inside an é
	for _, tc := range []struct {
		name, via string
		p         *idp
		claims    map[string]any
		named     string
	}{
		{"255-character sub", "corp", corp, map[string]any{"sub": strings.Repeat("s", 255)}, strings.Repeat("s", 200)},
		{"email cut inside a character", "mail", mail,
			map[string]any{"sub": "m-1", "email": longEmail, "email_verified": true}, "a" + strings.Repeat("é", 99)},
		{"flag cut open", "corp", corp, map[string]any{"sub": x190 + flag}, x190 + "\U0001F3F4\uFFFD"},
		{"controls replaced, then cut", "corp", corp, map[string]any{"sub": strings.Repeat("\x01", 100) + "y"},
			strings.Repeat("\uFFFD", 66)},
		{"flag at the end of exactly 200 bytes kept", "corp", corp,
			map[string]any{"sub": strings.Repeat("z", 172) + flag}, strings.Repeat("z", 172) + flag},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for i := range 2 { // the first sign-in creates the user, the second finds it
				tc.p.signInAs(tc.claims)
				b := follower(t)
				r := signInWith(t, b, s, tc.via, "")
				if r.status != http.StatusOK || !strings.Contains(r.body, "Signed in as <strong>"+tc.named+"</strong>") || !hasSession(s, b) {
					t.Fatalf("sign-in %d: %d, want signed in as %q\n%s", i+1, r.status, tc.named, r.body)
				}
			}
			if got := principalsNamed(t, s, tc.named); len(got) != 1 {
				t.Errorf("users named %q: %v, want one", tc.named, got)
			}
		})
	}
	st := s.store(t)
	ps, err := st.ListPrincipals(t.Context(), mustOrg(t, st))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ps {
		if len(p.Name) > sts.MaxNameBytes {
			t.Errorf("principal %s stored with a name of %d bytes, want at most %d", p.ID, len(p.Name), sts.MaxNameBytes)
		}
		if err := sts.CheckDisplayText("name", p.Name); err != nil {
			t.Errorf("principal %s stored with name %q: %v", p.ID, p.Name, err)
		}
		if strings.HasPrefix(p.Name, "a"+"é") && p.Email != longEmail {
			t.Errorf("email stored as %q, want it as sent", p.Email)
		}
	}
}
