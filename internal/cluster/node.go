package cluster

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nuid"

	"github.com/roomcast/roomcast/internal/connz"
	"github.com/roomcast/roomcast/internal/lograte"
)

// Options configure a Node.
type Options struct {
	Conn   *nats.Conn
	Prefix string // subject prefix (--subject-prefix)
	Name   string // --server-name
	// Interval is how often the node publishes its status; 0:
	// DefaultInterval. A peer not heard from for Expiry intervals is gone.
	Interval time.Duration
	// Local reports the node's status now; the node fills ID, Name,
	// Started and At. It runs on the node's goroutine once per interval
	// and for each summary request, and must not block for long.
	Local func() Status
	// Slowest reports the node's n slowest connections, most behind
	// first; nil: summaries list none.
	Slowest func(n int) []connz.Conn
	Logger  *slog.Logger
}

// Defaults of Options, and how many of its slowest connections a node's
// summary lists.
const (
	DefaultInterval = time.Second
	Expiry          = 3
	SummarySlowest  = 10
)

// flushTimeout bounds Start's wait for NATS to take its subscriptions.
const flushTimeout = 5 * time.Second

// Node is this node's membership in the cluster: it publishes its status,
// keeps its peers', and answers summary requests. Close stops it.
type Node struct {
	// Set at construction, read-only after.
	opts    Options
	id      string
	started time.Time
	warn    *lograte.Limiter // bad peer messages, one line per minute

	// The subscriptions' handlers run on NATS's goroutines; the
	// heartbeat loop on its own, which Close stops.
	statusSub  *nats.Subscription
	summarySub *nats.Subscription
	stop       chan struct{}
	done       chan struct{}
	// answering is held (read) by each summary answer; Close takes it to
	// wait for those in progress and set closed, after which none starts.
	answering sync.RWMutex
	closed    bool // guarded by answering

	mu    sync.Mutex
	self  Status          // guarded by mu: the status last published
	peers map[string]peer // guarded by mu: other nodes by ID
}

// peer is the latest status heard from another node, and when (by this
// node's clock: peers' clocks may differ).
type peer struct {
	st    Status
	heard time.Time
}

// Start joins the cluster: it subscribes to the others' statuses and to
// summary requests, publishes its own status at once and then every
// interval.
func Start(o Options) (*Node, error) {
	if o.Interval <= 0 {
		o.Interval = DefaultInterval
	}
	n := &Node{
		opts: o, id: nuid.Next(), started: time.Now(),
		warn: lograte.New(time.Minute, nil),
		stop: make(chan struct{}), done: make(chan struct{}),
		peers: make(map[string]peer),
	}
	var err error
	if n.statusSub, err = o.Conn.Subscribe(statusSubject(o.Prefix), n.heard); err != nil {
		return nil, fmt.Errorf("cluster status subscription: %w", err)
	}
	if n.summarySub, err = o.Conn.Subscribe(summarySubject(o.Prefix), n.answer); err != nil {
		_ = n.statusSub.Unsubscribe()
		return nil, fmt.Errorf("cluster summary subscription: %w", err)
	}
	// Once Start returns, the node is a member: requests made from then
	// on reach it (a subscription is the server's only when it has read
	// it, and another connection's request may overtake it). Without NATS
	// now, the client sends the subscriptions when it reconnects: no
	// reason to fail.
	_ = o.Conn.FlushTimeout(flushTimeout)
	n.publish()
	go n.loop()
	return n, nil
}

// ID is the node's id in the cluster.
func (n *Node) ID() string { return n.id }

// Close stops publishing and answering. Peers forget the node after
// Expiry intervals; a node that drains says so before.
func (n *Node) Close() {
	select {
	case <-n.stop:
		return
	default:
	}
	close(n.stop)
	<-n.done
	_ = n.statusSub.Unsubscribe()
	_ = n.summarySub.Unsubscribe()
	// Unsubscribe does not wait for a handler already running: wait for
	// an answer in progress, which reads the node's parts (Local,
	// Slowest) that the caller is about to close.
	n.answering.Lock()
	n.closed = true
	n.answering.Unlock()
}

func (n *Node) loop() {
	defer close(n.done)
	t := time.NewTicker(n.opts.Interval)
	defer t.Stop()
	for {
		select {
		case <-n.stop:
			return
		case <-t.C:
			n.publish()
		}
	}
}

// status is the node's status now.
func (n *Node) status() Status {
	st := n.opts.Local()
	st.ID, st.Name, st.Started, st.At = n.id, n.opts.Name, n.started, time.Now()
	return st
}

// publish sends the node's status and keeps it as its own entry.
func (n *Node) publish() {
	st := n.status()
	n.mu.Lock()
	n.self = st
	n.mu.Unlock()
	b, err := json.Marshal(st)
	if err != nil {
		return // a Status always marshals
	}
	// A failed publish (NATS disconnected) is not retried: the next
	// interval's status replaces it, and peers that stop hearing from
	// this node forget it, which is the truth.
	_ = n.opts.Conn.Publish(statusSubject(n.opts.Prefix), b)
}

// heard keeps a peer's status. It runs on NATS's goroutine.
func (n *Node) heard(m *nats.Msg) {
	st, err := decodeStatus(m.Data)
	if err != nil {
		n.warnf("cluster status refused", err)
		return
	}
	if st.ID == n.id {
		return
	}
	n.mu.Lock()
	n.peers[st.ID] = peer{st: st, heard: time.Now()}
	n.mu.Unlock()
}

// Peers returns every node this one knows: itself (its status last
// published) and each peer heard from within Expiry intervals, sorted by
// name. Peers not heard from for longer are forgotten.
func (n *Node) Peers() []Status {
	ms := n.Members() // which forgets the peers not heard from
	out := make([]Status, len(ms))
	for i, m := range ms {
		out[i] = m.Status
	}
	slices.SortFunc(out, byName)
	return out
}

// byName orders nodes by name, then id.
func byName(a, b Status) int {
	if c := strings.Compare(a.Name, b.Name); c != 0 {
		return c
	}
	return strings.Compare(a.ID, b.ID)
}

// answer replies to a summary request with this node's summary. Replies
// go only to the cluster's own reply subjects: a request cannot make the
// node publish elsewhere.
func (n *Node) answer(m *nats.Msg) {
	n.answering.RLock()
	defer n.answering.RUnlock()
	if n.closed {
		return
	}
	if !strings.HasPrefix(m.Reply, replyPrefix(n.opts.Prefix)) {
		n.warnf("cluster summary request refused", fmt.Errorf("reply subject %q outside %s", m.Reply, replyPrefix(n.opts.Prefix)))
		return
	}
	sum := Summary{Status: n.status()}
	if n.opts.Slowest != nil {
		sum.Slowest = n.opts.Slowest(SummarySlowest)
	}
	b, err := json.Marshal(sum)
	if err != nil {
		return
	}
	_ = n.opts.Conn.Publish(m.Reply, b)
}

func (n *Node) warnf(msg string, err error) {
	if ok, skipped := n.warn.Allow(); ok && n.opts.Logger != nil {
		n.opts.Logger.Warn(msg, "err", err, "skipped", skipped)
	}
}
