package server_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/roomcast/roomcast/internal/client"
	"github.com/roomcast/roomcast/internal/config"
)

// The upgrade is accepted at / and /ws only, from allowed origins only, and
// up to the connection limit.
func TestUpgradeChecks(t *testing.T) {
	srv := startNode(t, nil, func(c *config.Serve) {
		c.AllowedOrigins = config.List{"https://dash.example"}
		c.MaxConnections = 2
	})
	base := "ws://" + srv.WSAddr()
	try := func(path string, h http.Header) (*client.Conn, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return client.Dial(ctx, base+path, h)
	}

	if _, err := try("/other", nil); err == nil || !strings.Contains(err.Error(), "404") {
		t.Fatalf("upgrade at /other: %v, want a 404 refusal", err)
	}
	if _, err := try("/", http.Header{"Origin": {"https://evil.example"}}); err == nil || !strings.Contains(err.Error(), "403") {
		t.Fatalf("foreign origin: %v, want a 403 refusal", err)
	}
	for _, path := range []string{"/", "/ws?x=1"} {
		c, err := try(path, http.Header{"Origin": {"https://dash.example"}})
		if err != nil {
			t.Fatalf("upgrade at %s: %v", path, err)
		}
		t.Cleanup(func() { _ = c.Close() })
	}
	// The third connection is over the limit: refused with 503.
	if _, err := try("/", nil); err == nil || !strings.Contains(err.Error(), "503") {
		t.Fatalf("third upgrade: %v, want a 503 refusal", err)
	}
}

// Without --allowed-origins a browser page may connect from the node's own
// host and from loopback only; clients without an Origin are not browsers.
func TestDefaultOriginPolicy(t *testing.T) {
	srv := startNode(t, nil, nil)
	try := func(origin string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		h := http.Header{}
		if origin != "" {
			h.Set("Origin", origin)
		}
		c, err := client.Dial(ctx, "ws://"+srv.WSAddr()+"/ws", h)
		if err == nil {
			_ = c.Close()
		}
		return err
	}
	for _, origin := range []string{"", "http://" + srv.WSAddr(), "http://localhost:5173", "http://127.0.0.1:3000"} {
		if err := try(origin); err != nil {
			t.Errorf("origin %q refused: %v", origin, err)
		}
	}
	for _, origin := range []string{"https://evil.example", "null"} {
		if err := try(origin); err == nil || !strings.Contains(err.Error(), "403") {
			t.Errorf("origin %q: %v, want a 403 refusal", origin, err)
		}
	}
}
