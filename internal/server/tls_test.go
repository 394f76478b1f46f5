package server_test

import (
	"context"
	"crypto/tls"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/roomcast/roomcast/internal/client"
	"github.com/roomcast/roomcast/internal/config"
	"github.com/roomcast/roomcast/internal/server"
	"github.com/roomcast/roomcast/internal/tlsconf/tlstest"
)

// dialTLS connects to a node's wss:// endpoint with client's TLS settings.
func dialTLS(t *testing.T, srv *server.Server, tc *tls.Config) (*client.Conn, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.DialWith(ctx, ws.Dialer{TLSConfig: tc}, "wss://"+srv.WSAddr()+"/ws", nil)
	if err == nil {
		t.Cleanup(func() { _ = c.Close() })
	}
	return c, err
}

// A node with a certificate serves wss://; events flow as over ws://.
func TestEventsOverTLS(t *testing.T) {
	ca := tlstest.NewCA(t)
	cert, key, _ := ca.Server(t, "edge")
	srv := startNode(t, nil, func(c *config.Serve) { c.TLSCert, c.TLSKey = cert, key })
	c, err := dialTLS(t, srv, &tls.Config{RootCAs: ca.Pool()})
	if err != nil {
		t.Fatal(err)
	}
	const room = "pool:tls"
	subscribe(t, c, room, nil)
	seq := newPublisher(t, srv.NATSURL()).event(room, "e", 1)
	if m := readEvents(t, c, 1)[0]; m.Seq != seq {
		t.Fatalf("seq %d, want %d", m.Seq, seq)
	}
	if _, err := dialTLS(t, srv, &tls.Config{RootCAs: ca.Pool(), MaxVersion: tls.VersionTLS11}); err == nil {
		t.Fatal("a TLS 1.1 client was served")
	}
}

// With a client CA, only clients with a certificate it signed connect.
func TestClientCertificatesAreRequiredWithACA(t *testing.T) {
	ca := tlstest.NewCA(t)
	cert, key, _ := ca.Server(t, "edge")
	srv := startNode(t, nil, func(c *config.Serve) { c.TLSCert, c.TLSKey, c.TLSCA = cert, key, ca.CertFile(t) })
	if c, err := dialTLS(t, srv, &tls.Config{RootCAs: ca.Pool()}); err == nil {
		// TLS 1.3 may report the refusal only when the client reads.
		if _, rerr := c.Read(time.Now().Add(5 * time.Second)); rerr == nil {
			t.Fatal("a client without a certificate was served")
		}
	}
	c, err := dialTLS(t, srv, &tls.Config{RootCAs: ca.Pool(), Certificates: []tls.Certificate{ca.Client(t, "monitor")}})
	if err != nil {
		t.Fatal(err)
	}
	subscribe(t, c, "pool:mtls", nil)
}
