package server_test

import (
	"crypto/tls"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/roomcast/roomcast/internal/config"
	"github.com/roomcast/roomcast/internal/natstest"
	"github.com/roomcast/roomcast/internal/tlsconf/tlstest"
)

// NATS TLS files rotate without a restart of the node: its CA file and its
// client certificate are read again at each connection to NATS. Here NATS
// comes back with a certificate of a new CA and asks for client
// certificates of that CA only; the node, whose files were replaced
// meanwhile (as a mounted Secret is), reconnects and serves events again.
// Had it kept the files it read at start, it could not verify the server,
// nor the server it.
func TestNATSTLSFilesRotateWithoutARestart(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{"ca": filepath.Join(dir, "ca.pem"), "cert": filepath.Join(dir, "edge.pem"), "key": filepath.Join(dir, "edge-key.pem")}
	// install puts a CA's files where the node reads them, as a secret is
	// updated (replace), and returns the options of a NATS server of that
	// CA.
	install := func(ca *tlstest.CA) func(*natsserver.Options) {
		cert, key, _ := ca.Peer(t, "edge")
		for name, from := range map[string]string{"ca": ca.CertFile(t), "cert": cert, "key": key} {
			b, err := os.ReadFile(from)
			if err != nil {
				t.Fatal(err)
			}
			replace(t, files[name], b)
		}
		srvCert, srvKey, _ := ca.Server(t, "nats")
		pair, err := tls.LoadX509KeyPair(srvCert, srvKey)
		if err != nil {
			t.Fatal(err)
		}
		return func(o *natsserver.Options) {
			o.TLS, o.TLSVerify = true, true
			o.TLSConfig = &tls.Config{
				Certificates: []tls.Certificate{pair},
				ClientAuth:   tls.RequireAndVerifyClientCert,
				ClientCAs:    ca.Pool(),
				MinVersion:   tls.VersionTLS12,
			}
		}
	}
	ns := natstest.RunServerWith(t, install(tlstest.NewCA(t)))
	url := "tls://" + ns.Addr().String()
	srv := startNode(t, nil, func(c *config.Serve) {
		c.NATS = config.List{url}
		c.NATSAuth.TLSCA = files["ca"]
		c.NATSAuth.TLSCert, c.NATSAuth.TLSKey = files["cert"], files["key"]
	})
	c := dial(t, srv)
	const room = "pool:rotated"
	subscribe(t, c, room, nil)
	publishOne := func() uint64 {
		t.Helper()
		nc := natstest.Connect(t, url, nats.RootCAs(files["ca"]), nats.ClientCert(files["cert"], files["key"]))
		defer nc.Close()
		return publisherOn(t, nc).event(room, "e", 1)
	}
	if seq, m := publishOne(), readEvents(t, c, 1)[0]; m.Seq != seq {
		t.Fatalf("before the rotation: seq %d, want %d", m.Seq, seq)
	}

	natstest.RestartWith(t, ns, install(tlstest.NewCA(t)))
	waitReady(t, srv.AdminAddr(), http.StatusOK)
	if seq, m := publishOne(), readEvents(t, c, 1)[0]; m.Seq != seq {
		t.Fatalf("after the rotation: seq %d, want %d", m.Seq, seq)
	}
	if got := srv.NATSConn().ConnectedUrl(); got != url {
		t.Fatalf("connected to %q, want %q", got, url)
	}
}
