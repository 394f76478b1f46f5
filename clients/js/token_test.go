package roomcastjs_test

import (
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/roomcast/roomcast/internal/auth"
	"github.com/roomcast/roomcast/internal/bus"
	"github.com/roomcast/roomcast/internal/bus/bustest"
	"github.com/roomcast/roomcast/internal/config"
	"github.com/roomcast/roomcast/internal/servertest"
)

var secret = []byte("a roomcast.js test secret of thirty-two bytes or more")

var perms = []string{"pool:read:p1"}

// authNode starts a node that requires tokens, and returns it with a
// signer of its tokens, as of now.
func authNode(t *testing.T) (wsURL string, b *bus.Bus, sign func(now time.Time, ttl time.Duration) string) {
	t.Helper()
	node := servertest.Start(t, nil, func(c *config.Serve) { c.Auth.Secret = secret })
	sign = func(now time.Time, ttl time.Duration) string {
		t.Helper()
		s, err := auth.NewHMACSigner(secret, auth.SignerOptions{Now: func() time.Time { return now }})
		if err != nil {
			t.Fatal(err)
		}
		tok, err := s.Sign("js-user", perms, ttl)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	return servertest.WSURL(node), bustest.On(t, node.NATSConn()), sign
}

// noReconnection refuses records with more connections than want, or
// more than one disconnection.
func noReconnection(connected int) func([]record) error {
	return func(rs []record) error {
		if c, d := len(kinds(rs, "notice", "connected")), len(kinds(rs, "notice", "disconnected")); c > connected || d > 1 {
			return fmt.Errorf("%d connections and %d disconnections", c, d)
		}
		return nil
	}
}

// A token about to expire is refreshed through the refresh callback (the
// runner GETs refresh_url) and sent in an auth request on the open
// connection: past the first token's exp and the node's grace the
// connection is still the first one, and events still come.
func TestTokenRefreshKeepsTheConnection(t *testing.T) {
	t.Parallel()
	url, b, sign := authNode(t)
	var refreshes atomic.Int32
	base := site(t, map[string]http.HandlerFunc{"/refresh": func(w http.ResponseWriter, _ *http.Request) {
		refreshes.Add(1)
		fmt.Fprint(w, sign(time.Now(), time.Hour))
	}})
	// Refreshed at the latest 10 s before exp: at once, give or take the
	// second JWT times are rounded to.
	first := sign(time.Now(), 12*time.Second)
	exp := time.Now().Add(12 * time.Second)
	r := startRunner(t, base, runnerConfig{URLs: []string{url}, Token: first, RefreshURL: base + "/refresh",
		Rooms: []roomConfig{{Room: room}}})
	r.waitFor("refreshed", func(rs []record) error {
		if len(kinds(rs, "notice", "token_refreshed")) == 0 {
			return fmt.Errorf("no token_refreshed yet")
		}
		return noReconnection(1)(rs)
	})
	// The node would close with 4001 5 s after the first token's exp.
	r.hold("the connection kept past the first token's exp", exp.Add(7*time.Second), noReconnection(1))
	numbered(t, b, 1, 1)
	r.waitFor("an event after the first token's expiry", eventsAre(room, 1))
	if err := noReconnection(1)(r.records); err != nil || len(kinds(r.records, "notice", "disconnected")) != 0 {
		t.Fatalf("the connection did not last: %v\n%s", err, lines(r.records))
	}
	if n := refreshes.Load(); n != 1 {
		t.Errorf("%d refreshes, want 1 (the new token lasts an hour)", n)
	}
	logRecords(t, r)
}

// Without a refresh callback, a refused or expired token stops the
// client, with the close's code and reason, instead of reconnecting.
func TestExpiredTokenWithoutRefreshStops(t *testing.T) {
	t.Parallel()
	url, _, sign := authNode(t)
	base := site(t, nil)
	for _, tc := range []struct {
		name      string
		token     string
		code      int
		connected int
		reason    string
	}{
		{"expired before it was sent", sign(time.Now().Add(-2*time.Hour), time.Hour), 1008, 0, "expired"},
		// Long enough to be accepted however slowly the tab opens; no
		// room, whose subscribe after exp would be refused first.
		{"expired while connected", sign(time.Now(), 8*time.Second), 4001, 1, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := startRunner(t, base, runnerConfig{URLs: []string{url}, Token: tc.token, BackoffMinMS: 50, BackoffMaxMS: 100})
			r.waitFor("stopped", func(rs []record) error {
				stops := kinds(rs, "stopped", "")
				if len(stops) == 0 {
					return fmt.Errorf("not stopped yet")
				}
				if s := stops[0]; s.Code != tc.code || !strings.Contains(s.Text, tc.reason) {
					return fmt.Errorf("stopped with %d %q, want %d and %q", s.Code, s.Text, tc.code, tc.reason)
				}
				return nil
			})
			// With a 50 ms backoff, a client that went on would have
			// come back many times over.
			r.hold("no attempt after the stop", time.Now().Add(2*time.Second), func(rs []record) error {
				if len(kinds(rs, "stopped", "")) != 1 {
					return fmt.Errorf("stopped more than once")
				}
				return noReconnection(tc.connected)(rs)
			})
			logRecords(t, r)
		})
	}
}
