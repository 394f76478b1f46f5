package auth

import (
	"crypto/x509"
	"encoding/pem"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func newVerifier(t testing.TB, src KeySource) *Verifier {
	t.Helper()
	v, err := NewVerifier(src, Options{Issuer: "issuer-1", Audience: "roomcast", Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// with returns valid claims with one change: a nil value deletes the claim.
func with(kv ...any) jwt.MapClaims {
	c := claims()
	for i := 0; i < len(kv); i += 2 {
		k := kv[i].(string)
		if kv[i+1] == nil {
			delete(c, k)
		} else {
			c[k] = kv[i+1]
		}
	}
	return c
}

func TestVerifyTable(t *testing.T) {
	k := newTestKeys(t)
	hs := hmacKeys(t, k.secret)
	rsaOnly := pemKeys(t, k.rsa)
	p384Only := pemKeys(t, k.p384)
	all := MergeKeys(hs, pemKeys(t, k.rsa, k.p256, k.p384, k.ed))
	other := newTestKeys(t)

	// The classic confusion attack: the RSA public key's PEM, which is
	// public, used as an HMAC secret.
	rsaPEM := publicPEM(t, k.rsa)

	// A P-384 signature under an ES256 header.
	es256ByP384 := forge(t, map[string]any{"alg": "ES256", "typ": "JWT"}, claims(), jwt.SigningMethodES384, k.p384)

	jwks, err := ParseJWKS(jwksJSON(t, jwkOf(t, k.rsa.Public(), "rsa-1"), jwkOf(t, k.ed.Public(), "ed-1")))
	if err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		name  string
		keys  *Keys
		token string
		want  string
	}{
		{"valid HS256", hs, sign(t, jwt.SigningMethodHS256, k.secret, "", claims()), "ok"},
		{"valid HS512", hs, sign(t, jwt.SigningMethodHS512, k.secret, "", claims()), "ok"},
		{"valid RS256", rsaOnly, sign(t, jwt.SigningMethodRS256, k.rsa, "", claims()), "ok"},
		{"valid ES256", all, sign(t, jwt.SigningMethodES256, k.p256, "", claims()), "ok"},
		{"valid ES384", p384Only, sign(t, jwt.SigningMethodES384, k.p384, "", claims()), "ok"},
		{"valid EdDSA", all, sign(t, jwt.SigningMethodEdDSA, k.ed, "", claims()), "ok"},
		{"valid with unknown kid on a PEM key", rsaOnly, sign(t, jwt.SigningMethodRS256, k.rsa, "whatever", claims()), "ok"},
		{"valid JWKS kid", jwks, sign(t, jwt.SigningMethodEdDSA, k.ed, "ed-1", claims()), "ok"},
		{"expired", hs, sign(t, jwt.SigningMethodHS256, k.secret, "", with("exp", testNow.Add(-time.Minute).Unix())), "expired"},
		{"expired within leeway", hs, sign(t, jwt.SigningMethodHS256, k.secret, "", with("exp", testNow.Add(-3*time.Second).Unix())), "ok"},
		{"nbf in the future", hs, sign(t, jwt.SigningMethodHS256, k.secret, "", with("nbf", testNow.Add(time.Minute).Unix())), "not_yet_valid"},
		{"nbf within leeway", hs, sign(t, jwt.SigningMethodHS256, k.secret, "", with("nbf", testNow.Add(3*time.Second).Unix())), "ok"},
		{"iat in the future", hs, sign(t, jwt.SigningMethodHS256, k.secret, "", with("iat", testNow.Add(time.Minute).Unix())), "not_yet_valid"},
		{"wrong secret", hs, sign(t, jwt.SigningMethodHS256, other.secret, "", claims()), "signature"},
		{"wrong RSA key", rsaOnly, sign(t, jwt.SigningMethodRS256, other.rsa, "", claims()), "signature"},
		{"wrong Ed25519 key", all, sign(t, jwt.SigningMethodEdDSA, other.ed, "", claims()), "signature"},
		{"alg none", all, forge(t, map[string]any{"alg": "none", "typ": "JWT"}, claims(), nil, nil), "algorithm"},
		{"alg none with a signature", all, forge(t, map[string]any{"alg": "none"}, claims(), jwt.SigningMethodHS256, k.secret), "algorithm"},
		{"alg missing", all, forge(t, map[string]any{"typ": "JWT"}, claims(), jwt.SigningMethodHS256, k.secret), "algorithm"},
		{"alg unknown", all, forge(t, map[string]any{"alg": "HS1"}, claims(), jwt.SigningMethodHS256, k.secret), "algorithm"},
		{"HS256 with the RSA public PEM, RSA-only keys", rsaOnly, sign(t, jwt.SigningMethodHS256, rsaPEM, "", claims()), "algorithm"},
		{"HS256 with the RSA public PEM, HMAC and RSA keys", MergeKeys(hs, rsaOnly), sign(t, jwt.SigningMethodHS256, rsaPEM, "", claims()), "signature"},
		{"RS256 against HMAC-only keys", hs, sign(t, jwt.SigningMethodRS256, k.rsa, "", claims()), "algorithm"},
		{"ES256 header with a P-384 signature, P-384 keys", p384Only, es256ByP384, "algorithm"},
		{"ES256 header with a P-384 signature, all keys", all, es256ByP384, "signature"},
		{"PS256 is not RS256", rsaOnly, sign(t, jwt.SigningMethodPS256, k.rsa, "", claims()), "algorithm"},
		{"wrong aud", hs, sign(t, jwt.SigningMethodHS256, k.secret, "", with("aud", "other")), "audience"},
		{"aud list containing ours", hs, sign(t, jwt.SigningMethodHS256, k.secret, "", with("aud", []string{"x", "roomcast"})), "ok"},
		{"missing aud", hs, sign(t, jwt.SigningMethodHS256, k.secret, "", with("aud", nil)), "missing_claim"},
		{"wrong iss", hs, sign(t, jwt.SigningMethodHS256, k.secret, "", with("iss", "evil")), "issuer"},
		{"missing iss", hs, sign(t, jwt.SigningMethodHS256, k.secret, "", with("iss", nil)), "missing_claim"},
		{"missing exp", hs, sign(t, jwt.SigningMethodHS256, k.secret, "", with("exp", nil)), "missing_claim"},
		{"exp not a number", hs, sign(t, jwt.SigningMethodHS256, k.secret, "", with("exp", "tomorrow")), "malformed"},
		{"permissions not a list", hs, sign(t, jwt.SigningMethodHS256, k.secret, "", with("permissions", "admin")), "malformed"},
		{"wrong kid with JWKS", jwks, sign(t, jwt.SigningMethodEdDSA, k.ed, "ed-2", claims()), "no_key"},
		{"kid of another key type", jwks, sign(t, jwt.SigningMethodEdDSA, k.ed, "rsa-1", claims()), "no_key"},
		{"oversized", hs, sign(t, jwt.SigningMethodHS256, k.secret, "", with("pad", strings.Repeat("x", DefaultMaxTokenSize))), "too_large"},
		{"garbage", hs, "not a token", "malformed"},
		{"empty", hs, "", "malformed"},
		{"three empty segments", hs, "..", "malformed"},
		{"bad base64", hs, "!!!.???.***", "malformed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := newVerifier(t, tc.keys).Verify(tc.token)
			if got := Reason(err); got != tc.want {
				t.Fatalf("Reason = %s, want %s (err: %v)", got, tc.want, err)
			}
			assertNoLeak(t, err, tc.token, k.secret)
			if err == nil && (c.UserID != "user-1" || c.ExpiresAt.IsZero()) {
				t.Errorf("claims = %+v", c)
			}
			if err != nil && c != nil {
				t.Errorf("claims %+v returned with an error", c)
			}
		})
	}
}

func TestVerifyKidNotString(t *testing.T) {
	k := newTestKeys(t)
	tok := forge(t, map[string]any{"alg": "HS256", "kid": 7}, claims(), jwt.SigningMethodHS256, k.secret)
	_, err := newVerifier(t, hmacKeys(t, k.secret)).Verify(tok)
	if Reason(err) != "malformed" {
		t.Fatalf("Reason = %s, want malformed (err: %v)", Reason(err), err)
	}
}

func TestVerifyClaims(t *testing.T) {
	k := newTestKeys(t)
	v := newVerifier(t, hmacKeys(t, k.secret))
	c, err := v.Verify(sign(t, jwt.SigningMethodHS256, k.secret, "", with("user_id", nil, "permissions", []string{"a:read", "b:read:1"})))
	if err != nil {
		t.Fatal(err)
	}
	if c.UserID != "u1" {
		t.Errorf("UserID = %q, want the sub u1 when user_id is absent", c.UserID)
	}
	if strings.Join(c.Permissions, ",") != "a:read,b:read:1" {
		t.Errorf("Permissions = %q", c.Permissions)
	}
}

func TestVerifyOptions(t *testing.T) {
	k := newTestKeys(t)
	hs := hmacKeys(t, k.secret)
	tok := sign(t, jwt.SigningMethodHS256, k.secret, "", with("iss", nil, "aud", nil, "exp", testNow.Add(-2*time.Second).Unix()))

	// No Issuer or Audience configured: neither is checked.
	lenient, err := NewVerifier(hs, Options{Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lenient.Verify(tok); err != nil {
		t.Errorf("default options: %v", err)
	}
	// A negative leeway means none: two seconds past exp is expired.
	strict, err := NewVerifier(hs, Options{Now: clock, Leeway: -1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := strict.Verify(tok); Reason(err) != "expired" {
		t.Errorf("no leeway: Reason = %s (err: %v)", Reason(err), err)
	}
	small, err := NewVerifier(hs, Options{Now: clock, MaxTokenSize: 10})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := small.Verify(tok); Reason(err) != "too_large" {
		t.Errorf("MaxTokenSize: Reason = %s", Reason(err))
	}
	empty, err := NewVerifier(&Keys{}, Options{Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	none := forge(t, map[string]any{"alg": "none"}, claims(), nil, nil)
	if _, err := empty.Verify(none); Reason(err) != "no_key" {
		t.Errorf("alg none against no keys: Reason = %s (err: %v)", Reason(err), err)
	}
	if _, err := NewVerifier(nil, Options{}); err == nil {
		t.Error("NewVerifier(nil) succeeded")
	}
}

func TestKeysRefuse(t *testing.T) {
	k := newTestKeys(t)
	if _, err := HMACKeys(make([]byte, MinHMACSecret-1)); err == nil {
		t.Error("short HMAC secret accepted")
	}
	if _, err := ParsePEM(privatePEM(t, k.rsa)); err == nil || !strings.Contains(err.Error(), "private key") {
		t.Errorf("private key PEM: err = %v", err)
	}
	if _, err := ParsePEM([]byte("nothing here")); err == nil {
		t.Error("empty PEM accepted")
	}
	// RSA PUBLIC KEY (PKCS #1) and CERTIFICATE-less forms parse.
	p1 := pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&k.rsa.PublicKey)})
	keys, err := ParsePEM(p1)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(keys.Algorithms(), ","); got != "RS256,RS384,RS512" {
		t.Errorf("RSA algorithms = %s", got)
	}
	if got := strings.Join(MergeKeys(hmacKeys(t, k.secret), pemKeys(t, k.p256, k.ed)).Algorithms(), ","); got != "ES256,EdDSA,HS256,HS384,HS512" {
		t.Errorf("merged algorithms = %s", got)
	}
	var none *Keys
	if none.Len() != 0 || none.Algorithms() != nil {
		t.Error("nil Keys is not empty")
	}
}
