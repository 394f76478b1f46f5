package roomcast

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gobwas/ws"

	"github.com/roomcast/roomcast/internal/client"
)

// session is one connection: its reader, its requests, its timers.
type session struct {
	c    *Client
	ctx  context.Context
	conn *client.Conn
	url  string

	frames     chan frame    // from the reader; bounded, so a busy client stops reading
	quit       chan struct{} // closed: the reader stops
	readerDone chan struct{}
	lastRead   atomic.Int64 // unix nanoseconds of the reader's last frame
	openedAt   time.Time
	pingSent   time.Time // a liveness ping awaits an answer since then; zero: none

	opened bool               // a first frame came: the connection is open and its token accepted
	ids    int                // request ids issued
	reqs   map[string]request // requests by id, those whose answer matters
	// leaving counts the unsubscribes of a room not answered yet: until
	// then its events are the subscription being left, dropped even when
	// the room is subscribed again meanwhile.
	leaving    map[string]int
	unsubAt    map[string]time.Time // unsubscribes refused RATE_LIMITED: sent again then
	unsubFails map[string]int
	end        *sessionEnd // set: the session ends with it
	// writeErr is why a write failed; the session ends when the reader
	// does, with the node's close if it sent one.
	writeErr error

	// Token refresh on the open connection.
	refreshAt    time.Time // when to ask for a new token; zero: not planned
	refreshing   bool      // the callback runs
	refreshFails int
	refreshDone  chan refreshResult
	refreshStop  context.CancelFunc
	refreshWG    sync.WaitGroup
	authToken    string // a new token to send again (RATE_LIMITED); "" none
}

// request is a request whose answer the session acts on.
type request struct {
	event string // subscribe, unsubscribe, auth
	room  string // subscribe, unsubscribe
	token string // auth
}

// frame is what the reader read: a data message, or the error that ended
// the connection.
type frame struct {
	p      []byte
	binary bool
	err    error
}

type refreshResult struct {
	token string
	err   error
}

// sessionEnd is how a connection, or an attempt, ended.
type sessionEnd struct {
	opened bool   // the connection had opened
	code   int    // its close code: 1006 without a close frame, 0 when it never opened
	reason string // the close's reason
	text   string // what happened, for people
	err    error  // the attempt's error (a certificate not trusted, say)
	stop   error  // the session decided the client stops (UNAUTHENTICATED without a refresh callback)
}

// session runs one connection to url until it ends or ctx ends.
func (c *Client) session(ctx context.Context, url string) sessionEnd {
	conn, err := c.dial(ctx, url)
	if err != nil {
		return sessionEnd{text: err.Error(), err: err}
	}
	s := &session{c: c, ctx: ctx, conn: conn, url: url, frames: make(chan frame, 16), quit: make(chan struct{}),
		readerDone: make(chan struct{}), openedAt: time.Now(), reqs: make(map[string]request),
		leaving: make(map[string]int), unsubAt: make(map[string]time.Time), unsubFails: make(map[string]int), refreshDone: make(chan refreshResult, 1)}
	s.refreshStop = func() {}
	defer s.finish()
	go s.read()
	if c.opts.Refresh != nil && c.token != "" {
		s.refreshAt = refreshAt(c.tokenAt, tokenExpiry(c.token))
	}
	// The pong tells that the connection is open and its token accepted
	// (a refused one closes with 1008 first), before any answer to the
	// subscribes behind it.
	s.sendMessage(map[string]string{"type": typePing, "id": "open"})
	for _, name := range c.order {
		r := c.rooms[name]
		r.reset()
		s.subscribe(r)
	}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for s.end == nil {
		s.step(timer)
	}
	s.end.opened = s.opened
	return *s.end
}

