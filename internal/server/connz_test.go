package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/roomcast/roomcast/internal/auth"
	"github.com/roomcast/roomcast/internal/client"
	"github.com/roomcast/roomcast/internal/cluster"
	"github.com/roomcast/roomcast/internal/config"
	"github.com/roomcast/roomcast/internal/connz"
	"github.com/roomcast/roomcast/internal/natstest"
	"github.com/roomcast/roomcast/internal/server"
)

// connzNode is a node that requires tokens, with the admin token in a
// file, a send queue long enough to hold a stalled client's lag for the
// whole test and a short lag threshold.
func connzNode(t *testing.T) (*server.Server, *auth.Signer, string) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "admin-token")
	const admin = "connz-admin-token-0123456789"
	writeToken(t, file, admin)
	srv, signer := authNode(t, func(c *config.Serve) {
		c.AdminTokenFile = file
		c.SendQueueMessages = 8192
		c.SendQueueBytes = 64 << 20
		c.SocketSendBuffer = 8 << 10
		c.WriteTimeout = time.Minute
		c.LagThreshold = 300 * time.Millisecond
	})
	return srv, signer, "Bearer " + admin
}

// dialAs connects as user with a receive buffer of size bytes and
// subscribes to room; it returns the connection and its token.
func dialAs(t *testing.T, srv *server.Server, signer *auth.Signer, user, room string, size int) (*client.Conn, string) {
	t.Helper()
	tok, err := signer.Sign(user, []string{"pool:read"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	d := ws.Dialer{NetDial: bufferDialer(size).DialContext}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.DialWith(ctx, d, wsURL(srv), http.Header{"Authorization": {"Bearer " + tok}})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	subscribe(t, c, room, nil)
	return c, tok
}

// getConnz fetches /connz with query and decodes it.
func getConnz(t *testing.T, srv *server.Server, authz, query string) connz.Page {
	t.Helper()
	code, body := adminGet(t, http.DefaultClient, "http://"+srv.AdminAddr()+"/connz?"+query, authz)
	if code != http.StatusOK {
		t.Fatalf("/connz?%s: %d %s", query, code, body)
	}
	var p connz.Page
	if err := json.Unmarshal([]byte(body), &p); err != nil {
		t.Fatalf("/connz?%s: %v\n%s", query, err, body)
	}
	return p
}

// stalledIn is the stalled client's entry in a page, the zero Conn if
// absent.
func stalledIn(p connz.Page) connz.Conn {
	for _, c := range p.Connections {
		if c.User == "u-stalled" {
			return c
		}
	}
	return connz.Conn{}
}

// A client that stops reading, in a room with events flowing, shows on
// /connz with its lag and its oldest wait growing, first by lag; the
// filters and pages select it or leave it out; /roomz shows its room;
// roomcast_connections_lagging counts it; no token ever shows; and the
// admin token guards both endpoints.
func TestConnzReportsAStalledClient(t *testing.T) {
	srv, signer, authz := connzNode(t)
	stalled, tok1 := dialAs(t, srv, signer, "u-stalled", "pool:lag", 8<<10)
	reader, tok2 := dialAs(t, srv, signer, "u-reader", "pool:lag", 256<<10)
	_, tok3 := dialAs(t, srv, signer, "u-idle", "pool:other", 256<<10)
	pub := newPublisher(t, srv.NATSURL())
	base := "http://" + srv.AdminAddr()

	for _, path := range []string{"/connz", "/roomz"} {
		if code, _ := adminGet(t, http.DefaultClient, base+path, ""); code != http.StatusUnauthorized {
			t.Errorf("%s without the admin token: %d, want 401", path, code)
		}
		if code, _ := adminGet(t, http.DefaultClient, base+path, authz); code != http.StatusOK {
			t.Errorf("%s with the admin token: %d, want 200", path, code)
		}
	}

	// Events of 1 KiB: far more than the stalled client's socket
	// buffers hold, far less than its queue does.
	pad := strings.Repeat("p", 1<<10)
	publish := func(from, n int) uint64 {
		var last uint64
		for i := from; i < from+n; i++ {
			last = pub.raw("pool:lag", []byte(fmt.Sprintf(`{"event":"e","data":{"n":%d,"pad":%q}}`, i, pad)))
		}
		readEvents(t, reader, n)
		return last
	}
	publish(0, 300)
	var first connz.Conn
	natstest.WaitFor(t, 10*time.Second, func() error {
		first = stalledIn(getConnz(t, srv, authz, "room=pool:lag"))
		if first.Lag == 0 || first.OldestWait == 0 {
			return fmt.Errorf("stalled client %+v: nothing queued yet", first)
		}
		return nil
	})
	head := publish(300, 300)
	natstest.WaitFor(t, 10*time.Second, func() error {
		second := stalledIn(getConnz(t, srv, authz, ""))
		if second.Lag <= first.Lag || second.OldestWait <= first.OldestWait || second.QueuedBytes <= first.QueuedBytes {
			return fmt.Errorf("stalled client: first %+v, then %+v: lag, bytes and oldest wait must grow", first, second)
		}
		if len(second.Rooms) != 1 || second.Rooms[0].Room != "pool:lag" || second.Rooms[0].Lag != second.Lag {
			return fmt.Errorf("stalled client's rooms %+v, want pool:lag with all its lag", second.Rooms)
		}
		return nil
	})

	all := getConnz(t, srv, authz, "")
	if all.Total != 3 || len(all.Connections) != 3 || all.Connections[0].User != "u-stalled" || all.Sort != "lag" || all.Limit != connz.DefaultLimit {
		t.Fatalf("/connz: %+v, want 3 connections, the stalled one first", all)
	}
	remote := all.Connections[0].Remote
	if remote != stalled.NetConn().LocalAddr().String() {
		t.Fatalf("stalled client's remote %q, want its address %q", remote, stalled.NetConn().LocalAddr())
	}
	for _, tc := range []struct {
		query string
		users []string
		total int
	}{
		{"room=pool:other", []string{"u-idle"}, 1},
		{"room=pool:lag&sort=age", []string{"u-stalled", "u-reader"}, 2},
		{"user=u-reader", []string{"u-reader"}, 1},
		{"remote=" + url.QueryEscape(remote), []string{"u-stalled"}, 1},
		{"remote=127.0.0.1&limit=1", []string{"u-stalled"}, 3},
		{"limit=1&offset=1&sort=age", []string{"u-reader"}, 3},
		{"offset=3", nil, 3},
		{"sort=queued_bytes&limit=1", []string{"u-stalled"}, 3},
		{"sort=oldest_wait&limit=1", []string{"u-stalled"}, 3},
	} {
		p := getConnz(t, srv, authz, tc.query)
		var users []string
		for _, c := range p.Connections {
			users = append(users, c.User)
		}
		if p.Total != tc.total || strings.Join(users, ",") != strings.Join(tc.users, ",") {
			t.Errorf("/connz?%s: total %d, users %v; want %d, %v", tc.query, p.Total, users, tc.total, tc.users)
		}
	}

	_, body := adminGet(t, http.DefaultClient, base+"/connz", authz)
	_, roomz := adminGet(t, http.DefaultClient, base+"/roomz", authz)
	for _, tok := range []string{tok1, tok2, tok3} {
		if strings.Contains(body, tok) || strings.Contains(roomz, tok) {
			t.Fatal("a token's raw string is in /connz or /roomz")
		}
	}
	var rooms connz.Rooms
	if err := json.Unmarshal([]byte(roomz), &rooms); err != nil {
		t.Fatalf("/roomz: %v\n%s", err, roomz)
	}
	if rooms.Total != 2 || len(rooms.Rooms) != 2 || rooms.Rooms[0].Room != "pool:lag" {
		t.Fatalf("/roomz: %+v, want pool:lag and pool:other", rooms)
	}
	if r := rooms.Rooms[0]; r.Members != 2 || r.Head != head || r.TailBytes == 0 {
		t.Fatalf("/roomz pool:lag: %+v, want 2 members, head %d, a tail", r, head)
	}

	natstest.WaitFor(t, 10*time.Second, func() error {
		if got := lagging(t, srv, authz); got != 1 {
			return fmt.Errorf("roomcast_connections_lagging %v, want 1", got)
		}
		return nil
	})

	// The cluster status carries the same figures, with events flowing
	// (to the idle client, which reads nothing but has room in its
	// socket), and the summary names the stalled client first.
	n := 1000
	natstest.WaitFor(t, 15*time.Second, func() error {
		for range 5 {
			pub.event("pool:other", "e", n)
			n++
		}
		st := srv.Cluster().Peers()[0]
		if st.Lagging != 1 || st.EventsPerSecond <= 0 || st.DeliveriesPerSecond <= 0 {
			return fmt.Errorf("cluster status %+v, want 1 lagging and events and deliveries a second", st)
		}
		return nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sums, err := cluster.Gather(ctx, srv.NATSConn(), "roomcast", 1, 5*time.Second)
	if err != nil || len(sums) != 1 {
		t.Fatalf("cluster summaries: %v, %+v", err, sums)
	}
	// The idle client may have an event in flight at the instant the
	// summary is taken, so it may be listed too, but after the stalled one.
	if sl := sums[0].Slowest; len(sl) == 0 || sl[0].User != "u-stalled" || sl[0].Lag == 0 ||
		len(sl) > 1 && sl[1].Lag >= sl[0].Lag {
		t.Fatalf("slowest connections %+v, want the stalled client first", sl)
	}
}

// lagging reads roomcast_connections_lagging from /metrics.
func lagging(t *testing.T, srv *server.Server, authz string) float64 {
	t.Helper()
	_, body := adminGet(t, http.DefaultClient, "http://"+srv.AdminAddr()+"/metrics", authz)
	for _, line := range strings.Split(body, "\n") {
		if strings.HasPrefix(line, "roomcast_connections_lagging{") {
			var v float64
			if _, err := fmt.Sscan(line[strings.LastIndexByte(line, ' ')+1:], &v); err == nil {
				return v
			}
		}
	}
	return -1
}

// A bad /connz query is answered 400 with what is wrong; so is any query
// of /roomz, which takes none.
func TestConnzRefusesBadQueries(t *testing.T) {
	srv := startNode(t, nil, nil)
	base := "http://" + srv.AdminAddr()
	for query, want := range map[string]string{
		"/connz?sort=slow":         `sort "slow"`,
		"/connz?limit=5000":        "limit",
		"/connz?remote=nohost":     "remote",
		"/connz?password=x":        `unknown parameter "password"`,
		"/roomz?sort=lag":          "no parameters",
		"/connz?offset=1&offset=2": "given 2 times",
	} {
		code, body := adminGet(t, http.DefaultClient, base+query, "")
		if code != http.StatusBadRequest || !strings.Contains(body, want) {
			t.Errorf("%s: %d %q, want 400 saying %q", query, code, body, want)
		}
	}
}
