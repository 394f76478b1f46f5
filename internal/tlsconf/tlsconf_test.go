package tlsconf

import (
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/roomcast/roomcast/internal/tlsconf/tlstest"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// serveTLS accepts TLS connections with cfg on loopback and completes each
// handshake; it returns the address.
func serveTLS(t *testing.T, cfg *tls.Config) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() {
		ln.Close()
		<-done
	})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_ = c.(*tls.Conn).Handshake()
				_, _ = io.Copy(io.Discard, c) // until the client hangs up
			}()
		}
	}()
	return ln.Addr().String()
}

// handshake connects with client and returns the server certificate's
// serial number.
func handshake(addr string, client *tls.Config) (*big.Int, error) {
	d := &net.Dialer{Timeout: 5 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", addr, client)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	// TLS 1.3 reports a refused client certificate only on the first read;
	// a served client's read times out, as the server sends nothing.
	_ = c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	var ne net.Error
	if _, err := c.Read(make([]byte, 1)); err != nil && !(errors.As(err, &ne) && ne.Timeout()) {
		return nil, err
	}
	return c.ConnectionState().PeerCertificates[0].SerialNumber, nil
}

func TestServesTheCertificateWithModernTLSOnly(t *testing.T) {
	ca := tlstest.NewCA(t)
	cert, key, serial := ca.Server(t, "server")
	r, err := New(Files{Cert: cert, Key: key}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	addr := serveTLS(t, r.Config())
	got, err := handshake(addr, &tls.Config{RootCAs: ca.Pool()})
	if err != nil || got.Cmp(serial) != 0 {
		t.Fatalf("handshake: serial %v, %v; want %v", got, err, serial)
	}
	if _, err := handshake(addr, &tls.Config{RootCAs: ca.Pool(), MaxVersion: tls.VersionTLS11}); err == nil {
		t.Fatal("a TLS 1.1 client was served")
	}
	weak := &tls.Config{RootCAs: ca.Pool(), MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA}}
	if _, err := handshake(addr, weak); err == nil {
		t.Fatal("a client offering only a CBC suite was served")
	}
}

// A certificate rotated on disk is served to new connections, without a
// restart.
func TestRotatedCertificateIsServed(t *testing.T) {
	ca := tlstest.NewCA(t)
	cert, key, first := ca.Server(t, "server")
	r, err := New(Files{Cert: cert, Key: key}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	addr := serveTLS(t, r.Config())
	if got, err := handshake(addr, &tls.Config{RootCAs: ca.Pool()}); err != nil || got.Cmp(first) != 0 {
		t.Fatalf("before the rotation: %v, %v", got, err)
	}
	_, _, second := ca.Server(t, "server") // the same files, a new certificate
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, err := handshake(addr, &tls.Config{RootCAs: ca.Pool()})
		if err == nil && got.Cmp(second) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the rotation the server still presents %v (%v), want %v", got, err, second)
		}
		time.Sleep(50 * time.Millisecond) // polling with a deadline
	}
}

// A client CA turns on client-certificate verification: a client without
// one, or with one from another CA, is refused.
func TestClientCARequiresClientCertificates(t *testing.T) {
	ca, other := tlstest.NewCA(t), tlstest.NewCA(t)
	cert, key, _ := ca.Server(t, "server")
	r, err := New(Files{Cert: cert, Key: key, CA: ca.CertFile(t)}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	addr := serveTLS(t, r.Config())
	for name, client := range map[string]*tls.Config{
		"no certificate":        {RootCAs: ca.Pool()},
		"another CA's":          {RootCAs: ca.Pool(), Certificates: []tls.Certificate{other.Client(t, "stranger")}},
		"no certificate, TLS12": {RootCAs: ca.Pool(), MaxVersion: tls.VersionTLS12},
	} {
		if _, err := handshake(addr, client); err == nil {
			t.Errorf("%s: the client was served", name)
		}
	}
	if _, err := handshake(addr, &tls.Config{RootCAs: ca.Pool(), Certificates: []tls.Certificate{ca.Client(t, "worker")}}); err != nil {
		t.Fatalf("a client with a certificate of the CA: %v", err)
	}
}

func TestBadFilesAreRefusedByName(t *testing.T) {
	ca := tlstest.NewCA(t)
	cert, key, _ := ca.Server(t, "server")
	_, otherKey, _ := ca.Server(t, "other")
	for name, f := range map[string]Files{
		"no key":            {Cert: cert},
		"missing cert":      {Cert: cert + ".missing", Key: key},
		"key of another":    {Cert: cert, Key: otherKey},
		"CA not a PEM cert": {Cert: cert, Key: key, CA: key},
	} {
		if _, err := New(f, quiet); err == nil {
			t.Errorf("%s: accepted", name)
		} else if f.Key != "" && !strings.Contains(err.Error(), f.Cert) && !strings.Contains(err.Error(), f.Key) {
			t.Errorf("%s: error %q names none of the files", name, err)
		}
	}
}
