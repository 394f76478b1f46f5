package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// testNow is the fixed clock of the tests.
var testNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func clock() time.Time { return testNow }

// testKeys are freshly generated keys of every supported type.
type testKeys struct {
	secret []byte
	rsa    *rsa.PrivateKey
	p256   *ecdsa.PrivateKey
	p384   *ecdsa.PrivateKey
	ed     ed25519.PrivateKey
}

func newTestKeys(t testing.TB) testKeys {
	t.Helper()
	var k testKeys
	k.secret = make([]byte, 32)
	rand.Read(k.secret)
	var err error
	if k.rsa, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		t.Fatal(err)
	}
	if k.p256, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		t.Fatal(err)
	}
	if k.p384, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader); err != nil {
		t.Fatal(err)
	}
	if _, k.ed, err = ed25519.GenerateKey(rand.Reader); err != nil {
		t.Fatal(err)
	}
	return k
}

// publicPEM returns the PKIX PEM of a private key's public half.
func publicPEM(t testing.TB, priv crypto.Signer) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// privatePEM returns the PKCS #8 PEM of a private key.
func privatePEM(t testing.TB, priv crypto.Signer) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

func pemKeys(t testing.TB, privs ...crypto.Signer) *Keys {
	t.Helper()
	var all []byte
	for _, p := range privs {
		all = append(all, publicPEM(t, p)...)
	}
	k, err := ParsePEM(all)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func hmacKeys(t testing.TB, secret []byte) *Keys {
	t.Helper()
	k, err := HMACKeys(secret)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// claims returns valid claims at testNow; edit the map for a case.
func claims() jwt.MapClaims {
	return jwt.MapClaims{
		"sub":         "u1",
		"user_id":     "user-1",
		"permissions": []string{"pool:read"},
		"iss":         "issuer-1",
		"aud":         "roomcast",
		"iat":         testNow.Unix(),
		"exp":         testNow.Add(time.Hour).Unix(),
	}
}

// sign signs c with the library directly, so tests can make tokens a Signer
// never would. kid is set when not empty.
func sign(t testing.TB, m jwt.SigningMethod, key any, kid string, c jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(m, c)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// forge builds a token with an arbitrary header, signing header.payload with
// m and key: how an attacker builds alg-confusion tokens.
func forge(t testing.TB, header map[string]any, c jwt.MapClaims, m jwt.SigningMethod, key any) string {
	t.Helper()
	h, _ := json.Marshal(header)
	p, _ := json.Marshal(c)
	input := b64url(h) + "." + b64url(p)
	if m == nil {
		return input + "."
	}
	sig, err := m.Sign(input, key)
	if err != nil {
		t.Fatal(err)
	}
	return input + "." + b64url(sig)
}

func b64url(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// jwkOf returns the JWK of a public key with a kid.
func jwkOf(t testing.TB, pub crypto.PublicKey, kid string) map[string]any {
	t.Helper()
	switch p := pub.(type) {
	case *rsa.PublicKey:
		e := big32(p.E)
		return map[string]any{"kty": "RSA", "kid": kid, "n": b64url(p.N.Bytes()), "e": b64url(e)}
	case *ecdsa.PublicKey:
		raw, err := p.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		size := (len(raw) - 1) / 2
		return map[string]any{"kty": "EC", "kid": kid, "crv": p.Curve.Params().Name,
			"x": b64url(raw[1 : 1+size]), "y": b64url(raw[1+size:])}
	case ed25519.PublicKey:
		return map[string]any{"kty": "OKP", "kid": kid, "crv": "Ed25519", "x": b64url(p)}
	}
	t.Fatalf("no JWK for %T", pub)
	return nil
}

func big32(e int) []byte {
	b := []byte{byte(e >> 24), byte(e >> 16), byte(e >> 8), byte(e)}
	for len(b) > 1 && b[0] == 0 {
		b = b[1:]
	}
	return b
}

func jwksJSON(t testing.TB, jwks ...map[string]any) []byte {
	t.Helper()
	b, err := json.Marshal(map[string]any{"keys": jwks})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// assertNoLeak fails when an error message contains the token, a segment of
// it, or a secret.
func assertNoLeak(t testing.TB, err error, token string, secrets ...[]byte) {
	t.Helper()
	if err == nil {
		return
	}
	msg := err.Error()
	for _, part := range append(strings.Split(token, "."), token) {
		if len(part) >= 8 && strings.Contains(msg, part) {
			t.Errorf("error %q contains the token or a segment of it", msg)
		}
	}
	for _, s := range secrets {
		if len(s) > 0 && strings.Contains(msg, string(s)) {
			t.Errorf("error %q contains a secret", msg)
		}
	}
}
