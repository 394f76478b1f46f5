package roomcast

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// The error codes the client acts on (docs/protocol.md section 3).
const (
	codeUnavailable     = "UNAVAILABLE"
	codeRateLimited     = "RATE_LIMITED"
	codeCancelled       = "CANCELLED"
	codeUnauthenticated = "UNAUTHENTICATED"
	codeForbidden       = "FORBIDDEN"
)

// handle handles one data message from the node.
func (s *session) handle(f frame) {
	s.pingSent = time.Time{} // heard from
	if !s.opened {
		s.opened = true
		if !s.c.notice(s.ctx, Notice{Kind: Connected, Text: "connected to " + s.url, URL: s.url}) {
			return
		}
	}
	m, err := decodeFrame(f.p, f.binary)
	if err != nil {
		s.c.notice(s.ctx, Notice{Kind: BadInput, Text: "skipped " + err.Error()})
		return
	}
	switch m.Type {
	case typeEvent:
		if m.Room == "" { // server.draining: a 1001 close follows
			s.c.notice(s.ctx, Notice{Kind: Draining, Text: "the node is draining", URL: s.url})
			return
		}
		if s.leaving[m.Room] > 0 {
			return // the subscription being left: a later subscribe's events come after its answer
		}
		if r := s.c.rooms[m.Room]; r != nil {
			s.hand(r.onEvent(m.event()))
		}
	case typeResponse:
		s.response(&m)
	case typeError:
		s.failed(&m)
	}
}

// hand delivers events to the application.
func (s *session) hand(events []*Event) {
	for _, e := range events {
		if !s.c.deliver(s.ctx, e) {
			return
		}
	}
}

// response handles the answer to a request.
func (s *session) response(m *inbound) {
	req, ok := s.reqs[m.ID]
	if !ok {
		return // superseded, or a request whose answer does not matter
	}
	switch req.event {
	case "subscribe":
		r := s.c.rooms[req.room]
		var d subscribeData
		if r == nil || r.subID != m.ID {
			return
		}
		if err := json.Unmarshal(m.Data, &d); err != nil {
			// As an UNAVAILABLE: without a response the held events
			// cannot be decided (they are dropped) and the room is not
			// known to be subscribed, so it is subscribed again.
			wait := s.retryLater(m.ID, r, codeUnavailable)
			s.c.notice(s.ctx, Notice{Kind: BadInput, Room: req.room, Text: fmt.Sprintf("skipped a subscribe response of %s that does not parse: %v; subscribing again in %s",
				req.room, err, wait.Round(time.Millisecond))})
			return
		}
		held, sub := r.onSubscribed(d)
		s.hand(held)
		s.c.deliver(s.ctx, sub)
	case "unsubscribe":
		delete(s.reqs, m.ID)
		delete(s.unsubFails, req.room)
		s.left(req.room)
	case "auth":
		delete(s.reqs, m.ID)
		s.c.token, s.c.tokenAt = req.token, time.Now()
		s.authToken, s.refreshFails = "", 0
		s.refreshAt = refreshAt(s.c.tokenAt, tokenExpiry(req.token))
		if !s.c.notice(s.ctx, Notice{Kind: TokenRefreshed, Text: "the node accepted the new token"}) {
			return
		}
		for _, name := range s.c.order {
			if r := s.c.rooms[name]; r.needsAuth || r.forbidden {
				s.subscribe(r)
			}
		}
	}
}

// failed handles an error message.
func (s *session) failed(m *inbound) {
	var e errorData
	_ = json.Unmarshal(m.Data, &e)
	req, ok := s.reqs[m.ID]
	switch {
	case ok && req.event == "subscribe":
		s.subscribeFailed(m.ID, req.room, e)
	case ok && req.event == "auth":
		s.authFailed(m.ID, req.token, e)
	case ok && req.event == "unsubscribe":
		s.unsubscribeFailed(m.ID, req.room, e)
	case m.ID == "" && e.Code == codeForbidden:
		// A refreshed token no longer allows a room: the node left it.
		if r := s.c.rooms[m.Room]; r != nil {
			r.refused, r.forbidden, r.subID = true, true, ""
		}
		s.c.notice(s.ctx, Notice{Kind: RequestError, Error: e.Code, Room: m.Room, Text: e.Message})
	case m.ID == "":
		s.c.notice(s.ctx, Notice{Kind: RequestError, Error: e.Code, Text: e.Message})
	}
	// Other ids: requests superseded, or whose refusal does not matter
	// (an unsubscribe, a ping).
}

// subscribeFailed handles the refusal of the room's subscribe id.
func (s *session) subscribeFailed(id, name string, e errorData) {
	r := s.c.rooms[name]
	if r == nil || r.subID != id || e.Code == codeCancelled {
		return // superseded by a later subscribe or an unsubscribe of the client's
	}
	delete(s.reqs, id)
	r.subID, r.held = "", nil
	text := fmt.Sprintf("subscribe %s: %s: %s", name, e.Code, e.Message)
	switch e.Code {
	case codeUnavailable, codeRateLimited:
		wait := s.retryLater(id, r, e.Code)
		text += "; retrying in " + wait.Round(time.Millisecond).String()
	case codeUnauthenticated:
		if s.c.opts.Refresh == nil {
			s.stopWith(&StopError{ErrorCode: e.Code, Reason: "the node requires a token"}, text)
			return
		}
		r.needsAuth = true
		if !s.refreshing && s.authToken == "" && !s.authPending() {
			s.refreshAt = time.Now()
		}
		text += "; asking for a new token"
	default: // FORBIDDEN, INVALID_ROOM, TOO_MANY_SUBSCRIPTIONS, BAD_REQUEST: would be refused again
		r.refused, r.forbidden = true, e.Code == codeForbidden
	}
	s.c.notice(s.ctx, Notice{Kind: RequestError, Error: e.Code, Room: name, Text: text})
}

