package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/roomcast/roomcast/internal/cluster"
)

// errClusterUnavailable is why the cluster cannot be seen from this node
// now; its text is the reason /clusterz and the cluster request give.
var errClusterUnavailable = errors.New("cluster unavailable")

// clusterView gathers every node's summary over NATS, within
// cluster.DefaultGatherWait or ctx (the edge's cluster request and
// /clusterz). It fails when this node cannot ask: not started yet, or its
// NATS disconnected (a request would sit in the reconnect buffer and no
// node, not even this one, would answer).
func (s *Server) clusterView(ctx context.Context) (any, error) {
	switch {
	case !s.started.Load() || s.cluster == nil:
		return nil, fmt.Errorf("%w: the node is starting", errClusterUnavailable)
	case !s.nc.IsConnected():
		return nil, fmt.Errorf("%w: NATS disconnected", errClusterUnavailable)
	}
	v, err := s.cluster.View(ctx, cluster.DefaultGatherWait)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errClusterUnavailable, err)
	}
	if len(v.Nodes) == 0 {
		return nil, fmt.Errorf("%w: no node answered within %s", errClusterUnavailable, cluster.DefaultGatherWait)
	}
	return v, nil
}

// clusterz serves GET /clusterz: the cluster as this node sees it
// (cluster.View), or 503 with the reason it cannot be seen.
func (s *Server) clusterz(w http.ResponseWriter, r *http.Request) {
	v, err := s.clusterView(r.Context())
	if err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}
