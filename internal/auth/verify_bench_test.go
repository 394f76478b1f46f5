package auth

import (
	"testing"
	"time"
)

type fixedSource struct{ k *Keys }

func (s fixedSource) Keys(string) *Keys { return s.k }

// BenchmarkVerify measures one HS256 token's verification: parsing, the
// signature and the claims, as every handshake with a token pays it.
func BenchmarkVerify(b *testing.B) {
	secret := []byte("the shared secret, thirty-two bytes or more")
	keys, err := HMACKeys(secret)
	if err != nil {
		b.Fatal(err)
	}
	v, err := NewVerifier(fixedSource{keys}, Options{})
	if err != nil {
		b.Fatal(err)
	}
	signer, err := NewHMACSigner(secret, SignerOptions{})
	if err != nil {
		b.Fatal(err)
	}
	tok, err := signer.Sign("bench", []string{"pool:read", "workflow:read:w1"}, time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for range b.N {
		if _, err := v.Verify(tok); err != nil {
			b.Fatal(err)
		}
	}
}
