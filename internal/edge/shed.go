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
	// A copy, shuffled by pickRandom: a map's order is neither uniform nor
	// independent from one call to the next.
	conns := make([]*conn.Conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	return pickRandom(conns, n, func(c *conn.Conn) bool {
		return c.CloseAfterFlushIfOpen(wire.CloseRebalance, wire.ReasonRebalance)
	})
}

// pickRandom offers items to take in a uniformly random order (a partial
// Fisher-Yates shuffle, in place) until take has accepted n of them or
// none is left, and returns how many it accepted.
func pickRandom[T any](items []T, n int, take func(T) bool) int {
	taken := 0
	for i := 0; i < len(items) && taken < n; i++ {
		j := i + rand.IntN(len(items)-i)
		items[i], items[j] = items[j], items[i]
		if take(items[i]) {
			taken++
		}
	}
	return taken
}
