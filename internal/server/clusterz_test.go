package server_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/roomcast/roomcast/internal/client"
	"github.com/roomcast/roomcast/internal/cluster"
	"github.com/roomcast/roomcast/internal/config"
	"github.com/roomcast/roomcast/internal/natstest"
	"github.com/roomcast/roomcast/internal/wire"
)

// viewSays describes a cluster view: each node's name and connections.
func viewSays(v cluster.View) string {
	var out []string
	for _, n := range v.Nodes {
		out = append(out, fmt.Sprintf("%s=%d", n.Name, n.Connections))
	}
	return strings.Join(out, ",")
}

// /clusterz on any node shows every node of the cluster with its
// connections, sorted by name, gathered over NATS; it asks for the admin
// token as /metrics does.
func TestClusterzShowsEveryNode(t *testing.T) {
	ns := natstest.RunServer(t)
	file := filepath.Join(t.TempDir(), "admin-token")
	const token = "cluster-admin-token-0123456789"
	writeToken(t, file, token)
	b := startNode(t, ns, func(c *config.Serve) { c.ServerName = "b" })
	a := startNode(t, ns, func(c *config.Serve) {
		c.ServerName = "a"
		c.AdminTokenFile = file
	})
	dial(t, b)
	dial(t, b)
	dial(t, a)
	url := "http://" + a.AdminAddr() + "/clusterz"
	httpc := &http.Client{Timeout: 10 * time.Second}
	for _, auth := range []string{"", "Bearer wrong-token-0123456789"} {
		if code, body := adminGet(t, httpc, url, auth); code != http.StatusUnauthorized {
			t.Fatalf("/clusterz with Authorization %q: %d %s, want 401", auth, code, body)
		}
	}
	natstest.WaitFor(t, 15*time.Second, func() error {
		code, body := adminGet(t, httpc, url, "Bearer "+token)
		if code != http.StatusOK {
			return fmt.Errorf("/clusterz: %d %s", code, body)
		}
		var v cluster.View
		if err := json.Unmarshal([]byte(body), &v); err != nil {
			return fmt.Errorf("/clusterz %s: %w", body, err)
		}
		if v.Node != a.Cluster().ID() {
			return fmt.Errorf("/clusterz of a says node %q, a is %q", v.Node, a.Cluster().ID())
		}
		if got := viewSays(v); got != "a=1,b=2" {
			return fmt.Errorf("/clusterz shows %s, want a=1,b=2", got)
		}
		for _, n := range v.Nodes {
			if !n.Ready || n.ID == "" || n.Started.IsZero() {
				return fmt.Errorf("node %s: %+v", n.Name, n)
			}
		}
		return nil
	})
}

// A node whose NATS is down cannot ask the others: /clusterz answers 503
// and says why.
func TestClusterzWithoutNATSIs503(t *testing.T) {
	ns := natstest.RunServer(t)
	srv := startNode(t, ns, nil)
	url := "http://" + srv.AdminAddr() + "/clusterz"
	httpc := &http.Client{Timeout: 10 * time.Second}
	if code, body := adminGet(t, httpc, url, ""); code != http.StatusOK {
		t.Fatalf("/clusterz with NATS up: %d %s", code, body)
	}
	ns.Shutdown()
	natstest.WaitFor(t, 15*time.Second, func() error {
		code, body := adminGet(t, httpc, url, "")
		if code != http.StatusServiceUnavailable || !strings.Contains(body, "NATS disconnected") {
			return fmt.Errorf("/clusterz with NATS down: %d %s, want 503 saying NATS disconnected", code, body)
		}
		return nil
	})
}

// askCluster sends a cluster request and returns the message answering it.
func askCluster(t *testing.T, c *client.Conn, id string) wire.Message {
	t.Helper()
	if err := c.Request(wire.EventCluster, id, nil); err != nil {
		t.Fatal(err)
	}
	m := read(t, c)
	if m.ID != id || m.Event != wire.EventCluster {
		t.Fatalf("cluster request %s answered by %+v (data %s)", id, m, m.Data)
	}
	return m
}

// clusterResponse decodes a cluster response's view.
func clusterResponse(t *testing.T, m wire.Message) cluster.View {
	t.Helper()
	var v cluster.View
	if m.Type != wire.TypeResponse {
		t.Fatalf("cluster: got %+v (data %s), want a response", m, m.Data)
	}
	if err := json.Unmarshal(m.Data, &v); err != nil {
		t.Fatalf("cluster data %s: %v", m.Data, err)
	}
	return v
}

// The WebSocket request cluster answers a token with admin with the same
// view as /clusterz; any other token gets FORBIDDEN, and no token
// UNAUTHENTICATED; the connection goes on after each.
func TestClusterRequestNeedsAdmin(t *testing.T) {
	srv, signer := authNode(t, func(c *config.Serve) { c.ServerName = "solo" })
	early := dial(t, srv)
	if err := early.Request(wire.EventCluster, "early", nil); err != nil {
		t.Fatal(err)
	}
	expectError(t, early, "early", wire.CodeUnauthenticated)

	reader := dialWith(t, srv, "", http.Header{"Authorization": {"Bearer " + mint(t, signer, time.Hour, "pool:read")}})
	if m := askCluster(t, reader, "no"); m.Type != wire.TypeError || !strings.Contains(string(m.Data), wire.CodeForbidden) {
		t.Fatalf("cluster for pool:read: %+v (data %s), want FORBIDDEN", m, m.Data)
	}
	admin := dialWith(t, srv, "", http.Header{"Authorization": {"Bearer " + mint(t, signer, time.Hour, "admin")}})
	v := clusterResponse(t, askCluster(t, admin, "yes"))
	if v.Node != srv.Cluster().ID() || len(v.Nodes) != 1 || v.Nodes[0].Name != "solo" || v.Nodes[0].ID != v.Node {
		t.Fatalf("cluster view %+v, want node solo alone", v)
	}
	if got := viewSays(v); got != "solo=3" {
		t.Fatalf("cluster view shows %s, want solo=3 (three connections)", got)
	}
	if err := admin.SendRaw([]byte(`{"type":"request","event":"cluster","id":"bad","data":{"channel":"pool:p1"}}`)); err != nil {
		t.Fatal(err)
	}
	expectError(t, admin, "bad", wire.CodeBadRequest)
	clusterResponse(t, askCluster(t, admin, "again"))
}

// Without auth every client may see the cluster, as it may read every
// room; the view counts the nodes sharing the NATS.
func TestClusterRequestWithoutAuth(t *testing.T) {
	ns := natstest.RunServer(t)
	a := startNode(t, ns, func(c *config.Serve) { c.ServerName = "a" })
	startNode(t, ns, func(c *config.Serve) { c.ServerName = "b" })
	c := dial(t, a)
	natstest.WaitFor(t, 15*time.Second, func() error {
		got := viewSays(clusterResponse(t, askCluster(t, c, "v")))
		if got != "a=1,b=0" {
			return fmt.Errorf("cluster view shows %s, want a=1,b=0", got)
		}
		return nil
	})
}
