package roomcast_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	roomcast "github.com/roomcast/roomcast/clients/go"
	"github.com/roomcast/roomcast/internal/auth"
	"github.com/roomcast/roomcast/internal/config"
	"github.com/roomcast/roomcast/internal/server"
	"github.com/roomcast/roomcast/internal/servertest"
)

// authNode starts a node that requires tokens signed with an HMAC secret,
// without leeway on exp, and returns a function that signs tokens of
// user u for pool:read that live ttl.
func authNode(t *testing.T) (*server.Server, func(ttl time.Duration) string) {
	t.Helper()
	secret := []byte("the shared secret, thirty-two bytes or more")
	srv := servertest.Start(t, nil, func(c *config.Serve) {
		c.Auth.Secret = secret
		c.Auth.Leeway = 0
	})
	signer, err := auth.NewHMACSigner(secret, auth.SignerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return srv, func(ttl time.Duration) string {
		tok, err := signer.Sign("u", []string{"pool:read"}, ttl)
		if err != nil {
			t.Error(err)
		}
		return tok
	}
}

// Short-lived tokens refreshed on the open connection keep it open past
// the first token's expiry and the node's 5 s of grace.
func TestTokenRefreshKeepsTheConnection(t *testing.T) {
	t.Parallel()
	srv, sign := authNode(t)
	start := time.Now()
	refresh := func(context.Context) (string, error) { return sign(2 * time.Second), nil }
	f := follow(t, roomcast.Options{URLs: []string{servertest.WSURL(srv)}, Token: sign(2 * time.Second), Refresh: refresh},
		roomcast.SubscribeOptions{}, "pool:refresh")
	f.waitSubscribed(t, 1)
	waitFor(t, "refreshes past the first token's end", func() error {
		if len(f.notices(roomcast.TokenRefreshed)) < 2 || time.Since(start) < 8*time.Second {
			return errors.New("not yet")
		}
		return nil
	})
	pub := newPublisherAt(t, srv.NATSURL())
	pub.publish("pool:refresh", "")
	f.waitEvents(t, 1)
	if d := f.notices(roomcast.Disconnected); len(d) != 0 {
		t.Fatalf("the connection ended: %+v", d)
	}
	if len(f.notices(roomcast.TokenRefreshFailed)) != 0 {
		t.Fatalf("refreshes failed: %+v", f.notices(roomcast.TokenRefreshFailed))
	}
}

// A token that expires with no refresh callback: the node closes with
// 4001 and the client stops with it. The token lives 3 s: one of 1 s
// could expire before a busy machine's first connection, which the node
// then refuses (CI saw it once).
func TestExpiredTokenStopsWith4001(t *testing.T) {
	t.Parallel()
	srv, sign := authNode(t)
	f := follow(t, roomcast.Options{URLs: []string{servertest.WSURL(srv)}, Token: sign(3 * time.Second)}, roomcast.SubscribeOptions{}, "pool:expire")
	f.waitSubscribed(t, 1)
	if se := stopError(t, f.waitStop(t)); se.Code != 4001 || !strings.Contains(se.Error(), "4001") {
		t.Fatalf("stopped with %v, want 4001", se)
	}
	if d := f.notices(roomcast.Disconnected); len(d) != 1 || d[0].Code != 4001 || strings.Contains(d[0].Text, "reconnecting") {
		t.Fatalf("disconnections %+v; want one 4001 that does not reconnect", d)
	}
}

// A refused token stops the client with 1008 without a refresh callback,
// and is replaced by the callback's when there is one.
func TestRefusedToken(t *testing.T) {
	t.Parallel()
	srv, sign := authNode(t)
	url := []string{servertest.WSURL(srv)}
	f := follow(t, roomcast.Options{URLs: url, Token: "not.a.token"}, roomcast.SubscribeOptions{}, "pool:refused")
	if se := stopError(t, f.waitStop(t)); se.Code != 1008 {
		t.Fatalf("stopped with %v, want 1008", se)
	}
	if len(f.notices(roomcast.Connected)) != 0 {
		t.Fatal("a connection whose token was refused was told as connected")
	}

	refresh := func(context.Context) (string, error) { return sign(time.Hour), nil }
	g := follow(t, roomcast.Options{URLs: url, Token: "not.a.token", Refresh: refresh}, roomcast.SubscribeOptions{}, "pool:refused")
	if s := g.waitSubscribed(t, 1); s.Room != "pool:refused" {
		t.Fatalf("subscribed %+v", s)
	}
	if d := g.notices(roomcast.Disconnected); len(d) != 1 || d[0].Code != 1008 {
		t.Fatalf("disconnections %+v; want the one 1008", d)
	}
}

// Without a token, a subscribe gets UNAUTHENTICATED: the client stops
// ("the node requires a token"), or with a refresh callback sends its
// token in an auth request and subscribes again.
func TestUnauthenticated(t *testing.T) {
	t.Parallel()
	srv, sign := authNode(t)
	url := []string{servertest.WSURL(srv)}
	f := follow(t, roomcast.Options{URLs: url}, roomcast.SubscribeOptions{}, "pool:anon")
	se := stopError(t, f.waitStop(t))
	if se.ErrorCode != "UNAUTHENTICATED" || !strings.Contains(se.Reason, "requires a token") {
		t.Fatalf("stopped with %+v", se)
	}

	refresh := func(context.Context) (string, error) { return sign(time.Hour), nil }
	g := follow(t, roomcast.Options{URLs: url, Refresh: refresh}, roomcast.SubscribeOptions{}, "pool:anon")
	if s := g.waitSubscribed(t, 1); !s.Resumed {
		t.Fatalf("subscribed %+v; want a retry (resumed)", s)
	}
	if e := g.notices(roomcast.RequestError); len(e) != 1 || e[0].Error != "UNAUTHENTICATED" || e[0].Room != "pool:anon" {
		t.Fatalf("request errors %+v", e)
	}
	if len(g.notices(roomcast.TokenRefreshed)) != 1 {
		t.Fatal("the token was not told as refreshed")
	}
}
