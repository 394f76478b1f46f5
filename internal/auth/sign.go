package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// SignerOptions configure a Signer. All fields are optional.
type SignerOptions struct {
	// Issuer and Audience, when set, become the `iss` and `aud` claims.
	Issuer   string
	Audience string
	// KeyID, when set, becomes the `kid` header, for JWKS verifiers.
	KeyID string
	// Algorithm overrides the default for the key: HS256 for a secret,
	// RS256 for RSA; it must fit the key. ECDSA and Ed25519 keys have one
	// algorithm each (by curve, EdDSA).
	Algorithm string
	// Now is the clock, for tests; nil means time.Now.
	Now func() time.Time
}

// Signer mints tokens for the `roomcast token` command and for tests. It is
// safe for concurrent use.
type Signer struct {
	method jwt.SigningMethod
	key    any // []byte or a crypto.Signer's private key
	opts   SignerOptions
}

// NewHMACSigner returns a Signer using an HMAC secret (copied), which must
// be at least MinHMACSecret bytes.
func NewHMACSigner(secret []byte, opts SignerOptions) (*Signer, error) {
	if len(secret) < MinHMACSecret {
		return nil, fmt.Errorf("auth: HMAC secret is %d bytes; at least %d are required", len(secret), MinHMACSecret)
	}
	return newSigner([]string{"HS256", "HS384", "HS512"}, slices.Clone(secret), opts)
}

// NewPEMSigner returns a Signer using the first private key in PEM data:
// "PRIVATE KEY" (PKCS #8: RSA, ECDSA, Ed25519), "RSA PRIVATE KEY" or
// "EC PRIVATE KEY". Encrypted keys are not supported.
func NewPEMSigner(data []byte, opts SignerOptions) (*Signer, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("auth: no PEM block in private key data")
	}
	var priv any
	var err error
	switch block.Type {
	case "PRIVATE KEY":
		priv, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		priv, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		priv, err = x509.ParseECPrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("auth: PEM block %s is not a supported private key", block.Type)
	}
	if err != nil {
		// x509 errors describe the structure, not the key bytes.
		return nil, fmt.Errorf("auth: parsing private key: %w", err)
	}
	signer, ok := priv.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("auth: unsupported private key type %T", priv)
	}
	return NewKeySigner(signer, opts)
}

// NewKeySigner returns a Signer using a private key: *rsa.PrivateKey,
// *ecdsa.PrivateKey or ed25519.PrivateKey.
func NewKeySigner(priv crypto.Signer, opts SignerOptions) (*Signer, error) {
	// The public half decides the algorithms, exactly as for verification,
	// so a Signer never mints a token its own key set would refuse.
	e, err := publicEntry("", priv.Public())
	if err != nil {
		return nil, fmt.Errorf("auth: signing key: %w", err)
	}
	return newSigner(e.algs, priv, opts)
}

func newSigner(algs []string, key any, opts SignerOptions) (*Signer, error) {
	alg := opts.Algorithm
	if alg == "" {
		alg = algs[0]
	}
	if !slices.Contains(algs, alg) {
		return nil, fmt.Errorf("auth: algorithm %.16q does not fit the key (fits %v)", alg, algs)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Signer{method: jwt.GetSigningMethod(alg), key: key, opts: opts}, nil
}

// Algorithm returns the JWS algorithm the Signer uses.
func (s *Signer) Algorithm() string { return s.method.Alg() }

// Sign returns a token for userID (as `sub` and `user_id`) with the given
// permissions, issued now and expiring after ttl, which must be positive:
// a token without an expiry is one Verify refuses.
func (s *Signer) Sign(userID string, perms []string, ttl time.Duration) (string, error) {
	if ttl <= 0 {
		return "", fmt.Errorf("auth: token lifetime %v is not positive", ttl)
	}
	now := s.opts.Now()
	c := tokenClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:   userID,
			Issuer:    s.opts.Issuer,
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
		},
		UserID:      userID,
		Permissions: perms,
	}
	if s.opts.Audience != "" {
		c.Audience = jwt.ClaimStrings{s.opts.Audience}
	}
	t := jwt.NewWithClaims(s.method, c)
	if s.opts.KeyID != "" {
		t.Header["kid"] = s.opts.KeyID
	}
	signed, err := t.SignedString(s.key)
	if err != nil {
		return "", fmt.Errorf("auth: signing: %w", err)
	}
	return signed, nil
}

// Compile-time checks that the key types the Signer accepts are signers.
var (
	_ crypto.Signer = (*rsa.PrivateKey)(nil)
	_ crypto.Signer = (*ecdsa.PrivateKey)(nil)
	_ crypto.Signer = ed25519.PrivateKey(nil)
)
