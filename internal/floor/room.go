package floor

import (
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/roomcast/roomcast/internal/wire"
)

// flushTimeout bounds the wait for NATS to confirm a new room's subscription.
const flushTimeout = 5 * time.Second

// room is one room with members and its core NATS subscription.
type room struct {
	s    *Server
	room wire.Room
	sub  *nats.Subscription
	seq  atomic.Uint64 // events delivered: the seq of the frames, counted here since nothing stores them

	// members is replaced, never modified, under s.mu: the subscription's
	// callback reads it without a lock.
	members atomic.Pointer[[]*member]
	joining int // guarded by s.mu: joins under way, which keep the room
}

// join subscribes m to rm: once NATS has the room's subscription, m
// becomes a member and respond (with the room's seq) is written, m's
// writes held meanwhile, so that its events follow the response and none
// published after the response is missed.
func (s *Server) join(m *member, rm wire.Room, respond func(seq uint64) error) error {
	name := rm.String()
	s.mu.Lock()
	if m.gone {
		s.mu.Unlock()
		return errClosed
	}
	r, fresh := s.rooms[name], false
	if r == nil {
		r, fresh = &room{s: s, room: rm}, true
		r.members.Store(&[]*member{})
		sub, err := s.nc.Subscribe(s.subjects.Room(rm), r.deliver)
		if err != nil {
			s.mu.Unlock()
			return fmt.Errorf("subscribe to %s: %w", name, err)
		}
		r.sub = sub
		s.rooms[name] = r
	}
	r.joining++
	s.mu.Unlock()

	var err error
	if fresh {
		err = s.nc.FlushTimeout(flushTimeout)
	}
	m.wmu.Lock() // wmu before mu, never the other way round
	defer m.wmu.Unlock()
	s.mu.Lock()
	r.joining--
	if err == nil && !m.gone && !slices.Contains(m.rooms, r) {
		m.rooms = append(m.rooms, r)
		r.members.Store(new(append(slices.Clone(*r.members.Load()), m)))
	}
	s.reapLocked(r)
	s.mu.Unlock()
	if err != nil {
		return err
	}
	return respond(r.seq.Load())
}

// leave unsubscribes m from the room named name, if it is a member.
func (s *Server) leave(m *member, name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := slices.IndexFunc(m.rooms, func(r *room) bool { return r.room.String() == name })
	if i < 0 {
		return
	}
	r := m.rooms[i]
	m.rooms = slices.Delete(m.rooms, i, i+1)
	s.removeLocked(r, m)
}

// removeLocked takes m out of r's members.
func (s *Server) removeLocked(r *room, m *member) {
	r.members.Store(new(slices.DeleteFunc(slices.Clone(*r.members.Load()), func(x *member) bool { return x == m })))
	s.reapLocked(r)
}

// reapLocked ends r's subscription once nobody is in it or joining it.
func (s *Server) reapLocked(r *room) {
	if len(*r.members.Load()) > 0 || r.joining > 0 || s.rooms[r.room.String()] != r {
		return
	}
	delete(s.rooms, r.room.String())
	_ = r.sub.Unsubscribe()
}

// deliver is the subscription's callback: the frame built once, written to
// each member in turn with one write that never waits when the socket takes
// it (writeNow), a member whose write fails or times out dropped.
func (r *room) deliver(msg *nats.Msg) {
	name, data, err := wire.ParsePayload(msg.Data)
	if err != nil {
		return // not an event: nothing to deliver
	}
	f := wire.EventFrame(&wire.Event{Room: r.room, Seq: r.seq.Add(1), Name: name, Data: data})
	b := f.Bytes()
	deadline := time.Now().Add(r.s.writeTimeout)
	for _, m := range *r.members.Load() {
		if err := m.writeNow(b, deadline); err != nil {
			r.s.drop(m)
		}
	}
}
