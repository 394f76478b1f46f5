package edge

import (
	"context"

	"github.com/roomcast/roomcast/internal/requester"
	"github.com/roomcast/roomcast/internal/wire"
)

// MaxListedRooms bounds a rooms response: the newest this many rooms the
// token may read (at most about 25 KiB of JSON).
const MaxListedRooms = 100

// RoomLister lists the rooms with recent events (bus.Bus.RecentRooms is one).
type RoomLister func(ctx context.Context) (wire.RecentRooms, error)

// rooms answers a rooms request: the rooms with recent events that the
// connection's token may read, newest first, the same check as a
// subscribe's (mayRead).
func (ss *session) rooms(req wire.Request) {
	list := ss.srv.opts.Rooms
	switch {
	case !ss.authenticated(req):
		return
	case list == nil:
		ss.fail(req.Event, req.ID, wire.Errorf(wire.CodeUnavailable, "this node does not list rooms"))
		return
	case ss.srv.opts.Available != nil && !ss.srv.opts.Available():
		ss.fail(req.Event, req.ID, wire.Errorf(wire.CodeUnavailable, "event bus unavailable; retry"))
		return
	}
	// Bounded by the connection: a client that leaves stops waiting (the
	// shared read goes on for the others, see wire.RecentRooms).
	recent, err := list(requester.With(closedContext{ss.c}, ss.c))
	if err != nil {
		if !ss.c.Closing() {
			ss.srv.log.Warn("room list failed", "err", err)
			ss.fail(req.Event, req.ID, wire.Errorf(wire.CodeUnavailable, "the room list cannot be read now; retry"))
		}
		return
	}
	ss.send(wire.TypeResponse, wire.ResponseFrame(req.Event, req.ID, ss.readable(recent)))
}

// readable is the part of recent the session may read, bounded.
func (ss *session) readable(recent wire.RecentRooms) wire.RoomsResult {
	res := wire.RoomsResult{Rooms: []wire.RoomInfo{}, Truncated: recent.Truncated}
	for _, h := range recent.Rooms {
		if !ss.mayRead(h.Room) {
			continue
		}
		if len(res.Rooms) == MaxListedRooms {
			res.Truncated = true
			break
		}
		res.Rooms = append(res.Rooms, wire.RoomInfo{
			Room: h.Room.String(), Seq: h.Seq, TS: h.Time.UTC().Format(wire.TimeFormat),
		})
	}
	return res
}
