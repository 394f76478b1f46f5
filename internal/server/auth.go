package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"strings"

	"github.com/roomcast/roomcast/internal/auth"
	"github.com/roomcast/roomcast/internal/edge"
)

// verifier builds the token verifier of the configured keys, nil when none
// is configured (anonymous). A JWKS URL is fetched now and refreshed in the
// background until ctx ends.
func (s *Server) verifier(ctx context.Context) (edge.Verifier, error) {
	a := s.cfg.Auth
	if !a.Configured() {
		return nil, nil
	}
	var sets []*auth.Keys
	if len(a.Secret) > 0 {
		k, err := auth.HMACKeys(a.Secret)
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
	src := keySources{static: auth.MergeKeys(sets...)}
	switch {
	case strings.HasPrefix(a.JWKS, "https://"):
		client, err := jwksClient(a.JWKSCA)
		if err != nil {
			return nil, err
		}
		j, err := auth.NewJWKSSource(ctx, a.JWKS, auth.JWKSOptions{
			Client:  client,
			OnError: func(err error) { s.log.Warn("JWKS refresh failed; the cached keys stay in use", "err", err) },
		})
		if err != nil {
			return nil, fmt.Errorf("--jwks: %w", err)
		}
		src.jwks = j
	case a.JWKS != "":
		k, err := auth.LoadJWKSFile(a.JWKS)
		if err != nil {
			return nil, fmt.Errorf("--jwks %s: %w", a.JWKS, err)
		}
		src.static = auth.MergeKeys(src.static, k)
	}
	leeway := a.Leeway
	if leeway == 0 {
		leeway = -1 // the operator asked for none; auth's 0 means its default
	}
	return auth.NewVerifier(src, auth.Options{Issuer: a.Issuer, Audience: a.Audience, Leeway: leeway})
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
	static *auth.Keys
	jwks   *auth.JWKSSource
}

// Keys implements auth.KeySource.
func (k keySources) Keys(kid string) *auth.Keys {
	if k.jwks == nil {
		return k.static
	}
	return auth.MergeKeys(k.static, k.jwks.Keys(kid))
}