// dial opens a connection to url with the token in the upgrade.
func (c *Client) dial(ctx context.Context, url string) (*client.Conn, error) {
	h := http.Header{}
	for k, v := range c.opts.Header {
		h[k] = v
	}
	if c.token != "" {
		h.Set("Authorization", "Bearer "+c.token)
	}
	d := ws.Dialer{Timeout: c.opts.DialTimeout, TLSConfig: c.opts.TLSConfig, NetDial: c.opts.NetDial}
	if c.opts.Compression {
		return client.DialCompressed(ctx, d, url, h)
	}
	return client.DialWith(ctx, d, url, h)
}

// read reads frames until the connection ends or the session quits.
func (s *session) read() {
	defer close(s.readerDone)
	for {
		p, binary, err := s.conn.ReadFrame(time.Time{})
		s.lastRead.Store(time.Now().UnixNano())
		select {
		case s.frames <- frame{p, binary, err}:
		case <-s.quit:
			return
		}
		if err != nil {
			return
		}
	}
}

// finish closes the connection (1000, when it is still open) and waits
// for the session's goroutines.
func (s *session) finish() {
	close(s.quit)
	_ = s.conn.Close()
	<-s.readerDone
	s.refreshStop()
	s.refreshWG.Wait()
}

// step waits for one thing to happen and handles it.
func (s *session) step(timer *time.Timer) {
	timer.Reset(time.Until(s.nextDue()))
	select {
	case <-s.ctx.Done():
		s.end = &sessionEnd{}
	case f := <-s.frames:
		if f.err != nil {
			s.ended(f.err)
			return
		}
		s.handle(f)
	case <-s.c.wake:
		s.c.applyCommands(s)
	case r := <-s.refreshDone:
		s.refreshed(r)
	case <-timer.C:
		s.due(time.Now())
	}
	if s.end == nil && s.ctx.Err() != nil {
		s.end = &sessionEnd{}
	}
}

// ended records how the connection ended.
func (s *session) ended(err error) {
	var ce *client.CloseError
	if errors.As(err, &ce) {
		s.end = &sessionEnd{code: int(ce.Code), reason: ce.Reason, text: ce.Error(), err: err}
		return
	}
	if s.writeErr != nil {
		err = s.writeErr
	}
	s.end = &sessionEnd{code: 1006, text: "connection lost: " + err.Error(), err: err}
}

// stopWith ends the session and the client.
func (s *session) stopWith(stop *StopError, text string) {
	s.end = &sessionEnd{code: 1000, text: text, stop: stop}
}

// newID returns a request id of the session.
func (s *session) newID(prefix string) string {
	s.ids++
	return prefix + strconv.Itoa(s.ids)
}

// sendMessage writes m; a connection that cannot be written ends.
func (s *session) sendMessage(m any) {
	p, err := json.Marshal(m)
	if err == nil {
		err = s.conn.SendRaw(p)
	}
	if err != nil && s.end == nil && s.writeErr == nil {
		// The reader tells how the connection ended: a write fails when
		// the node closed it first (its close frame, a 1008 say, is what
		// counts, and the reader has it), so its outcome wins. A write
		// that failed otherwise closes the socket, so that the reader
		// ends too.
		s.writeErr = err
		if !errors.Is(err, net.ErrClosed) {
			_ = s.conn.NetConn().Close()
		}
	}
}

// sendRequest sends a request of event with data under id.
func (s *session) sendRequest(event, id string, data any) {
	s.sendMessage(struct {
		Type  string `json:"type"`
		Event string `json:"event"`
		ID    string `json:"id"`
		Data  any    `json:"data"`
	}{"request", event, id, data})
}

// subscribe sends r's next subscribe.
func (s *session) subscribe(r *room) {
	if r.subID != "" {
		delete(s.reqs, r.subID) // superseded: a late answer to it is ignored
	}
	if r.leave {
		r.leave = false
		s.unsubscribe(r.name)
	}
	id := s.newID("s")
	q := r.request(id)
	s.reqs[id] = request{event: "subscribe", room: r.name}
	s.sendRequest("subscribe", id, q)
}

// unsubscribe sends an unsubscribe of name; the room's events are
// dropped until it is answered.
func (s *session) unsubscribe(name string) {
	delete(s.unsubAt, name)
	id := s.newID("u")
	s.reqs[id] = request{event: "unsubscribe", room: name}
	s.leaving[name]++
	s.sendRequest("unsubscribe", id, map[string]string{"channel": name})
}

