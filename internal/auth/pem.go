package auth

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
)

// ParsePEM returns the public keys in PEM data: "PUBLIC KEY" (PKIX: RSA,
// ECDSA or Ed25519), "RSA PUBLIC KEY" (PKCS #1) and "CERTIFICATE" blocks
// (the certificate's key; its validity is not checked, it is only a
// container). Several blocks may follow each other. Private keys are
// refused: an edge node verifies, and a private key copied to every node
// is a private key leaked many times.
func ParsePEM(data []byte) (*Keys, error) {
	var entries []keyEntry
	for n := 1; ; n++ {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		pub, err := pemPublicKey(block)
		if err != nil {
			// The block type is a fixed label, never key material.
			return nil, fmt.Errorf("auth: PEM block %d (%s): %w", n, block.Type, err)
		}
		e, err := publicEntry("", pub)
		if err != nil {
			return nil, fmt.Errorf("auth: PEM block %d (%s): %w", n, block.Type, err)
		}
		entries = append(entries, e)
	}
	if len(entries) == 0 {
		return nil, errors.New("auth: no PEM public key found")
	}
	return newKeys(entries), nil
}

// LoadPEMFile reads a PEM file and parses it with ParsePEM.
func LoadPEMFile(path string) (*Keys, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("auth: reading public key: %w", err)
	}
	k, err := ParsePEM(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}

func pemPublicKey(block *pem.Block) (any, error) {
	switch block.Type {
	case "PUBLIC KEY":
		return x509.ParsePKIXPublicKey(block.Bytes)
	case "RSA PUBLIC KEY":
		return x509.ParsePKCS1PublicKey(block.Bytes)
	case "CERTIFICATE":
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, err
		}
		return cert.PublicKey, nil
	case "PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY", "ENCRYPTED PRIVATE KEY":
		return nil, errors.New("a private key; configure the public key instead")
	}
	return nil, errors.New("not a public key block")
}
