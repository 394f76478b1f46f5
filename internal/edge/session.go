package edge

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/roomcast/roomcast/internal/auth"
	"github.com/roomcast/roomcast/internal/conn"
	"github.com/roomcast/roomcast/internal/metrics"
	"github.com/roomcast/roomcast/internal/room"
	"github.com/roomcast/roomcast/internal/wire"
)

// session is the protocol state of one connection. Its fields are owned by
// the connection's handler calls, which run one at a time, in order, but
// for those under mu, which Arrived shares from the reader (arrival.go),
// and subs and claims, which the handler calls write under mu and read
// without it, and Connections reads under mu (connz.go).
type session struct {
	srv  *Server
	c    *conn.Conn
	subs []wire.Room // rooms this connection is a member of; a slice, since
	// most connections hold one or a few and a map costs ten times more

	mu       sync.Mutex
	limit    limiter   // decided as each message arrives
	verdicts rateQueue // its decisions on messages not handled yet
	join     *joining  // the subscribe in flight, if any

	claims    *auth.Claims // the token in force; nil before the first (or anonymous)
	authClose authDeadline // closes the connection: no token in time (1008), or expired (4001)

	// admission is what the connection holds of the unauthenticated
	// budget, guarded by srv.mu (settleAuth gives it back).
	admission admission
	// shed is set when Shed closed the connection, guarded by srv.mu: it
	// counts in srv.shedding until it is unregistered.
	shed bool

	id     uint64 // the connection's id in this node's log lines
	opened int64  // when, in Unix nanoseconds
}

var _ conn.Handler = (*session)(nil)

// HandleMessage decodes and answers one client message.
func (ss *session) HandleMessage(_ *conn.Conn, p []byte) {
	req, perr := wire.DecodeRequest(p)
	if v := ss.admit(); v != admitted {
		ss.refuse(req, v)
		return
	}
	if perr != nil {
		ss.fail(req.Event, req.ID, perr)
		return
	}
	if ss.srv.log.Enabled(context.Background(), slog.LevelDebug) { // no arguments built otherwise
		ss.srv.log.Debug("client message", "conn", ss.id, "type", req.Type, "event", req.Event, "id", req.ID, "room", req.Room.String())
	}
	ss.count(req.Type)
	switch req.Type {
	case wire.TypePing:
		ss.send(wire.TypePong, wire.PongFrame(req.ID))
	case wire.TypePong:
		// Answers to pings we do not send at the protocol level; ignore.
	case wire.TypeRequest:
		ss.handleRequest(req)
	}
}

// refuse answers a message over the rate limit with RATE_LIMITED, and
// closes a connection that keeps sending regardless with 4029.
func (ss *session) refuse(req wire.Request, v rateVerdict) {
	if v == rateAbusive {
		ss.c.Close(wire.CloseRateLimited, "sustained rate-limit violations")
		return
	}
	ss.fail(req.Event, req.ID, wire.Errorf(wire.CodeRateLimited, "more than %d messages a second; slow down", ss.srv.opts.RateLimit))
}

func (ss *session) handleRequest(req wire.Request) {
	switch req.Event {
	case wire.EventSubscribe:
		ss.subscribe(req)
	case wire.EventUnsubscribe:
		ss.unsubscribe(req)
	case wire.EventAuth:
		ss.authRequest(req)
	case wire.EventRooms:
		ss.rooms(req)
	case wire.EventCluster:
		ss.cluster(req)
	}
}

func (ss *session) subscribe(req wire.Request) {
	name := req.Room.String()
	if !ss.authorized(req) {
		return
	}
	if ss.member(req.Room) >= 0 {
		// Subscribing again starts over (and resumes from since, if given).
		ss.leave(req.Room)
	}
	if len(ss.subs) >= ss.srv.opts.MaxSubscriptions {
		ss.fail(req.Event, req.ID, wire.Errorf(wire.CodeTooManySubscriptions, "at most %d subscriptions per connection", ss.srv.opts.MaxSubscriptions))
		return
	}
	if avail := ss.srv.opts.Available; avail != nil && !avail() {
		ss.fail(req.Event, req.ID, wire.Errorf(wire.CodeUnavailable, "event bus unavailable; retry"))
		return
	}
	var from *room.Position
	if req.HasSince {
		from = &room.Position{Since: req.Since, Epoch: req.Epoch}
	}
	// Before the join, whose frames may be queued while it runs; a
	// subscribe without conflate clears what an earlier one set.
	ss.c.SetConflate(name, req.Conflate)
	// The join stops when the connection closes (a replay waiting for a
	// client that went away, say), or when a later message of the room
	// supersedes it (see arrival.go).
	onJoined := func(j room.Joined) {
		// Forced: the response must follow a replay that may have filled
		// the queue, not overflow it.
		ss.queue(wire.TypeResponse, wire.ResponseFrame(req.Event, req.ID, wire.SubscribeResult{
			Status: "subscribed", Channel: name, Seq: j.Seq, Replayed: j.Replayed, Recovered: j.Recovered, Epoch: j.Epoch,
		}), true)
	}
	ctx := ss.startJoin(req.Room)
	var err error
	if req.State {
		err = ss.srv.opts.Hub.JoinState(ctx, req.Room, ss.c, from, onJoined, func(j room.StateJoined) *wire.Frame {
			ss.count(wire.TypeResponse) // sent by the hub, waiting for room in the queue
			return wire.StateResponseFrame(req.ID, wire.SubscribeResult{
				Status: "subscribed", Channel: name, Seq: j.Seq, Recovered: j.Recovered, Epoch: j.Epoch,
			}, j.State)
		})
	} else {
		err = ss.srv.opts.Hub.JoinFrom(ctx, req.Room, ss.c, from, onJoined)
	}
	cancelled := ss.endJoin()
	if err != nil {
		ss.c.SetConflate(name, false)
		ss.joinFailed(req, err, cancelled)
		return
	}
	ss.mu.Lock()
	ss.subs = append(ss.subs, req.Room)
	ss.mu.Unlock()
	ss.srv.m.Subscriptions.Inc()
}

