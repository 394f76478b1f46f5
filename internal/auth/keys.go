package auth

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"errors"
	"fmt"
	"slices"
)

// MinHMACSecret is the shortest HMAC secret accepted. RFC 7518 section 3.2
// requires a key at least as long as the hash output; 32 bytes is that for
// HS256, and a shorter shared secret is guessable offline from any token.
const MinHMACSecret = 32

// MinRSABits is the smallest RSA modulus accepted (RFC 7518 section 3.3).
const MinRSABits = 2048

// Keys is an immutable set of verification keys. The zero Keys (or nil)
// holds no key and verifies nothing. Build one with HMACKeys, ParsePEM,
// LoadPEMFile, ParseJWKS or LoadJWKSFile, and combine several with
// MergeKeys. A *Keys is a KeySource that never changes.
type Keys struct {
	entries []keyEntry
	algs    []string // sorted, distinct; what the entries can verify
}

// keyEntry is one key and the algorithms it may verify. Each entry's key
// has exactly the Go type the JWT library's signing methods expect for its
// algorithms ([]byte for HS*, *rsa.PublicKey for RS*, *ecdsa.PublicKey for
// ES*, ed25519.PublicKey for EdDSA), which is what makes a cross-type
// verification impossible rather than merely unlikely.
type keyEntry struct {
	kid  string   // "" when the source gave none (HMAC secret, PEM)
	algs []string // algorithms this key may verify
	key  any
}

// HMACKeys returns a key set holding one HMAC secret, for HS256, HS384 and
// HS512. The secret is copied. It must be at least MinHMACSecret bytes.
func HMACKeys(secret []byte) (*Keys, error) {
	if len(secret) < MinHMACSecret {
		// The length is not secret; the bytes are never printed.
		return nil, fmt.Errorf("auth: HMAC secret is %d bytes; at least %d are required", len(secret), MinHMACSecret)
	}
	return newKeys([]keyEntry{{algs: []string{"HS256", "HS384", "HS512"}, key: slices.Clone(secret)}}), nil
}

// MergeKeys returns a key set holding the keys of all sets; nil sets are
// skipped.
func MergeKeys(sets ...*Keys) *Keys {
	var all []keyEntry
	for _, s := range sets {
		if s != nil {
			all = append(all, s.entries...)
		}
	}
	return newKeys(all)
}

func newKeys(entries []keyEntry) *Keys {
	var algs []string
	for _, e := range entries {
		algs = append(algs, e.algs...)
	}
	slices.Sort(algs)
	return &Keys{entries: entries, algs: slices.Compact(algs)}
}

// Algorithms returns the JWS algorithms the set can verify, sorted. It never
// contains "none".
func (k *Keys) Algorithms() []string {
	if k == nil {
		return nil
	}
	return slices.Clone(k.algs)
}

// Len returns the number of keys in the set.
func (k *Keys) Len() int {
	if k == nil {
		return 0
	}
	return len(k.entries)
}

// Keys implements KeySource: a static set is its own current set.
func (k *Keys) Keys(string) *Keys { return k }

// hasKID reports whether some key carries this key id.
func (k *Keys) hasKID(kid string) bool {
	if k == nil {
		return false
	}
	return slices.ContainsFunc(k.entries, func(e keyEntry) bool { return e.kid == kid })
}

// candidates returns the keys that may verify a token with this algorithm
// and key id. A token kid selects the keys with that kid; keys without a
// kid (an HMAC secret, a PEM file) are candidates for any token, because
// their issuers often set a kid the verifier was never told about.
func (k *Keys) candidates(alg, kid string) []any {
	if k == nil {
		return nil
	}
	var out []any
	for _, e := range k.entries {
		if !slices.Contains(e.algs, alg) {
			continue
		}
		if kid != "" && e.kid != "" && e.kid != kid {
			continue
		}
		out = append(out, e.key)
	}
	return out
}

// publicEntry classifies a public key and returns its entry, or an error
// for a key type or size this package does not verify with.
func publicEntry(kid string, pub any) (keyEntry, error) {
	switch p := pub.(type) {
	case *rsa.PublicKey:
		if p.N == nil || p.N.BitLen() < MinRSABits {
			return keyEntry{}, fmt.Errorf("RSA key is %d bits; at least %d are required", p.Size()*8, MinRSABits)
		}
		return keyEntry{kid: kid, algs: []string{"RS256", "RS384", "RS512"}, key: p}, nil
	case *ecdsa.PublicKey:
		// Each ES algorithm names its curve (RFC 7518 section 3.4), so a
		// P-384 key verifies ES384 only.
		alg, err := ecdsaAlg(p.Curve)
		if err != nil {
			return keyEntry{}, err
		}
		return keyEntry{kid: kid, algs: []string{alg}, key: p}, nil
	case ed25519.PublicKey:
		if len(p) != ed25519.PublicKeySize {
			return keyEntry{}, errors.New("Ed25519 key has the wrong length")
		}
		return keyEntry{kid: kid, algs: []string{"EdDSA"}, key: p}, nil
	default:
		return keyEntry{}, fmt.Errorf("unsupported public key type %T", pub)
	}
}

// ecdsaAlg returns the one JWS algorithm for a curve.
func ecdsaAlg(c elliptic.Curve) (string, error) {
	switch c {
	case elliptic.P256():
		return "ES256", nil
	case elliptic.P384():
		return "ES384", nil
	case elliptic.P521():
		return "ES512", nil
	}
	return "", errors.New("unsupported ECDSA curve (want P-256, P-384 or P-521)")
}

// restrict narrows an entry to one algorithm, as a JWK's `alg` member asks;
// an alg the key type cannot verify is an error rather than a silent widening.
func (e keyEntry) restrict(alg string) (keyEntry, error) {
	if alg == "" {
		return e, nil
	}
	if !slices.Contains(e.algs, alg) {
		return keyEntry{}, fmt.Errorf("alg %q does not fit the key type (fits %v)", alg, e.algs)
	}
	e.algs = []string{alg}
	return e, nil
}
