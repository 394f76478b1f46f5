package bench

import (
	"context"
	"crypto/tls"
	"testing"
	"time"

	"github.com/roomcast/roomcast/internal/config"
	"github.com/roomcast/roomcast/internal/servertest"
	"github.com/roomcast/roomcast/internal/tlsconf/tlstest"
)

// The bench connects to wss:// edges with the TLS settings it is given
// (the CA of a private one), and every event arrives as over ws://;
// without them the edge's certificate is not trusted and no connection
// opens.
func TestBenchOverTLS(t *testing.T) {
	ca := tlstest.NewCA(t)
	cert, key, _ := ca.Server(t, "edge")
	srv := servertest.Start(t, nil, func(c *config.Serve) { c.TLSCert, c.TLSKey = cert, key })
	urls := []string{"wss://" + srv.WSAddr() + "/ws"}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	rep := runBench(ctx, t, Config{
		URLs: urls, NATSURL: srv.NATSURL(), TLS: &tls.Config{RootCAs: ca.Pool(), MinVersion: tls.VersionTLS12},
		Conns: 6, Rooms: 2, Rate: 20, Duration: time.Second, Grace: 15 * time.Second,
	})
	if rep.Subscribed != 6 || rep.DialFailed != 0 || rep.Expected == 0 || rep.Received != rep.Expected || rep.Lost != 0 {
		t.Fatalf("over wss://: subscribed %d, failed %d, expected %d, received %d, lost %d; want 6, 0, all",
			rep.Subscribed, rep.DialFailed, rep.Expected, rep.Received, rep.Lost)
	}

	rep, err := Run(ctx, Config{URLs: urls, NATSURL: srv.NATSURL(), Conns: 2, Rooms: 1, Rate: 20, Duration: time.Second, DialTimeout: 5 * time.Second})
	if err == nil && rep.Subscribed != 0 {
		t.Fatalf("without the CA, %d connections opened; want none", rep.Subscribed)
	}
}
