package edge

import (
	"time"

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
