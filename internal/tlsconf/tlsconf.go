// Package tlsconf builds the TLS configuration of the WebSocket listener:
// TLS 1.2 at least with modern cipher suites, a certificate, and optionally
// a client CA that turns on client-certificate verification (mTLS). The
// files are read again when they change, so a rotated Kubernetes secret
// takes effect for new connections without a restart, and open
// connections are not dropped.
package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"

	"github.com/roomcast/roomcast/internal/reload"
)

// Files names the PEM files of a listener's TLS settings.
type Files struct {
	Cert string // certificate chain
	Key  string // its private key
	CA   string // client CA bundle; empty: no client certificates asked for
}

// Reloader serves the current TLS settings to each handshake, reading the
// files again when they change (package reload).
type Reloader struct {
	files    Files
	settings *reload.Value[*tls.Config]
}

// New loads the files; it fails when they do not make a working setting.
func New(f Files, log *slog.Logger) (*Reloader, error) {
	if f.Cert == "" || f.Key == "" {
		return nil, errors.New("TLS needs both a certificate and a key file")
	}
	r := &Reloader{files: f}
	files := []string{f.Cert, f.Key}
	if f.CA != "" {
		files = append(files, f.CA)
	}
	var err error
	if r.settings, err = reload.New("TLS certificate", files, r.load, log); err != nil {
		return nil, err
	}
	return r, nil
}

// Config is the listener's configuration: each handshake gets the current
// settings.
func (r *Reloader) Config() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			return r.settings.Get(), nil
		},
	}
}

// load reads the files into the settings a handshake gets.
func (r *Reloader) load() (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(r.files.Cert, r.files.Key)
	if err != nil {
		return nil, fmt.Errorf("TLS certificate %s with key %s: %w", r.files.Cert, r.files.Key, err)
	}
	cfg := &tls.Config{
		MinVersion:   tls.VersionTLS12,
		CipherSuites: modernSuites(),
		Certificates: []tls.Certificate{cert},
	}
	if r.files.CA != "" {
		pem, err := os.ReadFile(r.files.CA)
		if err != nil {
			return nil, fmt.Errorf("TLS client CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("TLS client CA %s: no PEM certificate in it", r.files.CA)
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}

// modernSuites are TLS 1.2's forward-secret AEAD suites; TLS 1.3 picks its
// own, all of them modern.
func modernSuites() []uint16 {
	return []uint16{
		tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
		tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
		tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
		tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
		tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
		tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
	}
}
