package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/roomcast/roomcast/internal/client"
	"github.com/roomcast/roomcast/internal/cluster"
	"github.com/roomcast/roomcast/internal/config"
	"github.com/roomcast/roomcast/internal/connz"
	"github.com/roomcast/roomcast/internal/natstest"
	"github.com/roomcast/roomcast/internal/server"
	"github.com/roomcast/roomcast/internal/servertest"
)

// openClients opens n WebSocket connections to srv, closed on cleanup.
func openClients(t *testing.T, srv *server.Server, n int) {
	t.Helper()
	for range n {
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		c, err := client.Dial(ctx, servertest.WSURL(srv), nil)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
	}
}

// top --json --once, asked of one edge of three on one NATS cluster (each
// edge on a different NATS server), prints one line: every edge, with its
// own number of connections.
func TestTopSeesEveryEdgeOfTheCluster(t *testing.T) {
	nc := natstest.RunClusterWith(t, 3, nil)
	var edges []*server.Server
	for i, ns := range nc.Servers {
		edges = append(edges, servertest.Start(t, ns, func(c *config.Serve) { c.ServerName = fmt.Sprintf("edge-%d", i) }))
	}
	for i, e := range edges {
		openClients(t, e, i+1)
	}
	admin := "http://" + edges[1].AdminAddr()
	var v cluster.View
	natstest.WaitFor(t, 20*time.Second, func() error {
		code, out, stderr := runCmd(t.Context(), "", "top", "--admin", admin, "--json", "--once")
		if code != 0 {
			return fmt.Errorf("top: exit %d: %s", code, stderr)
		}
		if strings.Count(out, "\n") != 1 || !strings.HasSuffix(out, "}\n") {
			return fmt.Errorf("top --json --once printed %q, want one JSON line", out)
		}
		v = cluster.View{}
		if err := json.Unmarshal([]byte(out), &v); err != nil {
			return fmt.Errorf("%s: %w", out, err)
		}
		var got []string
		for _, n := range v.Nodes {
			got = append(got, fmt.Sprintf("%s=%d", n.Name, n.Connections))
		}
		if s := strings.Join(got, ","); s != "edge-0=1,edge-1=2,edge-2=3" {
			return fmt.Errorf("top sees %s, want edge-0=1,edge-1=2,edge-2=3", s)
		}
		return nil
	})
	if v.Node != edges[1].Cluster().ID() {
		t.Fatalf("the view is from node %q, want edge-1's %q", v.Node, edges[1].Cluster().ID())
	}

	// The screen (stdout is no terminal here: no escape codes) names
	// every node.
	code, out, stderr := runCmd(t.Context(), "", "top", "--admin", admin, "--once")
	if code != 0 || strings.Contains(out, "\x1b") {
		t.Fatalf("top --once: exit %d, %q %s", code, out, stderr)
	}
	for _, want := range []string{"3 nodes", "6 connections", "NODE", "edge-0", "edge-1", "edge-2"} {
		if !strings.Contains(out, want) {
			t.Errorf("top's screen lacks %q:\n%s", want, out)
		}
	}
}

