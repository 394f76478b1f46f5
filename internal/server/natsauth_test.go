package server_test

import (
	"crypto/tls"
	"strings"
	"testing"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/roomcast/roomcast/internal/config"
	"github.com/roomcast/roomcast/internal/natstest"
	"github.com/roomcast/roomcast/internal/server"
	"github.com/roomcast/roomcast/internal/servertest"
	"github.com/roomcast/roomcast/internal/tlsconf/tlstest"
)

// A node connects to a NATS that requires TLS (with the node's CA) and a
// token, and serves events from it.
func TestNATSWithTLSAndToken(t *testing.T) {
	ca := tlstest.NewCA(t)
	cert, key, _ := ca.Server(t, "nats")
	pair, err := tls.LoadX509KeyPair(cert, key)
	if err != nil {
		t.Fatal(err)
	}
	const token = "a-nats-token"
	ns := natstest.RunServerWith(t, func(o *natsserver.Options) {
		o.Authorization = token
		o.TLS = true
		o.TLSConfig = &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
	})
	url := "tls://" + ns.Addr().String()
	srv := startNode(t, nil, func(c *config.Serve) {
		c.NATS = config.List{url}
		c.NATSAuth.Token = token
		c.NATSAuth.TLSCA = ca.CertFile(t)
	})
	c := dial(t, srv)
	const room = "pool:secure"
	subscribe(t, c, room, nil)
	pubConn := natstest.Connect(t, url, nats.Token(token), nats.RootCAs(ca.CertFile(t)))
	pub := publisherOn(t, pubConn)
	seq := pub.event(room, "e", 1)
	if m := readEvents(t, c, 1)[0]; m.Seq != seq {
		t.Fatalf("seq %d, want %d", m.Seq, seq)
	}
}

// NATS security settings are for an external NATS, one way at a time.
func TestNATSAuthSettingsAreChecked(t *testing.T) {
	for name, edit := range map[string]func(*config.Serve){
		"with the embedded NATS": func(c *config.Serve) { c.NATSAuth.Creds = "x.creds" },
		"two ways": func(c *config.Serve) {
			c.NATS = config.List{"nats://127.0.0.1:4222"}
			c.NATSAuth.Creds, c.NATSAuth.Token = "x.creds", "t"
		},
		"user without password": func(c *config.Serve) {
			c.NATS = config.List{"nats://127.0.0.1:4222"}
			c.NATSAuth.User = "edge"
		},
	} {
		cfg := servertest.Config(t)
		edit(cfg)
		if err := cfg.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// URLs in the node's log lines carry no credentials.
func TestNATSURLsAreRedacted(t *testing.T) {
	got := server.RedactURLs([]string{"nats://edge:s3cret@10.0.0.1:4222", "tls://TOKEN@nats.example:4222", "nats://plain:4222"})
	if strings.Contains(got, "s3cret") || strings.Contains(got, "TOKEN") || !strings.Contains(got, "nats://plain:4222") {
		t.Fatalf("redacted: %s", got)
	}
}
