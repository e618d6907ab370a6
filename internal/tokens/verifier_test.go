package tokens_test

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/opensts/sts/internal/signer"
	"github.com/opensts/sts/internal/sts"
	"github.com/opensts/sts/internal/tokens"
)

// TestVerifyAccessTokenRejects is the attack table of docs/security.md for
// our own access tokens. Each case names the docs/security.md case it covers;
// every rejection must be sts.Unauthenticated with the generic message and
// the stated machine reason.
func TestVerifyAccessTokenRejects(t *testing.T) {
	f := newFixture(t, signer.ES256)
	other := newFixture(t, signer.ES256) // a key we never published
	rsaKeys, err := signer.NewStatic(signer.RS256)
	if err != nil {
		t.Fatal(err)
	}
	kid := f.keys.KeyID()
	now := t0.Unix()
	okHeader := fmt.Sprintf(`{"alg":"ES256","kid":%q,"typ":"at+jwt"}`, kid)
	claims := func(extra string) string {
		return fmt.Sprintf(`{"iss":%q,"sub":"alice","aud":%q,"exp":%d,"iat":%d,"nbf":%d,"jti":"j1","client_id":"c","org_id":"o","principal":"p"%s}`,
			testIssuer, testAud, now+900, now, now, extra)
	}
	claimsWith := func(iss, aud string, exp, iat, nbf int64) string {
		return fmt.Sprintf(`{"iss":%q,"sub":"alice","aud":%s,"exp":%d,"iat":%d,"nbf":%d,"jti":"j1"}`, iss, aud, exp, iat, nbf)
	}
	pubJWK, _ := f.keys.JWKS()
	pubDER, err := x509.MarshalPKIXPublicKey(f.keys.PrivateKey().Public())
	if err != nil {
		t.Fatal(err)
	}
	priv := f.keys.PrivateKey()
	valid := signRaw(t, okHeader, claims(""), priv, nil)
	vParts := strings.Split(valid, ".")
	idToken, _, err := f.issuer.MintIDToken(t.Context(), tokens.IDClaims{Subject: "alice", Audience: tokens.Audience{testAud}, Expiry: tokens.NewNumericDate(t0.Add(time.Hour))})
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name   string
		token  string
		reason string
	}{
		{"T-02 16 KiB + 1 byte", valid + strings.Repeat("A", tokens.MaxTokenSize-len(valid)+1), "token_malformed"},
		{"T-03 mostly periods", "a" + strings.Repeat(".", 100000), "token_malformed"},
		{"T-03 periods within the size cap", "a" + strings.Repeat(".", 1000), "token_malformed"},
		{"T-04 two parts", b64(okHeader) + "." + b64(claims("")), "token_malformed"},
		{"T-04 four parts", valid + ".x", "token_malformed"},
		{"T-04 five parts (JWE compact)", "a.b.c.d.e", "token_malformed"},
		{"T-28 JSON serialization", `{"payload":"x","protected":"y","signature":"z"}`, "token_malformed"},
		{"T-05 padded header", b64(okHeader) + "=." + strings.SplitN(valid, ".", 2)[1], "token_malformed"},
		{"T-11 alg none", b64(`{"alg":"none","kid":"`+kid+`","typ":"at+jwt"}`) + "." + b64(claims("")) + ".", "alg_not_allowed"},
		{"T-11 alg None", signRaw(t, `{"alg":"None","kid":"`+kid+`","typ":"at+jwt"}`, claims(""), nil, nil), "alg_not_allowed"},
		{"T-11 alg NONE", signRaw(t, `{"alg":"NONE","kid":"`+kid+`","typ":"at+jwt"}`, claims(""), nil, nil), "alg_not_allowed"},
		{"T-11 alg nOnE", signRaw(t, `{"alg":"nOnE","kid":"`+kid+`","typ":"at+jwt"}`, claims(""), nil, nil), "alg_not_allowed"},
		{"T-11 alg es256 (case)", signRaw(t, `{"alg":"es256","kid":"`+kid+`","typ":"at+jwt"}`, claims(""), priv, nil), "alg_not_allowed"},
		{"T-12 HS256 keyed with our public JWKS bytes", signRaw(t, `{"alg":"HS256","kid":"`+kid+`","typ":"at+jwt"}`, claims(""), nil, pubJWK), "alg_not_allowed"},
		{"T-12 HS256 keyed with our public key DER", signRaw(t, `{"alg":"HS256","kid":"`+kid+`","typ":"at+jwt"}`, claims(""), nil, pubDER), "alg_not_allowed"},
		{"T-13 RS256 header on our ES256 kid", signRaw(t, `{"alg":"RS256","kid":"`+kid+`","typ":"at+jwt"}`, claims(""), rsaKeys.PrivateKey(), nil), "alg_not_allowed"},
		{"T-14 embedded jwk of the attacker", signRaw(t, `{"alg":"ES256","kid":"`+kid+`","typ":"at+jwt","jwk":{"kty":"EC"}}`, claims(""), other.keys.PrivateKey(), nil), "header_not_allowed"},
		{"T-15 jku header", signRaw(t, `{"alg":"ES256","kid":"`+kid+`","typ":"at+jwt","jku":"http://169.254.169.254/"}`, claims(""), priv, nil), "header_not_allowed"},
		{"T-16 unknown kid (key we never published)", signRaw(t, `{"alg":"ES256","kid":"`+other.keys.KeyID()+`","typ":"at+jwt"}`, claims(""), other.keys.PrivateKey(), nil), "kid_unknown"},
		{"T-16 path traversal kid", signRaw(t, `{"alg":"ES256","kid":"../../../../dev/null","typ":"at+jwt"}`, claims(""), priv, nil), "kid_unknown"},
		{"T-16 10 KB kid", signRaw(t, `{"alg":"ES256","kid":"`+strings.Repeat("k", 10000)+`","typ":"at+jwt"}`, claims(""), priv, nil), "kid_unknown"},
		{"T-16 numeric kid", signRaw(t, `{"alg":"ES256","kid":7,"typ":"at+jwt"}`, claims(""), priv, nil), "kid_unknown"},
		{"T-18 no kid", signRaw(t, `{"alg":"ES256","typ":"at+jwt"}`, claims(""), priv, nil), "kid_unknown"},
		{"T-19 crit exp", signRaw(t, `{"alg":"ES256","kid":"`+kid+`","typ":"at+jwt","crit":["exp"],"exp":1}`, claims(""), priv, nil), "header_not_allowed"},
		{"T-19 crit b64", signRaw(t, `{"alg":"ES256","kid":"`+kid+`","typ":"at+jwt","crit":["b64"],"b64":true}`, claims(""), priv, nil), "header_not_allowed"},
		{"T-20 typ JWT", signRaw(t, `{"alg":"ES256","kid":"`+kid+`","typ":"JWT"}`, claims(""), priv, nil), "token_type_mismatch"},
		{"T-20 typ AT+JWT", signRaw(t, `{"alg":"ES256","kid":"`+kid+`","typ":"AT+JWT"}`, claims(""), priv, nil), "token_type_mismatch"},
		{"T-20 typ application/at+jwt", signRaw(t, `{"alg":"ES256","kid":"`+kid+`","typ":"application/at+jwt"}`, claims(""), priv, nil), "token_type_mismatch"},
		{"T-20 typ missing", signRaw(t, `{"alg":"ES256","kid":"`+kid+`"}`, claims(""), priv, nil), "token_type_mismatch"},
		{"T-20 our own ID token as access token", idToken, "token_type_mismatch"},
		{"T-21 nested JWT (cty)", signRaw(t, `{"alg":"ES256","kid":"`+kid+`","typ":"at+jwt","cty":"JWT"}`, claims(""), priv, nil), "header_not_allowed"},
		{"T-23 duplicate alg header", signRaw(t, `{"alg":"ES256","alg":"none","kid":"`+kid+`","typ":"at+jwt"}`, claims(""), priv, nil), "token_malformed"},
		{"T-23 duplicate sub claim", signRaw(t, okHeader, claims(`,"sub":"admin"`), priv, nil), "token_malformed"},
		{"T-23 duplicate member inside attributes", signRaw(t, okHeader, claims(`,"attributes":{"team":"a","team":"b"}`), priv, nil), "token_malformed"},
		{"T-24 upper-case ALG header", signRaw(t, `{"ALG":"ES256","kid":"`+kid+`","typ":"at+jwt"}`, claims(""), priv, nil), "header_not_allowed"},
		{"T-24 EXP instead of exp", signRaw(t, okHeader, strings.Replace(claims(""), `"exp"`, `"EXP"`, 1), priv, nil), "token_malformed"},
		{"T-27 trailing garbage after claims", signRaw(t, okHeader, claims("")+"garbage", priv, nil), "token_malformed"},
		{"T-37 exp missing", signRaw(t, okHeader, strings.Replace(claims(""), fmt.Sprintf(`"exp":%d,`, now+900), "", 1), priv, nil), "token_malformed"},
		{"T-38 expired long ago", signRaw(t, okHeader, claimsWith(testIssuer, `"`+testAud+`"`, now-3600, now-4500, now-4500), priv, nil), "token_expired"},
		{"T-38 exp + leeway == now", signRaw(t, okHeader, claimsWith(testIssuer, `"`+testAud+`"`, now-60, now-960, now-960), priv, nil), "token_expired"},
		{"T-39 lifetime of 10 years", signRaw(t, okHeader, claimsWith(testIssuer, `"`+testAud+`"`, now+10*365*86400, now, now), priv, nil), "token_lifetime_too_long"},
		{"T-40 iat in the future", signRaw(t, okHeader, claimsWith(testIssuer, `"`+testAud+`"`, now+1800, now+600, 0), priv, nil), "token_issued_in_future"},
		{"T-41 nbf beyond leeway", signRaw(t, okHeader, claimsWith(testIssuer, `"`+testAud+`"`, now+900, now, now+61), priv, nil), "token_not_yet_valid"},
		{"T-42 exp as string", signRaw(t, okHeader, strings.Replace(claims(""), fmt.Sprintf(`"exp":%d`, now+900), `"exp":"9999999999"`, 1), priv, nil), "token_malformed"},
		{"T-42 exp as float", signRaw(t, okHeader, strings.Replace(claims(""), fmt.Sprintf(`"exp":%d`, now+900), `"exp":1.7e9`, 1), priv, nil), "token_malformed"},
		{"T-42 exp 1e400", signRaw(t, okHeader, strings.Replace(claims(""), fmt.Sprintf(`"exp":%d`, now+900), `"exp":1e400`, 1), priv, nil), "token_malformed"},
		{"T-43 wrong audience", signRaw(t, okHeader, claimsWith(testIssuer, `"https://other.example.com"`, now+900, now, now), priv, nil), "audience_mismatch"},
		{"T-43 audience prefix of ours", signRaw(t, okHeader, claimsWith(testIssuer, `"https://api.example"`, now+900, now, now), priv, nil), "audience_mismatch"},
		{"T-43 empty audience array", signRaw(t, okHeader, claimsWith(testIssuer, `[]`, now+900, now, now), priv, nil), "audience_mismatch"},
		{"T-43 numeric audience member", signRaw(t, okHeader, claimsWith(testIssuer, `[1]`, now+900, now, now), priv, nil), "token_malformed"},
		{"T-44 iss with trailing slash", signRaw(t, okHeader, claimsWith(testIssuer+"/", `"`+testAud+`"`, now+900, now, now), priv, nil), "issuer_mismatch"},
		{"T-44 iss upper-case host", signRaw(t, okHeader, claimsWith("https://STS.example.com", `"`+testAud+`"`, now+900, now, now), priv, nil), "issuer_mismatch"},
		{"T-44 iss http instead of https", signRaw(t, okHeader, claimsWith("http://sts.example.com", `"`+testAud+`"`, now+900, now, now), priv, nil), "issuer_mismatch"},
		{"signature of another key under our kid", signRaw(t, okHeader, claims(""), other.keys.PrivateKey(), nil), "signature_invalid"},
		{"payload changed after signing", strings.Join([]string{strings.Split(valid, ".")[0], b64(claims(`,"scope":"admin"`)), strings.Split(valid, ".")[2]}, "."), "signature_invalid"},
		// The signature is decoded and checked by us (internal/jws), not
		// go-jose: every damaged form of it must still fail.
		{"T-65 signature truncated by one character", valid[:len(valid)-1], "token_malformed"},
		{"signature shortened to 63 bytes", vParts[0] + "." + vParts[1] + "." + b64(string(make([]byte, 63))), "signature_invalid"},
		{"empty signature", vParts[0] + "." + vParts[1] + ".", "signature_invalid"},
		{"signature with base64 padding", valid + "==", "token_malformed"},
		{"signature in the standard base64 alphabet", vParts[0] + "." + vParts[1] + ".+" + vParts[2][1:], "token_malformed"},
		{"payload with base64 padding", vParts[0] + "." + vParts[1] + "=." + vParts[2], "token_malformed"},
	}
	if _, err := f.verifier.VerifyAccessToken(t.Context(), valid, testAud); err != nil {
		t.Fatalf("control: VerifyAccessToken(valid) = %v, want nil", err)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := f.verifier.VerifyAccessToken(t.Context(), tc.token, testAud)
			if err == nil {
				t.Fatalf("VerifyAccessToken = %+v, nil; want error with reason %s", c, tc.reason)
			}
			if got := tokens.Reason(err); got != tc.reason {
				t.Errorf("Reason(%v) = %q, want %q", err, got, tc.reason)
			}
			if got := sts.ErrorCode(err); got != sts.Unauthenticated {
				t.Errorf("ErrorCode = %q, want %q", got, sts.Unauthenticated)
			}
			if got := sts.ErrorMessage(err); got != "invalid token" {
				t.Errorf("ErrorMessage = %q, want generic %q", got, "invalid token")
			}
		})
	}
}

