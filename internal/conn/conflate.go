package conn

import (
	"slices"

	"github.com/roomcast/roomcast/internal/wire"
)

// Conflation (docs/protocol.md, "Conflation"): a connection that conflates
// some room, and falls behind, drops the queued keyed events of those rooms
// that a newer queued event of the same room and key supersedes, instead of
// being closed with 4008. It costs the others one nil check per push.

// conflation is the state of a connection that conflates some room; nil
// for every other connection, so an idle connection pays one pointer.
// Guarded by the connection's mu.
type conflation struct {
	rooms []string // the rooms it conflates: few, so a slice
	// next is the queue length at which a push compacts the queue: a
	// step past what the last compaction, or the writer's last take,
	// left. The step makes a compaction's scan cost a few steps per push
	// however many frames it keeps, and bounds what a client that fell
	// behind reads before its rooms' latest state.
	next int
}

// What a conflating connection has handed on can no longer be dropped:
// the frames its writer holds, and the bytes in the socket's send buffer.
// A client that reads slowly reads all of that before the newest state,
// so both are kept small (the rest waits in the queue, where compaction
// reaches it): the writer takes at most maxConflatingBatch bytes at once
// (at least one frame), and the socket's send buffer is
// conflatingSendBuffer (the kernel doubles it) while the connection
// conflates. A client reading 50 frames of 1 KiB a second then reads
// under half a second of stale frames before the newest ones; one that
// reads fast is bound by the buffer's bytes per round trip (16 KiB per
// millisecond on a LAN), enough for a dashboard.
const (
	maxConflatingBatch   = 8 << 10
	conflatingSendBuffer = 8 << 10
)

// SetConflate says whether the connection conflates room (a room's name):
// the session sets it before the room's join, whose frames may be queued
// while it runs, and clears it when the connection leaves the room.
// Frames already queued stay.
func (c *Conn) SetConflate(room string, on bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cf := c.conf
	switch {
	case on && cf == nil:
		c.conf = &conflation{rooms: []string{room}, next: c.compactStep()}
		c.setSendBuffer(conflatingSendBuffer)
	case on && !slices.Contains(cf.rooms, room):
		cf.rooms = append(cf.rooms, room)
	case !on && cf != nil:
		if i := slices.Index(cf.rooms, room); i >= 0 {
			cf.rooms = slices.Delete(cf.rooms, i, i+1)
		}
		if len(cf.rooms) == 0 {
			c.conf = nil
			c.setSendBuffer(c.opts.SocketSendBuffer)
		}
	}
}

// setSendBuffer sets the socket's send buffer to n bytes; n <= 0 (the
// kernel's autotuning, which cannot be turned back on) gives the default.
func (c *Conn) setSendBuffer(n int) {
	if n <= 0 {
		n = DefaultSocketSendBuffer
	}
	if tc, ok := tcpOf(c.nc); ok {
		_ = tc.SetWriteBuffer(n) // the buffer it had is no failure
	}
}

// compactStep is how many frames a conflating connection's queue grows by
// between compactions: a sixteenth of its limit (64 by default).
func (c *Conn) compactStep() int { return max(c.opts.MaxQueueMessages/16, 1) }

// conflateLocked queues live frame f on a conflating connection whose
// queue f would overflow or has passed its threshold: it queues f,
// compacts the queue, and reports whether the queue is then within its
// limits, with how many frames it dropped. Needs mu, and c.conf set.
func (c *Conn) conflateLocked(f *wire.Frame) (fits bool, dropped int) {
	c.queue = append(c.queue, f)
	c.queueBytes += f.Len()
	dropped = c.compactLocked()
	c.conf.next = len(c.queue) + c.compactStep()
	return len(c.queue) <= c.opts.MaxQueueMessages && c.queueBytes <= c.opts.MaxQueueBytes, dropped
}

// roomCount is a conflating room's state during a compaction's scan.
type roomCount struct {
	name    string
	kept    int // the index of the room's last frame kept so far (going back), -1 if none
	dropped int // frames of the room dropped since, to count on it
}

// compactLocked scans the queue once, from its end, and drops every keyed
// frame of a conflating room that a later frame of the same room and key
// supersedes. Each dropped frame is counted on the next frame of its room
// that stays (the one nearest after it), which is replaced by a copy
// saying so (wire.WithConflated): there is always one, since the frame
// that superseded it stays. Frames of other rooms, unkeyed frames and
// frames that are not events stay as they are, in order. Frames the writer
// has taken are no longer in the queue, so they are never touched. It
// returns how many frames it dropped. Needs mu.
func (c *Conn) compactLocked() int {
	rooms := make([]roomCount, len(c.conf.rooms))
	for i, r := range c.conf.rooms {
		rooms[i] = roomCount{name: r, kept: -1}
	}
	type roomKey struct{ room, key string }
	newest := make(map[roomKey]struct{})
	q := c.queue
	w := len(q) // q[w:] holds the frames kept so far
	for i := len(q) - 1; i >= 0; i-- {
		f := q[i]
		rc := conflating(rooms, f.Room)
		if rc == nil {
			w--
			q[w] = f
			continue
		}
		if f.Key != "" {
			k := roomKey{f.Room, f.Key}
			if _, seen := newest[k]; seen {
				// rc.kept >= 0: the newer frame of k stays. A copy
				// dropped passes on the count it carried.
				rc.dropped += 1 + f.Conflated
				c.queueBytes -= f.Len()
				continue
			}
			newest[k] = struct{}{}
		}
		c.queueBytes += rc.settle(q)
		w--
		q[w] = f
		rc.kept = w
	}
	dropped := w
	for i := range rooms {
		c.queueBytes += rooms[i].settle(q)
	}
	n := copy(q, q[w:])
	clear(q[n:])
	c.queue = q[:n]
	return dropped
}

// settle counts the frames of the room dropped since its last kept frame
// on that frame, replacing it in q, the queue; it returns how many bytes
// the copy adds to the queue's.
func (rc *roomCount) settle(q []*wire.Frame) int {
	if rc.dropped == 0 {
		return 0
	}
	old := q[rc.kept]
	q[rc.kept] = wire.WithConflated(old, rc.dropped)
	rc.dropped = 0
	return q[rc.kept].Len() - old.Len()
}

// conflating returns the scan state of room, nil when room is not one the
// connection conflates (or "", a frame that is not an event).
func conflating(rooms []roomCount, room string) *roomCount {
	if room == "" {
		return nil
	}
	for i := range rooms {
		if rooms[i].name == room {
			return &rooms[i]
		}
	}
	return nil
}
