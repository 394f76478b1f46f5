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
