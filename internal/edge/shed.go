package edge

import (
	"math/rand/v2"

	"github.com/roomcast/roomcast/internal/conn"
	"github.com/roomcast/roomcast/internal/wire"
)

// Shed closes n connections chosen uniformly at random with 4012
// (wire.CloseRebalance), each after its queue is written, so it ends with
// a close frame and its client resumes elsewhere without a gap. It never
// picks one that is closing already, nor sheds while the node drains. It
// returns how many it closed: fewer than n when the node holds fewer.
func (s *Server) Shed(n int) int {
	if n <= 0 {
		return 0
	}
	s.mu.Lock()
	if s.draining {
		s.mu.Unlock()
		return 0
	}
	// A copy, shuffled below: a map's order is neither uniform nor
	// independent from one call to the next.
	conns := make([]*conn.Conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	shed := 0
	for i := 0; i < len(conns) && shed < n; i++ {
		j := i + rand.IntN(len(conns)-i) // a partial Fisher-Yates shuffle
		conns[i], conns[j] = conns[j], conns[i]
		if conns[i].CloseAfterFlushIfOpen(wire.CloseRebalance, wire.ReasonRebalance) {
			shed++
		}
	}
	return shed
}