// retryLater gives up r's subscribe id, whose held events are dropped,
// and plans the next one after the retry wait of code (UNAVAILABLE: 1 s,
// doubling to 10 s; RATE_LIMITED: the backoff), which it returns.
func (s *session) retryLater(id string, r *room, code string) time.Duration {
	delete(s.reqs, id)
	r.subID, r.held = "", nil
	r.failures++
	wait := min(time.Second<<min(r.failures-1, 4), 10*time.Second)
	if code == codeRateLimited {
		wait = backoff(r.failures, s.c.opts.BackoffMin, s.c.opts.BackoffMax, jitter())
	}
	r.retryAt = time.Now().Add(wait)
	return wait
}

// unsubscribeFailed handles the refusal of an unsubscribe of name: one
// refused RATE_LIMITED is sent again after the backoff, unless the room
// was subscribed again meanwhile.
func (s *session) unsubscribeFailed(id, name string, e errorData) {
	delete(s.reqs, id)
	s.left(name)
	text := fmt.Sprintf("unsubscribe %s: %s: %s", name, e.Code, e.Message)
	if r := s.c.rooms[name]; r != nil && e.Code == codeRateLimited {
		// It was to leave the old subscription before a subscribe from a
		// new position, which followed it: the old one may stand, and its
		// events cannot be told from the new one's. That subscribe is
		// given up (its answer ignored, the room's events dropped) and
		// both are sent again after the backoff.
		if r.subID != "" {
			delete(s.reqs, r.subID)
			r.subID, r.held = "", nil
		}
		r.leave = true
		r.failures++
		wait := backoff(r.failures, s.c.opts.BackoffMin, s.c.opts.BackoffMax, jitter())
		r.retryAt = time.Now().Add(wait)
		text += "; leaving and subscribing again in " + wait.Round(time.Millisecond).String()
	} else if e.Code == codeRateLimited {
		s.unsubFails[name]++
		wait := backoff(s.unsubFails[name], s.c.opts.BackoffMin, s.c.opts.BackoffMax, jitter())
		s.unsubAt[name] = time.Now().Add(wait)
		text += "; sending again in " + wait.Round(time.Millisecond).String()
	}
	s.c.notice(s.ctx, Notice{Kind: RequestError, Error: e.Code, Room: name, Text: text})
}

// authPending reports whether an auth request awaits its answer.
func (s *session) authPending() bool {
	for _, q := range s.reqs {
		if q.event == "auth" {
			return true
		}
	}
	return false
}

// authFailed handles the refusal of a new token.
func (s *session) authFailed(id, token string, e errorData) {
	delete(s.reqs, id)
	if e.Code == codeRateLimited {
		s.authToken = token // the token is fine: send it again
		s.refreshAt = time.Now().Add(backoff(1, s.c.opts.BackoffMin, s.c.opts.BackoffMax, jitter()))
		return
	}
	text := fmt.Sprintf("the node refused the new token: %s: %s", e.Code, e.Message)
	if e.Code != codeForbidden {
		// Tried again until the node closes with 4001; a token for
		// another user (FORBIDDEN) needs a new connection, which is the
		// application's to open.
		s.refreshFails++
		wait := backoff(s.refreshFails, s.c.opts.BackoffMin, s.c.opts.BackoffMax, jitter())
		s.refreshAt = time.Now().Add(wait)
		text += "; trying again in " + wait.Round(time.Millisecond).String()
	}
	s.c.notice(s.ctx, Notice{Kind: TokenRefreshFailed, Error: e.Code, Text: text})
}

// startRefresh asks the refresh callback for a new token, on a goroutine
// of the session's.
func (s *session) startRefresh() {
	s.refreshing = true
	ctx, cancel := context.WithCancel(s.ctx)
	s.refreshStop = cancel
	s.refreshWG.Add(1)
	go func() {
		defer s.refreshWG.Done()
		tok, err := s.c.opts.Refresh(ctx)
		s.refreshDone <- refreshResult{tok, err} // buffered: one refresh at a time
	}()
}

// refreshed sends the callback's new token in an auth request, or plans
// the next try.
func (s *session) refreshed(r refreshResult) {
	s.refreshing = false
	s.refreshStop()
	var why string
	switch {
	case r.err != nil:
		why = r.err.Error()
	case r.token == "" || r.token == s.c.token:
		why = "the refresh callback gave no new token"
	default:
		s.sendAuth(r.token)
		return
	}
	s.refreshFails++
	wait := backoff(s.refreshFails, s.c.opts.BackoffMin, s.c.opts.BackoffMax, jitter())
	s.refreshAt = time.Now().Add(wait)
	s.c.notice(s.ctx, Notice{Kind: TokenRefreshFailed, Text: fmt.Sprintf("token refresh: %s; trying again in %s", why, wait.Round(time.Millisecond))})
}

// sendAuth sends token in an auth request.
func (s *session) sendAuth(token string) {
	s.authToken = ""
	id := s.newID("a")
	s.reqs[id] = request{event: "auth", token: token}
	s.sendRequest("auth", id, map[string]string{"token": token})
}
