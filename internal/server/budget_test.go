package server_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/roomcast/roomcast/internal/client"
	"github.com/roomcast/roomcast/internal/config"
	"github.com/roomcast/roomcast/internal/natstest"
	"github.com/roomcast/roomcast/internal/server"
	"github.com/roomcast/roomcast/internal/wire"
)

// dialFrom connects a client to srv from the loopback address from (all
// of 127/8 is loopback on Linux), closed on cleanup.
func dialFrom(t *testing.T, srv *server.Server, from string, h http.Header) *client.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	d := ws.Dialer{NetDial: func(ctx context.Context, network, addr string) (net.Conn, error) {
		nd := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
		return nd.DialContext(ctx, network, addr)
	}}
	c, err := client.DialWith(ctx, d, wsURL(srv), h)
	if err != nil {
		t.Fatalf("dial from %s: %v", from, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// upgradeStatus sends a WebSocket upgrade from from with the extra header
// lines and returns the status and body of the answer; the socket is
// closed before it returns.
func upgradeStatus(t *testing.T, srv *server.Server, from, extra string) (int, string) {
	t.Helper()
	status, body, nc := sendUpgrade(t, srv, from, "/ws", srv.WSAddr(), extra)
	_ = nc.Close()
	return status, body
}

// sendUpgrade is upgradeStatus at target with the Host host, leaving the
// socket open until the test ends: an upgraded connection that sends
// nothing.
func sendUpgrade(t *testing.T, srv *server.Server, from, target, host, extra string) (int, string, net.Conn) {
	t.Helper()
	nd := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 10 * time.Second}
	nc, err := nd.Dial("tcp", srv.WSAddr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(nc, "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n%s\r\n", target, host, extra)
	resp, err := http.ReadResponse(bufio.NewReader(nc), nil)
	if err != nil {
		t.Fatalf("upgrade answer: %v", err)
	}
	var body []byte
	if resp.StatusCode != http.StatusSwitchingProtocols {
		body, _ = io.ReadAll(resp.Body)
	}
	return resp.StatusCode, string(body), nc
}

// expectRefused checks that an upgrade from from is refused with status
// and a body that says want.
func expectRefused(t *testing.T, srv *server.Server, from, extra string, status int, want string) {
	t.Helper()
	if got, body := upgradeStatus(t, srv, from, extra); got != status || !strings.Contains(body, want) {
		t.Fatalf("upgrade from %s (%q): %d %q, want %d saying %q", from, extra, got, body, status, want)
	}
}

// authenticateLater sends an auth request on c, upgraded without a token,
// and waits for its answer.
func authenticateLater(t *testing.T, c *client.Conn, tok string) {
	t.Helper()
	if err := c.Request(wire.EventAuth, "a1", map[string]string{"token": tok}); err != nil {
		t.Fatal(err)
	}
	if m := read(t, c); m.Type != wire.TypeResponse || m.ID != "a1" {
		t.Fatalf("auth answer %+v (data %s)", m, m.Data)
	}
}

// Token-less upgrades past their budget (by default a quarter of
// --max-connections) are refused with 503 and say why, while a client with
// a token still connects; a connection that authenticates, or closes,
// gives its place back.
func TestTokenlessUpgradesHaveTheirOwnBudget(t *testing.T) {
	srv, signer := authNode(t, func(c *config.Serve) { c.MaxConnections = 8 })
	tok := mint(t, signer, time.Hour, "pool:read")
	bare := []*client.Conn{dialFrom(t, srv, "127.0.0.2", nil), dialFrom(t, srv, "127.0.0.3", nil)}
	expectRefused(t, srv, "127.0.0.4", "", http.StatusServiceUnavailable, "too many connections waiting to authenticate")

	withToken := dialFrom(t, srv, "127.0.0.4", http.Header{"Authorization": {"Bearer " + tok}})
	subscribe(t, withToken, "pool:p1", nil)

	authenticateLater(t, bare[0], tok)
	later := dialFrom(t, srv, "127.0.0.4", nil) // the place bare[0] gave back
	expectRefused(t, srv, "127.0.0.4", "", http.StatusServiceUnavailable, "too many connections waiting to authenticate")
	_ = later.Close()
	natstest.WaitFor(t, 10*time.Second, func() error { // the node ends the connection a moment after the client
		if status, _ := upgradeStatus(t, srv, "127.0.0.5", ""); status != http.StatusSwitchingProtocols {
			return fmt.Errorf("a token-less upgrade: %d", status)
		}
		return nil
	})
}

// The case: on a node of --max-connections 503, as many bare
// upgrades, from several addresses, no longer keep a client with a token
// out; those past the budget are refused.
func TestBareUpgradesCannotFillTheNode(t *testing.T) {
	srv, signer := authNode(t, func(c *config.Serve) {
		c.MaxConnections = 503
		c.Auth.Timeout = time.Minute // the bare upgrades stay while the test makes 503 of them
	})
	upgraded := 0
	for i := range 503 {
		status, _, _ := sendUpgrade(t, srv, fmt.Sprintf("127.0.0.%d", 2+i%16), "/ws", srv.WSAddr(), "")
		if status == http.StatusSwitchingProtocols {
			upgraded++
		}
	}
	if upgraded != 503/4 {
		t.Errorf("%d bare upgrades of 503 went through, want the budget: a quarter of --max-connections, %d", upgraded, 503/4)
	}
	c := dialFrom(t, srv, "127.0.0.20", http.Header{"Authorization": {"Bearer " + mint(t, signer, time.Hour, "pool:read")}})
	subscribe(t, c, "pool:p1", nil)
}

// One source address may hold only --max-unauthenticated-per-source
// token-less connections; behind a proxy listed in --trusted-proxies the
// source is X-Forwarded-For's client, whose own additions are not
// believed, and from anyone else the header is ignored.
func TestTokenlessUpgradesPerSource(t *testing.T) {
	srv, _ := authNode(t, func(c *config.Serve) {
		c.MaxUnauthenticatedPerSource = 1
		c.TrustedProxies = config.List{"127.0.0.10", "10.0.0.0/8"}
	})
	dialFrom(t, srv, "127.0.0.2", nil)
	expectRefused(t, srv, "127.0.0.2", "", http.StatusServiceUnavailable, "from this address")
	dialFrom(t, srv, "127.0.0.3", nil)

	// An untrusted peer cannot pass for others by the header.
	expectRefused(t, srv, "127.0.0.2", "X-Forwarded-For: 198.51.100.9\r\n", http.StatusServiceUnavailable, "from this address")

	// Through the trusted proxy: by client, the proxies' hops skipped.
	via := func(xff string) http.Header { return http.Header{"X-Forwarded-For": {xff}} }
	dialFrom(t, srv, "127.0.0.10", via("203.0.113.5"))
	expectRefused(t, srv, "127.0.0.10", "X-Forwarded-For: 192.0.2.1, 203.0.113.5, 10.1.2.3\r\n", http.StatusServiceUnavailable, "from this address")
	dialFrom(t, srv, "127.0.0.10", via("203.0.113.5, 203.0.113.6"))
}

// Without authentication keys there is nothing to authenticate: the
// budget of token-less connections does not apply.
func TestAnonymousNodesHaveNoUnauthenticatedBudget(t *testing.T) {
	srv := startNode(t, nil, func(c *config.Serve) {
		c.MaxUnauthenticated = 1
		c.MaxUnauthenticatedPerSource = 1
	})
	for range 3 {
		subscribe(t, dialFrom(t, srv, "127.0.0.2", nil), "pool:p1", nil)
	}
}
