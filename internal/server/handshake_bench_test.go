package server_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/roomcast/roomcast/internal/client"
	"github.com/roomcast/roomcast/internal/servertest"
	"github.com/roomcast/roomcast/internal/wire"
)

// BenchmarkHandshake measures a connection's whole opening and closing on
// loopback: an anonymous node; a node with keys and the token in the
// upgrade's header; and the same with the token in an auth request, the
// path that the unauthenticated budget follows (counted at the upgrade,
// moved at the authentication). The handshake gate and the budget are on
// every one of these paths.
func BenchmarkHandshake(b *testing.B) {
	anonymous := startNode(b, nil, nil)
	keyed, signer := authNode(b, nil)
	tok := mint(b, signer, time.Hour, "pool:read")
	open := func(b *testing.B, url string, h http.Header, authMessage bool) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c, err := client.Dial(ctx, url, h)
		if err != nil {
			b.Fatal(err)
		}
		if authMessage {
			if err := c.Request(wire.EventAuth, "a", map[string]string{"token": tok}); err != nil {
				b.Fatal(err)
			}
			if m, err := c.Read(time.Now().Add(10 * time.Second)); err != nil || m.Type != wire.TypeResponse {
				b.Fatalf("auth: %+v %v", m, err)
			}
		}
		_ = c.Close()
	}
	b.Run("anonymous", func(b *testing.B) {
		for range b.N {
			open(b, servertest.WSURL(anonymous), nil, false)
		}
	})
	b.Run("token-in-header", func(b *testing.B) {
		h := http.Header{"Authorization": {"Bearer " + tok}}
		for range b.N {
			open(b, servertest.WSURL(keyed), h, false)
		}
	})
	b.Run("token-in-auth-request", func(b *testing.B) {
		for range b.N {
			open(b, servertest.WSURL(keyed), nil, true)
		}
	})
}
