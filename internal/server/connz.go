package server

import (
	"encoding/json"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/roomcast/roomcast/internal/cluster"
	"github.com/roomcast/roomcast/internal/conn"
	"github.com/roomcast/roomcast/internal/connz"
)

// /connz and /roomz (docs/protocol.md section 7): every connection of the
// node with what is queued for it, and every room; and the sampler that
// turns the same snapshot into metrics and the cluster status's figures.

// serveConnz answers GET /connz: the query's page of the node's
// connections; a bad query is 400 with what is wrong.
func (s *Server) serveConnz(w http.ResponseWriter, r *http.Request) {
	q, err := connz.ParseQuery(r.URL.Query())
	if err != nil {
		http.Error(w, "/connz: "+err.Error(), http.StatusBadRequest)
		return
	}
	if !s.started.Load() {
		http.Error(w, "starting", http.StatusServiceUnavailable)
		return
	}
	writeJSON(w, connz.Apply(s.edge.Connections(), q, s.cfg.ServerName))
}

// serveRoomz answers GET /roomz: every room of the node. It takes no
// parameters.
func (s *Server) serveRoomz(w http.ResponseWriter, r *http.Request) {
	if len(r.URL.Query()) > 0 {
		http.Error(w, "/roomz takes no parameters", http.StatusBadRequest)
		return
	}
	if !s.started.Load() {
		http.Error(w, "starting", http.StatusServiceUnavailable)
		return
	}
	rooms := s.hub.Stats()
	writeJSON(w, connz.Rooms{Node: s.cfg.ServerName, Total: len(rooms), Rooms: rooms})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(v)
}

// slowest is the node's n slowest connections (most behind first) at the
// sampler's last round: a summary request costs the node no walk of its
// connections, however often it comes.
func (s *Server) slowest(n int) []connz.Conn {
	last := s.lastSample()
	return slices.Clone(last.slowest[:min(n, len(last.slowest))])
}

// sampleInterval is how often the sampler reads every connection.
const sampleInterval = 2 * time.Second

// sampler reads every connection's queue and the node's counters every
// sampleInterval: the lag histograms and the lagging gauge, the rooms'
// event rates, and the figures of the node's cluster status.
type sampler struct {
	stop chan struct{} // closed by closeAll
	mu   sync.Mutex
	last sample // guarded by mu
	// The counters at the last sample, owned by the sampler's goroutine.
	at             time.Time
	events, frames uint64
}

// sample is what the last round found.
type sample struct {
	lagging            int
	events, deliveries float64      // a second, since the round before
	slowest            []connz.Conn // the connections most behind, at most cluster.SummarySlowest
}

// startSampler starts the sampler's goroutine, which closeAll stops.
func (s *Server) startSampler() {
	stop := make(chan struct{})
	s.sampler.stop = stop
	s.sampler.at = time.Now()
	s.sampler.events, s.sampler.frames = s.hub.EventsDelivered(), s.edge.FramesWritten()
	s.hub.Sample(s.sampler.at)
	s.goRun(func() {
		t := time.NewTicker(sampleInterval)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case now := <-t.C:
				s.sampleOnce(now)
			}
		}
	})
}

// stopSampler ends the sampler's goroutine, if it started; closeAll
// waits for it.
func (s *Server) stopSampler() {
	if s.sampler.stop != nil {
		close(s.sampler.stop)
		s.sampler.stop = nil
	}
}

// sampleOnce is one round of the sampler.
func (s *Server) sampleOnce(now time.Time) {
	lagging := 0
	slowest := s.edge.Sample(cluster.SummarySlowest, func(b conn.Backlog) {
		s.m.ConnLag.Observe(float64(b.Events))
		s.m.ConnQueuedBytes.Observe(float64(b.Bytes))
		if b.OldestWait >= s.cfg.LagThreshold {
			lagging++
		}
	})
	s.m.ConnLagging.Set(float64(lagging))
	s.hub.Sample(now)
	sm := &s.sampler
	events, frames := s.hub.EventsDelivered(), s.edge.FramesWritten()
	secs := now.Sub(sm.at).Seconds()
	cur := sample{lagging: lagging, slowest: slowest}
	if secs > 0 {
		cur.events = float64(events-sm.events) / secs
		cur.deliveries = float64(frames-sm.frames) / secs
	}
	sm.at, sm.events, sm.frames = now, events, frames
	sm.mu.Lock()
	sm.last = cur
	sm.mu.Unlock()
}

// lastSample is what the sampler's last round found.
func (s *Server) lastSample() sample {
	s.sampler.mu.Lock()
	defer s.sampler.mu.Unlock()
	return s.sampler.last
}
