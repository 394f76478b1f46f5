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
	"sync"
	"time"
)

// Files names the PEM files of a listener's TLS settings.
type Files struct {
	Cert string // certificate chain
	Key  string // its private key
	CA   string // client CA bundle; empty: no client certificates asked for
}

// checkEvery is how often, at most, a handshake looks whether the files
// changed: one stat per file a second, however many clients connect.
const checkEvery = time.Second

// Reloader serves the current TLS settings to each handshake, reading the
// files again when their modification time or size changes. A change that
// does not load (a key written after its certificate, say) keeps the
// settings in use and is tried again on the next check.
type Reloader struct {
	// Set at construction.
	files Files
	log   *slog.Logger
	now   func() time.Time

	mu        sync.Mutex
	current   *tls.Config // guarded by mu: what handshakes get
	loaded    string      // guarded by mu: the files' stamp when current was built
	failed    string      // guarded by mu: the stamp that last failed to load, logged once
	checkedAt time.Time   // guarded by mu
}

// New loads the files; it fails when they do not make a working setting.
func New(f Files, log *slog.Logger) (*Reloader, error) {
	if f.Cert == "" || f.Key == "" {
		return nil, errors.New("TLS needs both a certificate and a key file")
	}
	r := &Reloader{files: f, log: log, now: time.Now}
	stamp, err := r.stamp()
	if err != nil {
		return nil, err
	}
	cfg, err := r.load()
	if err != nil {
		return nil, err
	}
	r.current, r.loaded, r.checkedAt = cfg, stamp, r.now()
	return r, nil
}

// Config is the listener's configuration: each handshake gets the current
// settings.
func (r *Reloader) Config() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			return r.settings(), nil
		},
	}
}

// settings returns the current settings, reloading them first when the
// files changed since the last check.
func (r *Reloader) settings() *tls.Config {
	r.mu.Lock()
	defer r.mu.Unlock()
	if now := r.now(); now.Sub(r.checkedAt) >= checkEvery {
		r.checkedAt = now
		r.reloadLocked()
	}
	return r.current
}

func (r *Reloader) reloadLocked() {
	stamp, err := r.stamp()
	if err == nil && stamp == r.loaded {
		return
	}
	var cfg *tls.Config
	if err == nil {
		cfg, err = r.load()
	}
	if err != nil {
		if stamp != r.failed {
			r.failed = stamp
			r.log.Warn("TLS files changed but do not load; serving the previous certificate", "err", err)
		}
		return
	}
	r.current, r.loaded, r.failed = cfg, stamp, ""
	r.log.Info("TLS certificate reloaded", "cert", r.files.Cert)
}

// stamp sums up the files' modification times and sizes. os.Stat follows
// symbolic links, so the swap of a Kubernetes secret's ..data link shows.
func (r *Reloader) stamp() (string, error) {
	s := ""
	for _, name := range []string{r.files.Cert, r.files.Key, r.files.CA} {
		if name == "" {
			continue
		}
		fi, err := os.Stat(name)
		if err != nil {
			return "", fmt.Errorf("TLS file: %w", err)
		}
		s += fmt.Sprintf("%s:%d:%d;", name, fi.ModTime().UnixNano(), fi.Size())
	}
	return s, nil
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
