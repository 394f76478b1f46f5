package server

import (
	"context"
	"time"

	"github.com/roomcast/roomcast/internal/cluster"
	"github.com/roomcast/roomcast/internal/rebalance"
)

// joinCluster starts the node's membership in the cluster: its status
// published over NATS, its peers' kept, summary requests answered.
func (s *Server) joinCluster() error {
	n, err := cluster.Start(cluster.Options{
		Conn: s.nc, Prefix: s.cfg.SubjectPrefix, Name: s.cfg.ServerName,
		Local: s.clusterStatus, Slowest: s.slowest, Logger: s.log,
	})
	if err != nil {
		return err
	}
	s.cluster = n
	s.rebalance.Store(rebalance.Start(rebalance.Options{
		Policy: s.cfg.Rebalance, Interval: n.Interval(),
		Members: n.Members, Count: s.edge.Held, Shed: s.edge.Shed,
		ShedTotal: s.m.RebalanceShed, Nodes: s.m.ClusterNodes, Logger: s.log,
	}))
	return nil
}

// stopRebalance ends the rebalancing loop, if it runs: before the edge
// drains, so no connection is shed while the node closes them all.
func (s *Server) stopRebalance() {
	if l := s.rebalance.Load(); l != nil {
		l.Stop()
	}
}

// clusterStatus is what the node tells its peers about itself.
func (s *Server) clusterStatus() cluster.Status {
	last := s.lastSample()
	st := cluster.Status{
		Draining:            s.draining.Load(),
		Connections:         s.edge.ConnCount(),
		Rooms:               s.hub.Rooms(),
		Lagging:             last.lagging,
		EventsPerSecond:     last.events,
		DeliveriesPerSecond: last.deliveries,
	}
	if l := s.rebalance.Load(); l != nil {
		st.Shed = l.Total()
	}
	ctx, cancel := context.WithTimeout(context.Background(), clusterReadyTimeout)
	defer cancel()
	if err := s.ready(ctx); err != nil {
		st.Reason = err.Error()
	} else {
		st.Ready = true
	}
	return st
}

// clusterReadyTimeout bounds the readiness check of each status: a node
// that cannot tell in time reports itself not ready, which holds back the
// peers' rebalancing rather than letting it go on blind.
const clusterReadyTimeout = 500 * time.Millisecond

// Cluster is the node's membership in the cluster, for tests.
func (s *Server) Cluster() *cluster.Node { return s.cluster }
