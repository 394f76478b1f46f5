package server_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/roomcast/roomcast/internal/cluster"
	"github.com/roomcast/roomcast/internal/config"
	"github.com/roomcast/roomcast/internal/natstest"
	"github.com/roomcast/roomcast/internal/rebalance"
	"github.com/roomcast/roomcast/internal/server"
	"github.com/roomcast/roomcast/internal/wire"
)

// nodeSet is the nodes followers may reconnect to, which grows as the
// test starts them.
type nodeSet struct {
	mu    sync.Mutex
	nodes []*server.Server
}

func newNodeSet() *nodeSet { return &nodeSet{} }

// start starts a node named name on ns and adds it to the set.
func (s *nodeSet) start(t testing.TB, ns *natsserver.Server, name string, edit func(*config.Serve)) *server.Server {
	t.Helper()
	n := startNode(t, ns, func(c *config.Serve) {
		c.ServerName = name
		if edit != nil {
			edit(c)
		}
	})
	s.mu.Lock()
	s.nodes = append(s.nodes, n)
	s.mu.Unlock()
	return n
}

func (s *nodeSet) all() []*server.Server {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*server.Server(nil), s.nodes...)
}

// urls are the nodes' WebSocket URLs.
func (s *nodeSet) urls() []string {
	var out []string
	for _, n := range s.all() {
		out = append(out, wsURL(n))
	}
	return out
}

// waitBalanced waits until every node of the set holds its share of
// clients within the default tolerance: at most its limit, at least 80% of
// the share (what two full nodes of three leave the third).
func (s *nodeSet) waitBalanced(t testing.TB, clients int, timeout time.Duration) {
	t.Helper()
	share := float64(clients) / float64(len(s.all()))
	limit := rebalance.Limit(share, rebalance.DefaultTolerance)
	natstest.WaitFor(t, timeout, func() error {
		for _, n := range s.all() {
			if got := n.ConnCount(); got > limit || float64(got) < 0.8*share {
				return fmt.Errorf("counts %v: want each within [%.1f, %d]", s.counts(), 0.8*share, limit)
			}
		}
		return nil
	})
}

func (s *nodeSet) counts() []int {
	var out []int
	for _, n := range s.all() {
		out = append(out, n.ConnCount())
	}
	return out
}

// startFollowers starts n followers of room on the set's first node and
// waits until each has subscribed.
func startFollowers(t testing.TB, ctx context.Context, nodes *nodeSet, n int, room string) []*follower {
	t.Helper()
	fs := make([]*follower, n)
	for i := range fs {
		fs[i] = startFollower(ctx, nodes.urls, 0, room)
	}
	natstest.WaitFor(t, 20*time.Second, func() error {
		for i, f := range fs {
			if _, ok, _, _ := f.state(); !ok {
				return fmt.Errorf("follower %d not subscribed", i)
			}
		}
		return nil
	})
	return fs
}

func stopFollowers(t testing.TB, cancel context.CancelFunc, fs []*follower) {
	cancel()
	for _, f := range fs {
		f.stopped(t)
	}
}

// publishUntil publishes events 0, 1, 2, ... of room, one every 10 ms,
// until the function it returns is called, which returns how many.
func publishUntil(t *testing.T, pub *publisher, room string) (stop func() int) {
	quit, done := make(chan struct{}), make(chan int)
	go func() {
		n := 0
		defer func() { done <- n }()
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-quit:
				return
			case <-tick.C:
				if err := publishN(pub, room, n); err != nil {
					t.Error(err)
					return
				}
				n++
			}
		}
	}()
	var once sync.Once
	total := 0
	stop = func() int {
		once.Do(func() { close(quit); total = <-done })
		return total
	}
	t.Cleanup(func() { stop() })
	return stop
}

// publishN stores event n of room as publisher.event does, returning
// the error rather than failing: it runs off the test's goroutine.
func publishN(pub *publisher, room string, n int) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := pub.js.PublishMsg(ctx, &nats.Msg{
		Subject: "roomcast.rooms." + wire.MustRoom(room).Token(),
		Data:    []byte(fmt.Sprintf(`{"event":"e","data":{"n":%d}}`, n)),
	})
	return err
}

// waitStatuses waits until node has heard n statuses of the peer named
// name (each newer than the last) for which check returns nil.
func waitStatuses(t *testing.T, node *server.Server, name string, n int, check func(cluster.Member) error) {
	t.Helper()
	var last time.Time
	seen := 0
	natstest.WaitFor(t, time.Duration(n+10)*time.Second, func() error {
		for _, m := range node.Cluster().Members() {
			if m.Name != name || !m.At.After(last) {
				continue
			}
			if err := check(m); err != nil {
				return err
			}
			last = m.At
			seen++
		}
		if seen < n {
			return fmt.Errorf("%d statuses of %s, want %d", seen, name, n)
		}
		return nil
	})
}

// natsUsers returns a function building the NATS users name..., each
// with password pw-<name>, allowed everything but the subjects denied
// lists for them.
func natsUsers(names ...string) func(denied map[string][]string) []*natsserver.User {
	return func(denied map[string][]string) []*natsserver.User {
		var out []*natsserver.User
		for _, name := range names {
			u := &natsserver.User{Username: name, Password: "pw-" + name}
			if d := denied[name]; len(d) > 0 {
				u.Permissions = &natsserver.Permissions{Publish: &natsserver.SubjectPermission{Allow: []string{">"}, Deny: d}}
			}
			out = append(out, u)
		}
		return out
	}
}
