package floor

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/gobwas/ws"

	"github.com/roomcast/roomcast/internal/netpoll"
	"github.com/roomcast/roomcast/internal/wire"
)

// member is one upgraded connection.
type member struct {
	s   *Server
	c   net.Conn
	raw syscall.RawConn // c's descriptor, for the fan-out's writes
	// wmu orders the writes: a join holds it from becoming a member until
	// its response is written, so that no event goes out before it.
	wmu sync.Mutex
	// Guarded by wmu: writeNow's one system call, made once per member so
	// that a delivery allocates nothing.
	now nowWrite

	// Guarded by s.mu.
	watch *netpoll.Watch
	rooms []*room
	gone  bool
}

// errClosed ends a connection the client closed.
var errClosed = errors.New("closed by the client")

// readable is the poller's callback: it must not block, so the read that
// follows runs on a goroutine of its own, which ends with it.
func (m *member) readable() {
	m.s.wg.Add(1)
	go func() {
		defer m.s.wg.Done()
		m.read()
	}()
}

// read handles one client frame, then watches the socket again (at once
// readable again if more frames wait).
func (m *member) read() {
	if err := m.readFrame(); err != nil {
		m.s.drop(m)
		return
	}
	// Under mu, so that drop cannot close the socket (and free its
	// descriptor for another) during the rearm.
	m.s.mu.Lock()
	defer m.s.mu.Unlock()
	if m.gone {
		return
	}
	if err := m.watch.Rearm(); err != nil {
		go m.s.drop(m) // drop takes mu
	}
}

func (m *member) readFrame() error {
	_ = m.c.SetReadDeadline(time.Now().Add(readTimeout))
	h, err := ws.ReadHeader(m.c)
	if err != nil {
		return err
	}
	if !h.Fin || h.Length > maxRequestLen {
		return fmt.Errorf("frame of %d bytes (fin %v): the floor reads whole small frames only", h.Length, h.Fin)
	}
	p := make([]byte, h.Length)
	if _, err := io.ReadFull(m.c, p); err != nil {
		return err
	}
	if h.Masked {
		ws.Cipher(p, h.Mask, 0)
	}
	switch h.OpCode {
	case ws.OpText:
		return m.request(p)
	case ws.OpPing:
		return m.writeBytes(ws.MustCompileFrame(ws.NewPongFrame(p)))
	case ws.OpPong:
		return nil
	case ws.OpClose:
		_ = m.writeBytes(ws.MustCompileFrame(ws.NewCloseFrame(ws.NewCloseFrameBody(ws.StatusNormalClosure, ""))))
		return errClosed
	}
	return fmt.Errorf("unexpected opcode %v", h.OpCode)
}

// request answers one client message: subscribe and unsubscribe (live
// only: nothing is stored), and pings.
func (m *member) request(p []byte) error {
	req, werr := wire.DecodeRequest(p)
	if werr != nil {
		return m.send(wire.ErrorFrame(req.Event, req.ID, werr))
	}
	switch {
	case req.Type == wire.TypePing:
		return m.send(wire.PongFrame(req.ID))
	case req.Type != wire.TypeRequest:
		return nil
	case req.Event == wire.EventSubscribe && (req.HasSince || req.State || req.Conflate):
		return m.send(wire.ErrorFrame(req.Event, req.ID, wire.Errorf(wire.CodeBadRequest, "the floor stores nothing: live subscriptions only")))
	case req.Event == wire.EventSubscribe:
		return m.s.join(m, req.Room, func(seq uint64) error { // under wmu
			f := wire.ResponseFrame(req.Event, req.ID, wire.SubscribeResult{Status: "subscribed", Channel: req.Room.String(), Seq: seq})
			return m.writeLocked(f.Bytes(), time.Now().Add(m.s.writeTimeout))
		})
	case req.Event == wire.EventUnsubscribe:
		m.s.leave(m, req.Room.String())
		return m.send(wire.ResponseFrame(req.Event, req.ID, wire.UnsubscribeResult{Status: "unsubscribed", Channel: req.Room.String()}))
	}
	return m.send(wire.ErrorFrame(req.Event, req.ID, wire.Errorf(wire.CodeBadRequest, "the floor serves subscribe and unsubscribe only")))
}

func (m *member) send(f *wire.Frame) error {
	return m.writeBytes(f.Bytes())
}

func (m *member) writeBytes(b []byte) error {
	return m.write(b, time.Now().Add(m.s.writeTimeout))
}

// write writes one whole frame before deadline.
func (m *member) write(b []byte, deadline time.Time) error {
	m.wmu.Lock()
	defer m.wmu.Unlock()
	return m.writeLocked(b, deadline)
}

// writeLocked is write with wmu held.
func (m *member) writeLocked(b []byte, deadline time.Time) error {
	_ = m.c.SetWriteDeadline(deadline)
	_, err := m.c.Write(b)
	return err
}

// writeNow writes one event with one system call that never waits, as the
// least a broadcaster can do per delivery: no deadline to set, no queue.
// Only what the socket cannot take at once (a large event, a slow reader)
// is written with a deadline, which drops a member that does not read.
func (m *member) writeNow(b []byte, deadline time.Time) error {
	m.wmu.Lock()
	defer m.wmu.Unlock()
	w := &m.now
	if w.fn == nil {
		w.fn = w.write
	}
	w.b, w.n = b, 0
	err := m.raw.Write(w.fn)
	n := w.n
	w.b = nil
	if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
		return err // a deadline left by an earlier slow write is renewed below
	}
	if n == len(b) {
		return nil
	}
	return m.writeLocked(b[n:], deadline)
}

// nowWrite is writeNow's system call: its bytes, what it wrote, and the
// method value RawConn.Write calls, bound once.
type nowWrite struct {
	b  []byte
	n  int
	fn func(fd uintptr) bool
}

func (w *nowWrite) write(fd uintptr) bool {
	n, _ := syscall.Write(int(fd), w.b) // an error writes nothing: the rest meets it
	w.n = max(n, 0)
	return true // never wait for the socket here
}

// drop closes m and takes it out of its rooms; once only.
func (s *Server) drop(m *member) {
	s.mu.Lock()
	if m.gone {
		s.mu.Unlock()
		return
	}
	m.gone = true
	delete(s.members, m)
	for _, r := range m.rooms {
		s.removeLocked(r, m)
	}
	m.rooms = nil
	w := m.watch
	s.mu.Unlock()
	if w != nil {
		w.Remove() // before the close, as the poller asks
	}
	_ = m.c.Close()
}
