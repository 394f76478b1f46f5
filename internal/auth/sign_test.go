package auth

import (
	"crypto"
	"testing"
	"time"
)

func TestSignerRoundTrip(t *testing.T) {
	k := newTestKeys(t)
	opts := SignerOptions{Issuer: "issuer-1", Audience: "roomcast", Now: clock}
	hs, err := NewHMACSigner(k.secret, opts)
	if err != nil {
		t.Fatal(err)
	}
	signers := map[string]*Signer{"HS256": hs}
	for _, priv := range []crypto.Signer{k.rsa, k.p256, k.p384, k.ed} {
		s, err := NewPEMSigner(privatePEM(t, priv), opts)
		if err != nil {
			t.Fatal(err)
		}
		signers[s.Algorithm()] = s
	}
	hs512, err := NewHMACSigner(k.secret, SignerOptions{Issuer: "issuer-1", Audience: "roomcast", Algorithm: "HS512", Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	signers["HS512"] = hs512

	for _, want := range []string{"HS256", "HS512", "RS256", "ES256", "ES384", "EdDSA"} {
		if signers[want] == nil {
			t.Fatalf("no signer for %s; have %v", want, signers)
		}
	}
	v := newVerifier(t, MergeKeys(hmacKeys(t, k.secret), pemKeys(t, k.rsa, k.p256, k.p384, k.ed)))
	for alg, s := range signers {
		tok, err := s.Sign("user-1", []string{"pool:read"}, time.Minute)
		if err != nil {
			t.Fatalf("%s: %v", alg, err)
		}
		c, err := v.Verify(tok)
		if err != nil {
			t.Fatalf("%s: %v", alg, err)
		}
		if c.UserID != "user-1" || !c.MayRead("pool", "p1") || !c.ExpiresAt.Equal(testNow.Add(time.Minute)) {
			t.Errorf("%s: claims %+v", alg, c)
		}
	}
}

func TestSignerRefuses(t *testing.T) {
	k := newTestKeys(t)
	if _, err := NewHMACSigner(k.secret[:8], SignerOptions{}); err == nil {
		t.Error("short secret accepted")
	}
	if _, err := NewHMACSigner(k.secret, SignerOptions{Algorithm: "RS256"}); err == nil {
		t.Error("RS256 with an HMAC secret accepted")
	}
	if _, err := NewKeySigner(k.p384, SignerOptions{Algorithm: "ES256"}); err == nil {
		t.Error("ES256 with a P-384 key accepted")
	}
	if _, err := NewPEMSigner(publicPEM(t, k.rsa), SignerOptions{}); err == nil {
		t.Error("public key accepted as a signing key")
	}
	s, err := NewHMACSigner(k.secret, SignerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Sign("u", nil, 0); err == nil {
		t.Error("zero ttl accepted")
	}
}
