package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nuid"
)

// replyPrefix is where summaries are sent back: under the cluster's own
// subjects, which only edges may use, rather than an inbox (the embedded
// server lets no edge publish into another's inbox).
func replyPrefix(prefix string) string { return prefix + ".cluster.reply." }

// DefaultGatherWait is how long Gather waits for nodes that have not
// answered.
const DefaultGatherWait = time.Second

// Gather asks every node for its summary and returns the answers, sorted
// by name. It returns when expect nodes have answered (expect <= 0: never
// early), wait has passed, or ctx is done, with what came by then.
func Gather(ctx context.Context, nc *nats.Conn, prefix string, expect int, wait time.Duration) ([]Summary, error) {
	if wait <= 0 {
		wait = DefaultGatherWait
	}
	reply := replyPrefix(prefix) + nuid.Next()
	sub, err := nc.SubscribeSync(reply)
	if err != nil {
		return nil, fmt.Errorf("cluster summaries: %w", err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := nc.PublishRequest(summarySubject(prefix), reply, nil); err != nil {
		return nil, fmt.Errorf("cluster summaries: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	var out []Summary
	seen := make(map[string]bool)
	for expect <= 0 || len(out) < expect {
		m, err := sub.NextMsgWithContext(ctx)
		if err != nil {
			break // the wait is over
		}
		var s Summary
		if err := json.Unmarshal(m.Data, &s); err != nil || s.ID == "" || seen[s.ID] {
			continue
		}
		seen[s.ID] = true
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b Summary) int { return byName(a.Status, b.Status) })
	return out, nil
}

// Gather asks every node this one knows of for its summary (see the
// package function): it returns as soon as they all have answered.
func (n *Node) Gather(ctx context.Context, wait time.Duration) ([]Summary, error) {
	return Gather(ctx, n.opts.Conn, n.opts.Prefix, len(n.Peers()), wait)
}

// View is the cluster as one node sees it: the answer of the admin
// listener's /clusterz and of the WebSocket request `cluster`
// (docs/protocol.md section 7), which `roomcast top` and the dashboard
// read.
type View struct {
	Node  string    `json:"node"`  // the id of the node that gathered
	Nodes []Summary `json:"nodes"` // every node that answered, sorted by name
}

// View gathers every node's summary (Node.Gather) into the view from this
// node.
func (n *Node) View(ctx context.Context, wait time.Duration) (View, error) {
	nodes, err := n.Gather(ctx, wait)
	if err != nil {
		return View{}, err
	}
	if nodes == nil {
		nodes = []Summary{}
	}
	return View{Node: n.id, Nodes: nodes}, nil
}