// TestVerifyTimeBoundaries checks exp/nbf/iat at the leeway edges
// (docs/security.md T-38, T-41).
func TestVerifyTimeBoundaries(t *testing.T) {
	f := newFixture(t, signer.ES256)
	tok := f.mint(t) // iat = nbf = t0, exp = t0 + 15 min
	leeway := tokens.DefaultLeeway
	exp := t0.Add(15 * time.Minute)
	tests := []struct {
		at     time.Time
		reason string
	}{
		{t0, ""},
		{t0.Add(-leeway), ""}, // clock of the issuer a minute ahead
		{t0.Add(-leeway - time.Second), "token_not_yet_valid"},
		{exp.Add(-time.Second), ""},
		{exp, ""}, // within leeway
		{exp.Add(leeway - time.Second), ""},
		{exp.Add(leeway), "token_expired"}, // invalid on or after exp + leeway
	}
	for _, tc := range tests {
		f.clock.t = tc.at
		_, err := f.verifier.VerifyAccessToken(t.Context(), tok, testAud)
		if got := tokens.Reason(err); got != tc.reason || (tc.reason == "") != (err == nil) {
			t.Errorf("at t0%+v: VerifyAccessToken = %v (reason %q), want reason %q", tc.at.Sub(t0), err, got, tc.reason)
		}
	}
}

