package edge

import (
	"slices"
	"time"

	"github.com/roomcast/roomcast/internal/conn"
	"github.com/roomcast/roomcast/internal/connz"
)

// Connections returns a snapshot of every open connection for /connz:
// its peer's address, its user (the token's subject, never the token),
// its rooms and what is queued for each, and how long its oldest queued
// frame has waited. Each connection is read under its own locks, one at
// a time, so the snapshot is not one instant; it is in no order.
func (s *Server) Connections() []connz.Conn {
	s.mu.Lock()
	sessions := make([]*session, 0, len(s.conns))
	for _, ss := range s.conns {
		sessions = append(sessions, ss)
	}
	s.mu.Unlock()
	out := make([]connz.Conn, len(sessions))
	for i, ss := range sessions {
		out[i] = ss.snapshot()
	}
	return out
}

// Sample reads every open connection's backlog once, hands each to visit
// (for the node's histograms and its lagging count) and returns the n
// connections most behind (connz.ByLag; only those with something queued)
// as /connz shows them. Only those n are snapshotted: the sampler runs
// every round on nodes of tens of thousands of mostly idle connections,
// and a snapshot of each (its address, its rooms' names) was most of an
// idle node's work.
func (s *Server) Sample(n int, visit func(conn.Backlog)) []connz.Conn {
	s.mu.Lock()
	conns := make([]*conn.Conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	top := make([]ranked, 0, n+1)
	for _, c := range conns {
		b := c.Backlog()
		visit(b)
		if b.Behind() && n > 0 {
			top = keepTop(top, ranked{c, b}, n)
		}
	}
	out := make([]connz.Conn, 0, len(top))
	for _, r := range top {
		s.mu.Lock()
		ss := s.conns[r.c]
		s.mu.Unlock()
		if ss == nil {
			continue // closed since
		}
		if cz := ss.snapshot(); cz.Lag > 0 || cz.QueuedBytes > 0 {
			out = append(out, cz)
		}
	}
	slices.SortFunc(out, connz.ByLag)
	return out
}

// ranked is a connection and its backlog, as Sample ranks them.
type ranked struct {
	c *conn.Conn
	b conn.Backlog
}

// keepTop inserts r into top, kept most behind first as connz.ByLag
// orders, and at most n long.
func keepTop(top []ranked, r ranked, n int) []ranked {
	i := len(top)
	for i > 0 && moreBehind(r.b, top[i-1].b) {
		i--
	}
	if i >= n {
		return top
	}
	top = slices.Insert(top, i, r)
	return top[:min(len(top), n)]
}

// moreBehind reports whether a ranks before b in connz.ByLag's order.
func moreBehind(a, b conn.Backlog) bool {
	if a.Events != b.Events {
		return a.Events > b.Events
	}
	return a.OldestWait > b.OldestWait
}

// snapshot is the session as /connz shows it.
func (ss *session) snapshot() connz.Conn {
	st := ss.c.Stats()
	cz := connz.Conn{
		ID:          ss.id,
		Remote:      ss.c.RemoteAddr().String(),
		Opened:      time.Unix(0, ss.opened).UTC(),
		QueuedBytes: st.Bytes,
		OldestWait:  st.OldestWait.Seconds(),
		Compressed:  ss.c.Deflate(),
	}
	ss.mu.Lock()
	if ss.claims != nil {
		cz.User = ss.claims.UserID
	}
	cz.Rooms = make([]connz.Room, len(ss.subs))
	for i, r := range ss.subs {
		cz.Rooms[i].Room = r.String()
	}
	ss.mu.Unlock()
	for _, q := range st.Rooms {
		cz.Lag += q.Events // a room just left may still have events queued
		if r := roomIn(cz.Rooms, q.Room); r != nil {
			r.Lag, r.QueuedBytes = q.Events, q.Bytes
		}
	}
	for _, name := range st.Conflating {
		if r := roomIn(cz.Rooms, name); r != nil {
			r.Conflate = true
		}
	}
	return cz
}

// roomIn is name's entry in rooms, nil if absent.
func roomIn(rooms []connz.Room, name string) *connz.Room {
	for i := range rooms {
		if rooms[i].Room == name {
			return &rooms[i]
		}
	}
	return nil
}
