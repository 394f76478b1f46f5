package server_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/roomcast/roomcast/internal/config"
	"github.com/roomcast/roomcast/internal/natstest"
	"github.com/roomcast/roomcast/internal/server"
	"github.com/roomcast/roomcast/internal/servertest"
	"github.com/roomcast/roomcast/internal/tlsconf/tlstest"
)

// adminGet fetches an admin URL with an Authorization header (none when
// empty) and returns the status and body.
func adminGet(t *testing.T, client *http.Client, url, authorization string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusUnauthorized && !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer ") {
		t.Errorf("401 without a Bearer challenge: %q", resp.Header.Get("WWW-Authenticate"))
	}
	return resp.StatusCode, string(body)
}

// writeToken replaces the token file as a secret is updated (replace).
func writeToken(t *testing.T, file, token string) {
	t.Helper()
	replace(t, file, []byte(token+"\n"))
}

// With --admin-token-file, metrics and profiles ask for the bearer token,
// the probes do not (the kubelet sends none), and a replaced token file
// takes over without a restart.
func TestAdminEndpointsAskForTheToken(t *testing.T) {
	file := filepath.Join(t.TempDir(), "admin-token")
	const first, second = "first-admin-token-0123456789", "second-admin-token-9876543210"
	writeToken(t, file, first)
	srv := startNode(t, nil, func(c *config.Serve) {
		c.AdminTokenFile = file
		c.Pprof = true
	})
	base := "http://" + srv.AdminAddr()
	client := &http.Client{Timeout: 10 * time.Second}
	for _, probe := range []string{"/healthz", "/readyz"} {
		if code, body := adminGet(t, client, base+probe, ""); code != http.StatusOK {
			t.Errorf("%s without a token: %d %s, want 200", probe, code, body)
		}
	}
	for _, path := range []string{"/metrics", "/debug/pprof/", "/debug/pprof/cmdline"} {
		for _, auth := range []string{"", "Bearer wrong-token-0123456789", "Basic " + first, first, "Bearer " + first[:len(first)-1]} {
			if code, _ := adminGet(t, client, base+path, auth); code != http.StatusUnauthorized {
				t.Errorf("%s with Authorization %q: %d, want 401", path, auth, code)
			}
		}
		if code, _ := adminGet(t, client, base+path, "bearer "+first); code != http.StatusOK {
			t.Errorf("%s with the token: %d, want 200", path, code)
		}
	}
	if _, body := adminGet(t, client, base+"/metrics", "Bearer "+first); !strings.Contains(body, "websocket_connections") {
		t.Errorf("/metrics with the token does not serve the metrics:\n%.300s", body)
	}

	writeToken(t, file, second)
	natstest.WaitFor(t, 10*time.Second, func() error {
		if code, _ := adminGet(t, client, base+"/metrics", "Bearer "+second); code != http.StatusOK {
			return fmt.Errorf("the new token: %d", code)
		}
		return nil
	})
	if code, _ := adminGet(t, client, base+"/metrics", "Bearer "+first); code != http.StatusUnauthorized {
		t.Errorf("the replaced token: %d, want 401", code)
	}
}

// A token file that is missing, or holds a token short enough to guess,
// stops the node at start with a message naming the flag.
func TestBadAdminTokenFilesAreRefused(t *testing.T) {
	dir := t.TempDir()
	short := filepath.Join(dir, "short")
	writeToken(t, short, "0123456789")
	for name, file := range map[string]string{"missing": filepath.Join(dir, "missing"), "short": short} {
		cfg := servertest.Config(t)
		cfg.AdminTokenFile = file
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		srv, err := server.Start(ctx, cfg, servertest.Logger())
		cancel()
		if err == nil {
			srv.Shutdown()
			t.Errorf("%s token file: the node started", name)
			continue
		}
		if !strings.Contains(err.Error(), file) {
			t.Errorf("%s token file: %v; want the file named", name, err)
		}
	}
}

// With --admin-tls-cert the admin port serves HTTPS only.
func TestAdminListenerServesTLS(t *testing.T) {
	ca := tlstest.NewCA(t)
	cert, key, _ := ca.Server(t, "admin")
	srv := startNode(t, nil, func(c *config.Serve) {
		c.AdminTLSCert, c.AdminTLSKey = cert, key
	})
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: ca.Pool(), MinVersion: tls.VersionTLS12},
	}}
	natstest.WaitFor(t, 20*time.Second, func() error {
		if code, body := adminGet(t, client, "https://"+srv.AdminAddr()+"/readyz", ""); code != http.StatusOK {
			return fmt.Errorf("/readyz over TLS: %d %s", code, body)
		}
		return nil
	})
	if code, body := adminGet(t, client, "https://"+srv.AdminAddr()+"/metrics", ""); code != http.StatusOK || !strings.Contains(body, "websocket_connections") {
		t.Errorf("/metrics over TLS: %d", code)
	}
	// Plain HTTP gets no metrics: Go's TLS server answers it with 400.
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Get("http://" + srv.AdminAddr() + "/metrics")
	if err == nil {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK || strings.Contains(string(body), "websocket_connections") {
			t.Errorf("plain HTTP to the TLS admin port: %d", resp.StatusCode)
		}
	}
}
