package server

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// adminHandler serves the probes and metrics of PROTOCOL.md section 7.
func (s *Server) adminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if err := s.ready(r.Context()); err != nil {
			http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{}))
	return mux
}

// ready is true when the node can serve subscriptions: not draining, NATS
// connected, the stream reachable.
func (s *Server) ready(ctx context.Context) error {
	switch {
	case s.draining.Load():
		return fmt.Errorf("draining")
	case !s.started.Load():
		return fmt.Errorf("starting")
	case !s.bus.Connected():
		return fmt.Errorf("NATS disconnected")
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	return s.bus.CheckStream(ctx)
}