// left records the answer to an unsubscribe of name.
func (s *session) left(name string) {
	if s.leaving[name]--; s.leaving[name] <= 0 {
		delete(s.leaving, name)
	}
}

// applyCommands applies the queued Subscribe and Unsubscribe calls to the
// rooms, and on the connection when there is one (s not nil).
func (c *Client) applyCommands(s *session) {
	for _, cmd := range c.takeCommands() {
		r := c.rooms[cmd.room]
		if cmd.unsubscribe {
			if r == nil {
				continue
			}
			delete(c.rooms, cmd.room)
			for i, name := range c.order {
				if name == cmd.room {
					c.order = append(c.order[:i:i], c.order[i+1:]...)
					break
				}
			}
			if s != nil {
				s.unsubscribe(cmd.room)
			}
			continue
		}
		followed := r != nil
		if !followed {
			r = &room{name: cmd.room}
			c.rooms[cmd.room] = r
			c.order = append(c.order, cmd.room)
		}
		r.setOptions(cmd.opts)
		r.refused = false
		if s != nil {
			delete(s.unsubAt, cmd.room) // the subscribe starts the room over
			delete(s.unsubFails, cmd.room)
			if followed && cmd.opts.Since != nil {
				// A new position: the old subscription's events still on
				// their way would be handed over above it and become the
				// kept seq, and the replay asked for would then be
				// dropped as duplicates. Leaving first drops them until
				// the unsubscribe is answered.
				s.unsubscribe(cmd.room)
			}
			s.subscribe(r)
		}
	}
}

// nextDue is when the session next has something to do unasked.
func (s *session) nextDue() time.Time {
	due := s.lastHeard().Add(s.c.opts.PingAfter)
	if !s.pingSent.IsZero() {
		due = s.pingSent.Add(s.c.opts.PingTimeout)
	}
	earlier := func(t time.Time) {
		if !t.IsZero() && t.Before(due) {
			due = t
		}
	}
	if !s.refreshing {
		earlier(s.refreshAt)
	}
	for _, r := range s.c.rooms {
		earlier(r.retryAt)
	}
	for _, at := range s.unsubAt {
		earlier(at)
	}
	return due
}

// lastHeard is when the node was last heard from.
func (s *session) lastHeard() time.Time {
	if n := s.lastRead.Load(); n != 0 {
		return time.Unix(0, n)
	}
	return s.openedAt
}

// due does what is due at now: a liveness ping, or dropping a connection
// that did not answer it; a token refresh; the subscribes to retry.
func (s *session) due(now time.Time) {
	if s.pingSent.IsZero() && !now.Before(s.lastHeard().Add(s.c.opts.PingAfter)) {
		s.pingSent = now
		s.sendMessage(map[string]string{"type": typePing, "id": "live"})
	} else if !s.pingSent.IsZero() && !now.Before(s.pingSent.Add(s.c.opts.PingTimeout)) &&
		s.lastHeard().Before(s.pingSent) && len(s.frames) == 0 {
		// Nothing read since the ping, and nothing waits to be handled:
		// a cut network sends no close.
		s.end = &sessionEnd{code: 1006, text: fmt.Sprintf("no answer to a ping within %s", s.c.opts.PingTimeout)}
		return
	}
	if !s.refreshing && !s.refreshAt.IsZero() && !now.Before(s.refreshAt) {
		s.refreshAt = time.Time{}
		if s.authToken != "" {
			s.sendAuth(s.authToken)
		} else {
			s.startRefresh()
		}
	}
	for _, name := range s.c.order {
		if r := s.c.rooms[name]; !r.retryAt.IsZero() && !now.Before(r.retryAt) {
			s.subscribe(r)
		}
	}
	for name, at := range s.unsubAt {
		if !now.Before(at) {
			s.unsubscribe(name)
		}
	}
}
