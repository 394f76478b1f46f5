package auth

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"os"
)

// jwk holds the members of a JSON Web Key (RFC 7517, 7518 section 6, RFC
// 8037) this package reads.
type jwk struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Use string `json:"use"`
	Alg string `json:"alg"`
	Crv string `json:"crv"`
	N   string `json:"n"`
	E   string `json:"e"`
	X   string `json:"x"`
	Y   string `json:"y"`
}

// ParseJWKS returns the signature keys of a JWKS document ({"keys": [...]})
// of kty RSA, EC (P-256, P-384, P-521) and OKP (Ed25519). A key's `alg`, when
// present, narrows it to that algorithm.
//
// Keys this package cannot use are skipped rather than refused, because an
// identity provider's document often carries keys for other purposes
// (`use: enc`, other curves, symmetric `oct` keys, which have no place in a
// published document): one such key must not make every token fail. The
// document is refused when no usable key remains, and the error then says
// why the last key was skipped.
func ParseJWKS(data []byte) (*Keys, error) {
	var doc struct {
		Keys []jwk `json:"keys"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		// json errors quote at most a character of the input, and a JWKS
		// holds public keys only; still, keep the message generic.
		return nil, errors.New("auth: JWKS is not a JSON object with a keys array")
	}
	var entries []keyEntry
	var last error
	for i, k := range doc.Keys {
		e, err := k.entry()
		if err != nil {
			last = fmt.Errorf("key %d (kid %.64q): %w", i, k.Kid, err)
			continue
		}
		entries = append(entries, e)
	}
	if len(entries) == 0 {
		if last == nil {
			last = errors.New("the keys array is empty")
		}
		return nil, fmt.Errorf("auth: JWKS has no usable signature key: %w", last)
	}
	return newKeys(entries), nil
}

// LoadJWKSFile reads a JWKS document from a file and parses it with
// ParseJWKS.
func LoadJWKSFile(path string) (*Keys, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("auth: reading JWKS: %w", err)
	}
	k, err := ParseJWKS(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}

func (k jwk) entry() (keyEntry, error) {
	if k.Use != "" && k.Use != "sig" {
		return keyEntry{}, fmt.Errorf("use %.16q is not sig", k.Use)
	}
	var pub any
	var err error
	switch k.Kty {
	case "RSA":
		pub, err = k.rsa()
	case "EC":
		pub, err = k.ec()
	case "OKP":
		pub, err = k.okp()
	default:
		return keyEntry{}, fmt.Errorf("unsupported kty %.16q", k.Kty)
	}
	if err != nil {
		return keyEntry{}, err
	}
	e, err := publicEntry(k.Kid, pub)
	if err != nil {
		return keyEntry{}, err
	}
	return e.restrict(k.Alg)
}

func (k jwk) rsa() (*rsa.PublicKey, error) {
	n, err := b64(k.N, "n")
	if err != nil {
		return nil, err
	}
	e, err := b64(k.E, "e")
	if err != nil {
		return nil, err
	}
	// An exponent beyond 32 bits is never legitimate and would overflow int
	// on some platforms; an even or tiny one is a broken key.
	if len(e) == 0 || len(e) > 4 {
		return nil, errors.New("RSA exponent out of range")
	}
	exp := int(new(big.Int).SetBytes(e).Int64())
	if exp < 3 || exp%2 == 0 {
		return nil, errors.New("RSA exponent out of range")
	}
	return &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: exp}, nil
}

func (k jwk) ec() (*ecdsa.PublicKey, error) {
	var curve elliptic.Curve
	var size int
	switch k.Crv {
	case "P-256":
		curve, size = elliptic.P256(), 32
	case "P-384":
		curve, size = elliptic.P384(), 48
	case "P-521":
		curve, size = elliptic.P521(), 66
	default:
		return nil, fmt.Errorf("unsupported EC curve %.16q", k.Crv)
	}
	x, err := b64(k.X, "x")
	if err != nil {
		return nil, err
	}
	y, err := b64(k.Y, "y")
	if err != nil {
		return nil, err
	}
	// RFC 7518 section 6.2.1.2: coordinates are the full octet length.
	if len(x) != size || len(y) != size {
		return nil, errors.New("EC coordinates have the wrong length")
	}
	point := append(append([]byte{4}, x...), y...)
	// ParseUncompressedPublicKey refuses points not on the curve, which
	// stops invalid-curve attacks on a hostile document.
	pub, err := ecdsa.ParseUncompressedPublicKey(curve, point)
	if err != nil {
		return nil, errors.New("EC point is not on the curve")
	}
	return pub, nil
}

func (k jwk) okp() (ed25519.PublicKey, error) {
	if k.Crv != "Ed25519" {
		return nil, fmt.Errorf("unsupported OKP curve %.16q", k.Crv)
	}
	x, err := b64(k.X, "x")
	if err != nil {
		return nil, err
	}
	if len(x) != ed25519.PublicKeySize {
		return nil, errors.New("Ed25519 key has the wrong length")
	}
	return ed25519.PublicKey(x), nil
}

// b64 decodes a base64url member without padding, as RFC 7515 section 2
// prescribes.
func b64(s, member string) ([]byte, error) {
	if s == "" {
		return nil, fmt.Errorf("member %s missing", member)
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("member %s is not base64url", member)
	}
	return b, nil
}