// A node with an admin token: top without it, or with another, is told
// 401 clearly and exits 1 with --once; with the right file it reads the
// view. An unreachable node is said to be one.
func TestTopAdminTokenAndUnreachable(t *testing.T) {
	dir := t.TempDir()
	good, bad := filepath.Join(dir, "good"), filepath.Join(dir, "bad")
	const token = "top-admin-token-0123456789"
	for file, tok := range map[string]string{good: token, bad: "another-token-0123456789"} {
		if err := os.WriteFile(file, []byte(tok+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	srv := servertest.Start(t, nil, func(c *config.Serve) { c.AdminTokenFile = good })
	admin := "http://" + srv.AdminAddr()
	code, _, stderr := runCmd(t.Context(), "", "top", "--admin", admin, "--once")
	if code != 1 || !strings.Contains(stderr, "401") || !strings.Contains(stderr, "--admin-token-file") {
		t.Fatalf("top without the token: exit %d, %q; want 1 and a 401 naming --admin-token-file", code, stderr)
	}
	code, _, stderr = runCmd(t.Context(), "", "top", "--admin", admin, "--admin-token-file", bad, "--once")
	if code != 1 || !strings.Contains(stderr, "401") || strings.Contains(stderr, "another-token") {
		t.Fatalf("top with another token: exit %d, %q; want 1, a 401, and no token", code, stderr)
	}
	code, out, stderr := runCmd(t.Context(), "", "top", "--admin", admin, "--admin-token-file", good, "--once", "--json")
	if code != 0 || !strings.Contains(out, `"nodes":[`) {
		t.Fatalf("top with the token: exit %d, %q %s", code, out, stderr)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	_ = ln.Close() // nothing listens there now
	code, _, stderr = runCmd(t.Context(), "", "top", "--admin", "http://"+closed, "--once")
	if code != 1 || !strings.Contains(stderr, "cannot reach the admin listener") {
		t.Fatalf("top of an unreachable node: exit %d, %q", code, stderr)
	}
}

// Refreshing, top keeps going through errors (a 401 here) and says so
// each time, until interrupted.
func TestTopKeepsRetrying(t *testing.T) {
	file := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(file, []byte("top-admin-token-0123456789"), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := servertest.Start(t, nil, func(c *config.Serve) { c.AdminTokenFile = file })
	ctx, cancel := context.WithCancel(t.Context())
	var out, errb servertest.SyncBuffer
	done := make(chan int, 1)
	go func() {
		done <- runWith(ctx, &out, &errb, "", "top", "--admin", "http://"+srv.AdminAddr(), "--json", "--interval", "100ms")
	}()
	natstest.WaitFor(t, 10*time.Second, func() error {
		if n := strings.Count(errb.String(), "401"); n < 3 {
			return fmt.Errorf("%d refreshes told of the 401: %q", n, errb.String())
		}
		return nil
	})
	cancel()
	if code := <-done; code != 0 || out.String() != "" {
		t.Fatalf("interrupted top: exit %d, printed %q", code, out.String())
	}
}

// Bad flags exit 2 with a message.
func TestTopBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"--interval", "0s"},
		{"--interval", "soon"},
		{"--admin", "127.0.0.1:9090"},
		{"--admin", "ftp://host"},
		{"--admin-token-file", "/nonexistent/token"},
		{"--tls-ca", "/nonexistent.pem"},
		{"extra"},
	} {
		code, _, stderr := runCmd(t.Context(), "", append([]string{"top"}, args...)...)
		if code != 2 || !strings.Contains(stderr, "roomcast top") {
			t.Errorf("top %q: exit %d, %q; want 2 and a message", args, code, stderr)
		}
	}
}

// A token's subject, a node's name and a reason reach the operator's
// terminal as text, never as escape sequences.
func TestTopViewPrintsNoControlCharacters(t *testing.T) {
	const esc = "\x1b[2J\x1b]0;pwned\x07"
	v := cluster.View{Node: "n1", Nodes: []cluster.Summary{{
		Status:  cluster.Status{ID: "n1", Name: "edge" + esc, Reason: "nats" + esc},
		Slowest: []connz.Conn{{Remote: "127.0.0.1:1", User: "user" + esc, Lag: 5, Rooms: []connz.Room{{Room: "pool:p1", Lag: 5}}}},
	}}}
	var b strings.Builder
	writeTopView(&b, v, time.Now())
	out := b.String()
	if strings.ContainsAny(out, "\x1b\x07") {
		t.Fatalf("top's view carries control characters: %q", out)
	}
	for _, want := range []string{"edge\uFFFD[2J", "user\uFFFD[2J", "no (nats\uFFFD[2J"} {
		if !strings.Contains(out, want) {
			t.Fatalf("top's view lacks %q: %q", want, out)
		}
	}
}
