package roomcast

import "time"

// room is a room the client follows: its position, kept across
// connections, and its subscribe on the current connection.
type room struct {
	name string
	opts SubscribeOptions

	// The position: the last seq handed to the application and the epoch
	// of the subscribe response it came after. has is false while the
	// room has none (a live-only or history subscribe not answered yet).
	has   bool
	seq   uint64
	epoch string
	sent  int // subscribes sent, over the client's life: past the first, a resubscription

	// The current connection's subscribe.
	subID     string    // its id; "" while none is under way or in force
	answered  bool      // its response came
	resume    bool      // it was sent with the kept position: events at or below it are held
	resumed   bool      // it is a resubscription
	held      []*Event  // events held until the response decides
	refused   bool      // refused for good on this connection (FORBIDDEN...): not retried
	forbidden bool      // refused FORBIDDEN: subscribe again once a new token is in, which may allow it
	needsAuth bool      // refused UNAUTHENTICATED: subscribe again once a new token is in
	retryAt   time.Time // subscribe again then (UNAVAILABLE, RATE_LIMITED); zero: not
	failures  int       // UNAVAILABLE or RATE_LIMITED answers in a row, for the retry's wait
	// leave: the unsubscribe that was to leave the old subscription before
	// a subscribe from a new position was refused (RATE_LIMITED): the old
	// subscription may still stand, so the next subscribe leaves it first.
	leave bool
}

// reset forgets the room's subscribe on a connection that ended.
func (r *room) reset() {
	r.subID, r.answered, r.resume, r.resumed, r.held = "", false, false, false, nil
	r.refused, r.forbidden, r.needsAuth, r.retryAt, r.failures = false, false, false, time.Time{}, 0
	r.leave = false // a new connection holds no old subscription
}

// setOptions takes a Subscribe's options: a position given replaces the
// kept one (the session leaves the old subscription first); without, the
// kept one stays (the room resumes).
func (r *room) setOptions(o SubscribeOptions) {
	r.opts = o
	if o.Since != nil {
		r.has, r.seq, r.epoch = true, *o.Since, o.Epoch
	}
}

// subscribeRequest is the data of a subscribe request.
type subscribeRequest struct {
	Channel  string  `json:"channel"`
	Since    *uint64 `json:"since,omitempty"`
	Epoch    string  `json:"epoch,omitempty"`
	State    bool    `json:"state,omitempty"`
	Conflate bool    `json:"conflate,omitempty"`
}

// request is the room's next subscribe, sent with id: with the kept
// position when there is one (a resume), else since 0 for the history or
// nothing (live only).
func (r *room) request(id string) subscribeRequest {
	q := subscribeRequest{Channel: r.name, State: r.opts.State, Conflate: r.opts.Conflate}
	if r.has {
		seq := r.seq
		q.Since, q.Epoch = &seq, r.epoch
	} else if r.opts.History {
		q.Since = new(uint64)
	}
	r.subID, r.answered, r.resume, r.held = id, false, r.has, nil
	r.resumed = r.sent > 0
	r.sent++
	r.refused, r.forbidden, r.needsAuth, r.retryAt = false, false, false, time.Time{}
	return q
}

// onEvent applies the each-event-once rule to e: the events to hand
// over now (none, or e).
func (r *room) onEvent(e *Event) []*Event {
	if r.subID == "" || r.refused {
		return nil // not a member on this connection
	}
	if r.resume && !r.answered && (len(r.held) > 0 || e.Seq <= r.seq) {
		// The response decides: from another stream (a recreated one,
		// whose seqs start anywhere), they are new; otherwise duplicates.
		// Once one is held, those after it are held too, to keep order.
		r.held = append(r.held, e)
		return nil
	}
	return r.take(e)
}

// take hands e over when it is above the kept position.
func (r *room) take(e *Event) []*Event {
	if r.has && e.Seq <= r.seq {
		return nil // a duplicate (a resume replays after since; a cancelled replay may have sent it)
	}
	r.has, r.seq = true, e.Seq
	return []*Event{e}
}

// onSubscribed applies the response of the room's subscribe: the held
// events to hand over first, and the Subscribed to hand over after them.
func (r *room) onSubscribed(d subscribeData) ([]*Event, *Subscribed) {
	var out []*Event
	// Held events are another stream's when the response names another
	// one; without a kept epoch (a position the application gave without
	// one), when it says recovered: false, as a since from an older
	// stream is answered.
	changed := d.Epoch != r.epoch
	if r.epoch == "" {
		changed = !d.Recovered
	}
	for _, e := range r.held {
		if changed {
			r.has, r.seq = true, e.Seq
			out = append(out, e)
		} else {
			out = append(out, r.take(e)...)
		}
	}
	if !r.has || changed || d.State != nil || d.Seq > r.seq {
		r.has, r.seq = true, d.Seq
	}
	r.epoch = d.Epoch
	r.answered, r.held, r.failures = true, nil, 0
	s := &Subscribed{Room: r.name, Seq: d.Seq, Epoch: d.Epoch, Replayed: d.Replayed, Recovered: d.Recovered, Resumed: r.resumed}
	if d.State != nil {
		s.State = make([]Event, len(d.State))
		for i := range d.State {
			s.State[i] = *d.State[i].event()
		}
	}
	return out, s
}
