package auth

import (
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"hash"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Fixed keys, so that the committed seed corpus can hold tokens that
// verify and the fuzzer starts from the accepting path. Test-only values.
var (
	fuzzSecret  = []byte("roomcast-fuzz-secret-0123456789abcdef")
	fuzzEdSeed  = []byte("roomcast-fuzz-ed25519-seed-32byt")
	otherSecret = []byte("roomcast-fuzz-other-secret-0123456789")
)

// fuzzSigners returns signers for the fixed keys at testNow.
func fuzzSigners(t testing.TB) (hs, ed *Signer) {
	t.Helper()
	hs, err := NewHMACSigner(fuzzSecret, SignerOptions{Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	ed, err = NewKeySigner(ed25519.NewKeyFromSeed(fuzzEdSeed), SignerOptions{Now: clock, KeyID: "ed"})
	if err != nil {
		t.Fatal(err)
	}
	return hs, ed
}

// FuzzVerify checks that Verify never panics, always classifies its
// refusal, never echoes the token in an error, and accepts only tokens whose
// signature an independent check confirms under the configured keys: a
// token the fuzzer makes up must not verify.
func FuzzVerify(f *testing.F) {
	hsS, edS := fuzzSigners(f)
	for _, s := range []*Signer{hsS, edS} {
		tok, err := s.Sign("u1", []string{"pool:read"}, time.Hour)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(tok)
	}
	f.Add("")
	f.Add("a.b.c")

	edPriv := ed25519.NewKeyFromSeed(fuzzEdSeed)
	edKeys, err := ParseJWKS(jwksJSON(f, jwkOf(f, edPriv.Public(), "ed")))
	if err != nil {
		f.Fatal(err)
	}
	keys := MergeKeys(hmacKeys(f, fuzzSecret), edKeys)
	v, err := NewVerifier(keys, Options{Now: clock})
	if err != nil {
		f.Fatal(err)
	}
	other, err := NewVerifier(hmacKeys(f, otherSecret), Options{Now: clock})
	if err != nil {
		f.Fatal(err)
	}

	f.Fuzz(func(t *testing.T, token string) {
		c, err := v.Verify(token)
		if err != nil {
			if Reason(err) == "other" {
				t.Fatalf("unclassified error %v", err)
			}
			for _, part := range append(strings.Split(token, "."), token) {
				// Short parts can coincide with the fixed message text.
				if len(part) >= 32 && strings.Contains(err.Error(), part) {
					t.Fatalf("error %q echoes the token", err)
				}
			}
			return
		}
		if !signedByFuzzKeys(token, edPriv.Public().(ed25519.PublicKey)) {
			t.Fatalf("accepted a token the keys did not sign: %q", token)
		}
		if !c.ExpiresAt.After(testNow.Add(-DefaultLeeway)) {
			t.Fatalf("accepted a token that expired at %v", c.ExpiresAt)
		}
		if problem := strictProblem(token, c); problem != "" {
			t.Fatalf("accepted %q: %s", token, problem)
		}
		if _, err := other.Verify(token); err == nil {
			t.Fatalf("a verifier with another secret accepted %q", token)
		}
	})
}

// signedByFuzzKeys checks a token's signature without the JWT library.
func signedByFuzzKeys(token string, edPub ed25519.PublicKey) bool {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return false
	}
	hb, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		return false
	}
	// A map, as the library decodes it: a struct would match "ALG" too.
	var h map[string]any
	if json.Unmarshal(hb, &h) != nil {
		return false
	}
	alg, _ := h["alg"].(string)
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return false
	}
	input := []byte(parts[0] + "." + parts[1])
	var newHash func() hash.Hash
	switch alg {
	case "EdDSA":
		return ed25519.Verify(edPub, input, sig)
	case "HS256":
		newHash = sha256.New
	case "HS384":
		newHash = sha512.New384
	case "HS512":
		newHash = sha512.New
	default:
		return false
	}
	m := hmac.New(newHash, fuzzSecret)
	m.Write(input)
	return hmac.Equal(m.Sum(nil), sig)
}

// strictProblem checks an accepted token against RFC 7515/7519 without the
// JWT library: no crit header, claim names matched with their case, and
// exp, nbf and iat JSON numbers. It returns what is wrong, or "".
func strictProblem(token string, c *Claims) string {
	parts := strings.Split(token, ".")
	var h, p map[string]json.RawMessage
	hb, _ := base64.RawURLEncoding.DecodeString(parts[0])
	pb, _ := base64.RawURLEncoding.DecodeString(parts[1])
	if json.Unmarshal(hb, &h) != nil || json.Unmarshal(pb, &p) != nil {
		return "header or payload is not a JSON object"
	}
	if _, ok := h["crit"]; ok {
		return "a crit header, which names an extension nobody here understands"
	}
	for _, name := range []string{"exp", "nbf", "iat"} {
		// A JSON number starts with - or a digit; anything else is not one.
		if raw, ok := p[name]; ok && (len(raw) == 0 || raw[0] != '-' && (raw[0] < '0' || raw[0] > '9')) {
			return name + " is not a number"
		}
	}
	var perms []string
	_ = json.Unmarshal(p["permissions"], &perms)
	if strings.Join(perms, "\x00") != strings.Join(c.Permissions, "\x00") {
		return "permissions not taken from the claim named exactly permissions"
	}
	var user, sub string
	_ = json.Unmarshal(p["user_id"], &user)
	_ = json.Unmarshal(p["sub"], &sub)
	if user == "" {
		user = sub
	}
	if user != c.UserID {
		return "the user is not user_id, else sub"
	}
	return ""
}

// TestFuzzCorpusAccepts keeps the committed valid_* seeds valid, so the
// fuzzer keeps starting from tokens that reach the accepting path.
func TestFuzzCorpusAccepts(t *testing.T) {
	edKeys, err := ParseJWKS(jwksJSON(t, jwkOf(t, ed25519.NewKeyFromSeed(fuzzEdSeed).Public(), "ed")))
	if err != nil {
		t.Fatal(err)
	}
	v, err := NewVerifier(MergeKeys(hmacKeys(t, fuzzSecret), edKeys), Options{Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob("testdata/fuzz/FuzzVerify/valid_*")
	if err != nil || len(files) == 0 {
		t.Fatalf("no valid seeds: %v", err)
	}
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(string(data)), "\n")
		if len(lines) != 2 || lines[0] != "go test fuzz v1" {
			t.Fatalf("%s: not a go test fuzz v1 file", name)
		}
		tok, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lines[1], "string("), ")"))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if _, err := v.Verify(tok); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}
