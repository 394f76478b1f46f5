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
	var shed []*conn.Conn
	taken := pickRandom(conns, n, func(c *conn.Conn) bool {
		if !c.CloseAfterFlushIfOpen(wire.CloseRebalance, wire.ReasonRebalance) {
			return false
		}
		shed = append(shed, c)
		return true
	})
	s.mu.Lock()
	for _, c := range shed {
		// One that has ended already is unregistered: nothing to mark.
		if ss, ok := s.conns[c]; ok && !ss.shed {
			ss.shed = true
			s.shedding++
		}
	}
	s.mu.Unlock()
	return taken
}

// Held is the open connections but those Shed closed that are still
// closing: what the node holds for rebalancing. A shed client may be
// connected elsewhere already while its socket here waits for its close
// reply (up to the close grace); counted here, every tick until then
// would see the same excess and shed again.
func (s *Server) Held() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns) - s.shedding
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
