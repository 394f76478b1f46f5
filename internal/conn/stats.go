package conn

import (
	"slices"
	"time"

	"github.com/roomcast/roomcast/internal/wire"
)

// Stats is what is queued for a connection and not yet written to its
// socket: the frames in its queue and the batch its writer took and is
// still writing (a client that stops reading holds that batch in the
// writer). An admin endpoint reads it now and then; nothing is counted
// per push.
type Stats struct {
	Frames int // frames queued or in flight, events and responses
	Bytes  int // their bytes, uncompressed
	// Rooms are the rooms with events queued, in the order their first
	// queued event came.
	Rooms []RoomQueue
	// OldestWait is how long the oldest frame not yet written has waited;
	// 0 when nothing waits.
	OldestWait time.Duration
	// Conflating are the rooms the connection conflates (SetConflate).
	Conflating []string
}

// RoomQueue is what is queued for a connection of one room.
type RoomQueue struct {
	Room   string
	Events int
	Bytes  int
}

// coarseNow is the time in Unix ns to the node's wheel's tick when the
// connection has one (a clock read on every delivery to an idle
// connection must cost next to nothing), else exactly.
func (c *Conn) coarseNow() int64 {
	if w := c.opts.Wheel; w != nil {
		return w.Now()
	}
	return time.Now().UnixNano()
}

// Stats reports what is queued for the connection now. OldestWait is
// exact but for the wheel's tick (100 ms on a node), by which it may be
// over. It walks the
// queue under the connection's lock: its cost is Stats', not the
// fan-out's.
func (c *Conn) Stats() Stats {
	now := time.Now().UnixNano()
	c.mu.Lock()
	defer c.mu.Unlock()
	st := Stats{OldestWait: c.oldestWaitLocked(now)}
	st.add(c.inflight)
	st.add(c.queue)
	if c.conf != nil {
		st.Conflating = slices.Clone(c.conf.rooms)
	}
	return st
}

// Backlog is what waits for a connection, without naming its rooms:
// the node's sampler reads it from every connection each round, so it
// allocates nothing. Its figures are Stats' totals.
type Backlog struct {
	Events     int           // event frames queued or in flight (Stats.Rooms' Events summed)
	Bytes      int           // every frame's bytes, uncompressed (Stats.Bytes)
	OldestWait time.Duration // as Stats.OldestWait
}

// Behind reports whether anything waits.
func (b Backlog) Behind() bool { return b.Events > 0 || b.Bytes > 0 }

// Backlog reports what waits for the connection now, as Stats does but
// in totals only; an idle connection costs one lock and no walk.
func (c *Conn) Backlog() Backlog {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.inflight) == 0 && len(c.queue) == 0 {
		return Backlog{} // no clock read for an idle connection
	}
	b := Backlog{OldestWait: c.oldestWaitLocked(time.Now().UnixNano())}
	b.count(c.inflight)
	b.count(c.queue)
	return b
}

// oldestWaitLocked is how long, at now (Unix ns), the oldest frame not
// yet written has waited: the writer's batch's if it holds one, else the
// queue's; 0 when nothing waits. Needs mu.
func (c *Conn) oldestWaitLocked(now int64) time.Duration {
	since := int64(0)
	switch {
	case len(c.inflight) > 0:
		since = c.inflightSince
	case len(c.queue) > 0:
		since = c.queuedSince
	}
	if since > 0 && now > since {
		return time.Duration(now - since)
	}
	return 0
}

func (b *Backlog) count(frames []*wire.Frame) {
	for _, f := range frames {
		b.Bytes += f.Len()
		if f.Room != "" {
			b.Events++
		}
	}
}

// add counts frames into st.
func (st *Stats) add(frames []*wire.Frame) {
	for _, f := range frames {
		st.Frames++
		st.Bytes += f.Len()
		if f.Room == "" {
			continue // a response, an error, the drain notice
		}
		st.room(f.Room).count(f.Len())
	}
}

// room returns room's entry in st, added if new: a connection is in a
// few rooms, so a scan.
func (st *Stats) room(room string) *RoomQueue {
	for i := range st.Rooms {
		if st.Rooms[i].Room == room {
			return &st.Rooms[i]
		}
	}
	st.Rooms = append(st.Rooms, RoomQueue{Room: room})
	return &st.Rooms[len(st.Rooms)-1]
}

func (q *RoomQueue) count(bytes int) {
	q.Events++
	q.Bytes += bytes
}