// revocations is a hand-written RevocationChecker for the unit table; the
// storage-backed one is tested in revocation_test.go.
type revocations func(jti, sub string, iat time.Time) (bool, error)

func (r revocations) IsRevoked(_ context.Context, c *tokens.AccessClaims) (bool, error) {
	return r(c.ID, c.Subject, c.IssuedAt.Time())
}

func (r revocations) IsRevokedAt(_ context.Context, c *tokens.AccessClaims, iat time.Time) (bool, error) {
	return r(c.ID, c.Subject, iat)
}

func TestVerifyRevocation(t *testing.T) {
	f := newFixture(t, signer.ES256)
	tok, c, err := f.issuer.MintAccessToken(t.Context(), f.claims())
	if err != nil {
		t.Fatal(err)
	}
	f.verifier.Revocations = revocations(func(jti, sub string, iat time.Time) (bool, error) {
		return jti == c.ID, nil
	})
	_, err = f.verifier.VerifyAccessToken(t.Context(), tok, testAud)
	if got := tokens.Reason(err); got != "token_revoked" {
		t.Errorf("revoked jti: Reason(%v) = %q, want token_revoked", err, got)
	}
	// A failing revocation check fails closed (docs/security.md D-07).
	f.verifier.Revocations = revocations(func(string, string, time.Time) (bool, error) {
		return false, errors.New("database is down")
	})
	_, err = f.verifier.VerifyAccessToken(t.Context(), tok, testAud)
	if sts.ErrorCode(err) != sts.Unavailable {
		t.Errorf("revocation store down: VerifyAccessToken = %v, want code %s", err, sts.Unavailable)
	}
	if strings.Contains(sts.ErrorMessage(err), "database") {
		t.Errorf("ErrorMessage leaks the cause: %q", sts.ErrorMessage(err))
	}
}

func TestVerifyAnyAudience(t *testing.T) {
	f := newFixture(t, signer.ES256)
	tok := f.mint(t)
	if _, err := f.verifier.VerifyAccessTokenAnyAudience(t.Context(), tok); err != nil {
		t.Errorf("VerifyAccessTokenAnyAudience = %v, want nil", err)
	}
	if _, err := f.verifier.VerifyAccessToken(t.Context(), tok, ""); sts.ErrorCode(err) != sts.Internal {
		t.Errorf("VerifyAccessToken(aud \"\") = %v, want an internal error (a programming mistake)", err)
	}
}
