package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"

	"github.com/roomcast/roomcast/internal/auth"
	"github.com/roomcast/roomcast/internal/config"
	"github.com/roomcast/roomcast/internal/edge"
	"github.com/roomcast/roomcast/internal/reload"
)

// verifier builds the token verifier of the configured keys, nil when none
// is configured (anonymous).
func (s *Server) verifier(ctx context.Context) (edge.Verifier, error) {
	if !s.cfg.Auth.Configured() {
		return nil, nil
	}
	return NewVerifier(ctx, s.cfg.Auth, s.log)
}

// NewVerifier builds the verifier of a's keys, as serve verifies tokens
// with them (`roomcast token verify` uses it too); a must have a key. Key
// files are read again when they change; a JWKS URL is fetched now and
// refreshed in the background until ctx ends.
func NewVerifier(ctx context.Context, a config.Auth, log *slog.Logger) (*auth.Verifier, error) {
	if !a.Configured() {
		return nil, errors.New("no key configured: set ROOMCAST_JWT_SECRET, --jwt-secret-file, --jwt-public-key or --jwks")
	}
	fixed, err := fixedKeys(a, log)
	if err != nil {
		return nil, err
	}
	src := keySources{fixed: fixed}
	if strings.HasPrefix(a.JWKS, "https://") {
		client, err := jwksClient(a.JWKSCA)
		if err != nil {
			return nil, err
		}
		j, err := auth.NewJWKSSource(ctx, a.JWKS, auth.JWKSOptions{
			Client:  client,
			OnError: func(err error) { log.Warn("JWKS refresh failed; the cached keys stay in use", "err", err) },
		})
		if err != nil {
			return nil, fmt.Errorf("--jwks: %w", err)
		}
		src.jwks = j
	}
	leeway := a.Leeway
	if leeway == 0 {
		leeway = -1 // the operator asked for none; auth's 0 means its default
	}
	return auth.NewVerifier(src, auth.Options{Issuer: a.Issuer, Audience: a.Audience, Leeway: leeway})
}

// fixedKeys are the keys of the HMAC secret, the PEM public keys and a
// JWKS file. When some come from files, they are read again when the
// files change (a rotated Kubernetes secret), at most once a second.
func fixedKeys(a config.Auth, log *slog.Logger) (func() *auth.Keys, error) {
	var files []string
	if a.SecretFile != "" {
		files = append(files, a.SecretFile)
	}
	files = append(files, a.PublicKeys...)
	jwksFile := a.JWKS != "" && !strings.HasPrefix(a.JWKS, "https://")
	if jwksFile {
		files = append(files, a.JWKS)
	}
	build := func() (*auth.Keys, error) {
		var sets []*auth.Keys
		secret := a.Secret
		if a.SecretFile != "" {
			var err error
			if secret, err = config.ReadSecretFile("--jwt-secret-file", a.SecretFile); err != nil {
				return nil, err
			}
		}
		if len(secret) > 0 {
			k, err := auth.HMACKeys(secret)
			if err != nil {
				return nil, err
			}
			sets = append(sets, k)
		}
		for _, f := range a.PublicKeys {
			k, err := auth.LoadPEMFile(f)
			if err != nil {
				return nil, fmt.Errorf("--jwt-public-key %s: %w", f, err)
			}
			sets = append(sets, k)
		}
		if jwksFile {
			k, err := auth.LoadJWKSFile(a.JWKS)
			if err != nil {
				return nil, fmt.Errorf("--jwks %s: %w", a.JWKS, err)
			}
			sets = append(sets, k)
		}
		return auth.MergeKeys(sets...), nil
	}
	if len(files) == 0 {
		k, err := build()
		return func() *auth.Keys { return k }, err
	}
	v, err := reload.New("JWT key", files, build, log)
	if err != nil {
		return nil, err
	}
	return v.Get, nil
}

// jwksClient is the HTTP client of the JWKS endpoint: trusting caFile's
// CAs when given, the system's otherwise.
func jwksClient(caFile string) (*http.Client, error) {
	if caFile == "" {
		return &http.Client{}, nil
	}
	pemData, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("--jwks-ca: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemData) {
		return nil, fmt.Errorf("--jwks-ca %s: no PEM certificate in it", caFile)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return &http.Client{Transport: tr}, nil
}

// keySources is the configured keys: fixed ones (secret, PEM files, a
// JWKS file) and, when set, a JWKS fetched over HTTPS.
type keySources struct {
	fixed func() *auth.Keys
	jwks  *auth.JWKSSource
}

// Keys implements auth.KeySource.
func (k keySources) Keys(kid string) *auth.Keys {
	if k.jwks == nil {
		return k.fixed()
	}
	return auth.MergeKeys(k.fixed(), k.jwks.Keys(kid))
}
