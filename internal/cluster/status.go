// Package cluster lets the edges of one deployment see each other over
// NATS (docs/protocol.md section 7, "The cluster"): every node publishes
// its Status each Interval on <prefix>.cluster.status and keeps the latest
// of every other node's, and answers requests on <prefix>.cluster.summary
// with its Summary. `roomcast top`, the admin listener's /clusterz and the
// dashboard's cluster view read the summaries (Gather); the rebalancer
// reads the statuses with their ages (Node.Members).
//
// Only edges may publish or subscribe there: natsconf/accounts.conf and
// the embedded NATS server deny the subjects to workers.
package cluster

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/roomcast/roomcast/internal/connz"
)

// Status is what a node tells the others every Interval.
type Status struct {
	// ID names this run of the node: random at start, so two nodes given
	// the same --server-name are still two.
	ID   string `json:"id"`
	Name string `json:"name"` // --server-name
	// Ready is the node's readiness (/readyz); Reason why not.
	Ready    bool   `json:"ready"`
	Reason   string `json:"reason,omitempty"`
	Draining bool   `json:"draining,omitempty"`
	// Connections are the node's open client connections; Rooms the rooms
	// with members on it.
	Connections int `json:"connections"`
	Rooms       int `json:"rooms"`
	// EventsPerSecond are the events the node received from the live feed
	// and DeliveriesPerSecond the frames it wrote to clients, over the
	// last interval.
	EventsPerSecond     float64 `json:"events_per_second"`
	DeliveriesPerSecond float64 `json:"deliveries_per_second"`
	// Lagging are the connections whose oldest queued frame has waited
	// past the node's lag threshold.
	Lagging int `json:"lagging"`
	// Shed are the connections the node has shed to rebalance the
	// cluster since it started.
	Shed    uint64    `json:"shed"`
	Started time.Time `json:"started"`
	At      time.Time `json:"at"` // when the node sent it, by its clock
}

// Summary is a node's answer to a cluster request: its status now and its
// slowest connections (by lag, most behind first).
type Summary struct {
	Status
	Slowest []connz.Conn `json:"slowest"`
}

// Subjects of the cluster's messages under a subject prefix.
func statusSubject(prefix string) string  { return prefix + ".cluster.status" }
func summarySubject(prefix string) string { return prefix + ".cluster.summary" }

// Subjects returns the wildcard of every cluster subject under prefix: what
// an edge's NATS user must be allowed to publish and subscribe to.
func Subjects(prefix string) string { return prefix + ".cluster.>" }

// maxStatusSize bounds a status message: anything larger is not one.
const maxStatusSize = 4 << 10

// decodeStatus reads a peer's status, refusing what no node sends.
func decodeStatus(p []byte) (Status, error) {
	var st Status
	if len(p) > maxStatusSize {
		return st, fmt.Errorf("status of %d bytes, over %d", len(p), maxStatusSize)
	}
	if err := json.Unmarshal(p, &st); err != nil {
		return st, fmt.Errorf("status: %w", err)
	}
	switch {
	case st.ID == "":
		return st, fmt.Errorf("status without id")
	case st.Connections < 0 || st.Rooms < 0 || st.Lagging < 0:
		return st, fmt.Errorf("status of node %q with a negative count", st.ID)
	case st.EventsPerSecond < 0 || st.DeliveriesPerSecond < 0:
		return st, fmt.Errorf("status of node %q with a negative rate", st.ID)
	}
	return st, nil
}