// joinFailed answers a subscribe whose join failed: a close for a resume
// that cannot go on, CANCELLED for one a later message superseded,
// UNAVAILABLE otherwise.
func (ss *session) joinFailed(req wire.Request, err error, cancelled bool) {
	name := req.Room.String()
	switch {
	case ss.c.Closing():
		return // the client left during the replay
	case cancelled:
		// Whatever stopped it, the client asked for something else.
		ss.fail(req.Event, req.ID, wire.Errorf(wire.CodeCancelled, "subscribe to %s superseded by a later unsubscribe or subscribe of the room", name))
	case errors.Is(err, room.ErrTooSlow):
		ss.c.Close(wire.CloseSlowConsumer, "resume could not catch up; resume again")
	case errors.Is(err, room.ErrStreamReset):
		ss.c.Close(wire.CloseStreamReset, "the stream was recreated; subscribe again")
	default:
		ss.srv.log.Warn("subscribe failed", "room", name, "err", err)
		ss.fail(req.Event, req.ID, wire.Errorf(wire.CodeUnavailable, "room %s is unavailable; retry", name))
	}
}

func (ss *session) unsubscribe(req wire.Request) {
	ss.leave(req.Room)
	ss.send(wire.TypeResponse, wire.ResponseFrame(req.Event, req.ID, wire.UnsubscribeResult{
		Status: "unsubscribed", Channel: req.Room.String(),
	}))
}

func (ss *session) leave(r wire.Room) {
	i := ss.member(r)
	if i < 0 {
		return
	}
	ss.mu.Lock()
	ss.subs = slices.Delete(ss.subs, i, i+1)
	ss.mu.Unlock()
	ss.srv.opts.Hub.Leave(r, ss.c)
	ss.c.SetConflate(r.String(), false)
	ss.srv.m.Subscriptions.Dec()
}

// member returns r's index in subs, -1 if absent.
func (ss *session) member(r wire.Room) int {
	return slices.Index(ss.subs, r)
}

// HandleBinary answers a binary message: the protocol is JSON text frames.
func (ss *session) HandleBinary(*conn.Conn) {
	if v := ss.admit(); v != admitted {
		ss.refuse(wire.Request{}, v)
		return
	}
	ss.fail("", "", wire.Errorf(wire.CodeBadRequest, "binary messages are not supported; send JSON text frames"))
}

// HandleClose leaves every room and forgets the connection.
func (ss *session) HandleClose(c *conn.Conn, info conn.CloseInfo) {
	ss.authClose.stop()
	ss.srv.settleAuth(ss)
	for len(ss.subs) > 0 {
		ss.leave(ss.subs[len(ss.subs)-1])
	}
	ss.srv.m.Closes.WithLabelValues(closeReason(info)).Inc()
	ss.srv.unregister(c)
	ss.srv.log.Info("connection closed", "conn", ss.id, "code", int(info.Code), "reason", info.Reason, "by_peer", info.ByPeer,
		"duration", time.Duration(time.Now().UnixNano()-ss.opened).Round(time.Millisecond))
}

func (ss *session) fail(event, id string, e *wire.Error) {
	ss.sendError(e, wire.ErrorFrame(event, id, e))
}

// sendError sends f, the error e, counting it.
func (ss *session) sendError(e *wire.Error, f *wire.Frame) {
	ss.srv.m.BadRequests.WithLabelValues(e.Code).Inc()
	ss.send(wire.TypeError, f)
}

func (ss *session) send(typ string, f *wire.Frame) { ss.queue(typ, f, false) }

// queue queues f, forced past the queue's limits when force is set, and
// counts it by type.
func (ss *session) queue(typ string, f *wire.Frame, force bool) {
	var ok bool
	if force {
		ok = ss.c.Force(f)
	} else {
		ok = ss.c.Enqueue(f)
	}
	if ok {
		ss.srv.msgCount[typ].Inc()
	}
}

func (ss *session) count(typ string) {
	if c, ok := ss.srv.msgCount[typ]; ok {
		c.Inc()
	}
}

func closeReason(info conn.CloseInfo) string {
	if info.Timeout {
		return metrics.CloseTimeout
	}
	switch info.Code {
	case 1000, 1006:
		if info.ByPeer {
			return metrics.CloseClient
		}
	case 1001:
		return metrics.CloseDraining
	case 1002, 1003, 1007:
		return metrics.CloseProtocol
	case 1009:
		return metrics.CloseTooBig
	case 4008:
		return metrics.CloseSlowConsumer
	case 4010:
		return metrics.CloseStreamReset
	case 4012:
		return metrics.CloseRebalance
	case 4029:
		return metrics.CloseRateLimited
	case 1008, 4001:
		return metrics.CloseAuth
	}
	if info.ByPeer {
		return metrics.CloseClient
	}
	return metrics.CloseOther
}
