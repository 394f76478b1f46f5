// Package conn owns one server-side WebSocket connection after the upgrade:
// a reader that decodes client frames and hands complete text messages to a
// Handler, a single writer that owns the socket for writing, a bounded send
// queue of prepared frames, keep-alive pings, deadlines and typed closes.
//
// An idle connection costs no goroutine: its socket is watched by the
// node's poller (netpoll), and a reader goroutine starts only when a frame
// arrives; keep-alive and message deadlines come from the node's timer
// wheel (see poll.go). TLS connections, which the poller cannot see into,
// keep a reader goroutine blocked in a read, with keep-alive from its read
// deadline. The writer runs only while there is something to write, and a
// live frame that finds it idle is written by the enqueuer itself without
// waiting (inline.go); the handler goroutine runs only while there is a
// message to handle. The reader
// goes on reading while a handler runs, so pings are answered and closes
// noticed during a long subscribe. Everything above this package (rooms,
// sessions, the bus) sees only Enqueue, Send, Force, Close and the Handler
// callbacks.
package conn

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gobwas/ws"

	"github.com/roomcast/roomcast/internal/latch"
	"github.com/roomcast/roomcast/internal/netpoll"
	"github.com/roomcast/roomcast/internal/wheel"
	"github.com/roomcast/roomcast/internal/wire"
)

// Handler receives what a connection reads. Its methods are called one at a
// time, in the order the messages came, on a handler goroutine (not the
// reader, which goes on reading meanwhile); HandleClose comes last, after
// the last HandleMessage or HandleBinary has returned. A handler doing long
// work watches Closed to stop when the connection closes.
type Handler interface {
	// HandleMessage is called with each complete text message. p is only
	// valid during the call.
	HandleMessage(c *Conn, p []byte)
	// HandleBinary is called when the client sends a binary message, which
	// the protocol does not use.
	HandleBinary(c *Conn)
	// HandleClose is called once, after the connection is closed for good.
	HandleClose(c *Conn, info CloseInfo)
}

// An Arriver is a Handler that is told of each complete message as soon as
// the reader has it, before it waits its turn for HandleMessage or
// HandleBinary: a message may wait behind a long handler call (a
// subscribe's replay), and what it asks (an unsubscribe, say) may make
// that call's work moot.
type Arriver interface {
	// Arrived is called on the reader, once per message, in the order
	// they came, each before its HandleMessage or HandleBinary (which
	// follows unless the connection closes first). p is the text message,
	// nil for a binary one, and only valid during the call. It must be
	// quick and must not block: the reader waits for it.
	Arrived(c *Conn, p []byte, binary bool)
}

// CloseInfo says why a connection ended.
type CloseInfo struct {
	Reason  string
	Code    ws.StatusCode // the close code the server sent (or would have)
	ByPeer  bool          // the client closed or the socket failed first
	Timeout bool          // the peer went silent past the keep-alive deadline
}

// CloseInvalidPayload (1007, RFC 6455 section 7.4.1) closes a connection
// whose text message is not valid UTF-8.
const CloseInvalidPayload ws.StatusCode = 1007

// Options bound a connection's resources. Zero fields take defaults.
type Options struct {
	MaxQueueMessages int           // frames waiting to be written
	MaxQueueBytes    int           // bytes waiting to be written
	MaxMessageSize   int64         // inbound message limit; over it closes with 1009
	MessageTimeout   time.Duration // from a message's first header to its last frame; past it closes with 1008
	PingInterval     time.Duration // keep-alive ping period
	PongTimeout      time.Duration // how long past a ping a silent peer is kept
	WriteTimeout     time.Duration // one flush to the socket
	CloseGrace       time.Duration // how long to wait for the peer's close reply
	// SocketSendBuffer is the socket's send buffer (SO_SNDBUF; the kernel
	// doubles it), fixed rather than left to the kernel's autotuning, which
	// lets a peer that reads nothing take megabytes of events first (2.8
	// MB on loopback): copying them costs the node's CPU, and thousands of
	// such peers push the host into TCP memory pressure before their
	// queues can overflow. Negative: leave it to the kernel.
	SocketSendBuffer int

	// Resets, when set, lets one connection at a time reset its socket
	// (resetSocket); it is the node's, shared by every connection. Closing
	// a full socket frees what the kernel holds for it (tens of µs for
	// 512 KiB), and thousands of stalled connections abandoned by the same
	// event would otherwise take every core at once from the members that
	// read.
	Resets *sync.Mutex

	// Poller and Wheel, when both are set, let an idle plain-TCP
	// connection wait without a reader goroutine: its socket is watched
	// by Poller and its keep-alive kept by Wheel (see poll.go). They are
	// the node's, shared by every connection.
	Poller *netpoll.Poller
	Wheel  *wheel.Wheel

	// Written, when set, is called after each write of queued frames to
	// the socket with how many there were, their bytes as written
	// (compressed where the connection negotiated permessage-deflate) and
	// the stored time of the first event among them (zero when none is an
	// event): what a node measures its queues, its bytes on the wire and
	// its publish-to-write latency by. It runs on the writer (for an
	// inline write, the enqueuer: a room's fan-out) and must be quick.
	Written func(frames, bytes int, firstStored time.Time)

	// Conflated, when set, is called with how many queued frames a
	// conflating connection dropped (see SetConflate), after each
	// compaction that dropped some. It runs on the fan-out's goroutine
	// and must be quick.
	Conflated func(frames int)
}

// Defaults for Options. DefaultMessageTimeout lets the largest default
// message (64 KiB) arrive over a link of a few KB/s, yet keeps a client from
// pinning a message buffer for long by trickling fragments.
const (
	DefaultMaxQueueMessages = 1024
	DefaultMaxQueueBytes    = 4 << 20
	DefaultMaxMessageSize   = 64 << 10
	DefaultMessageTimeout   = 30 * time.Second
	DefaultPingInterval     = 25 * time.Second
	DefaultPongTimeout      = 20 * time.Second
	DefaultWriteTimeout     = 10 * time.Second
	DefaultCloseGrace       = 2 * time.Second
	// DefaultSocketSendBuffer lets a connection have 512 KiB in flight
	// (the kernel doubles it): 5 MB/s to a client 100 ms away.
	DefaultSocketSendBuffer = 256 << 10
)

// WithDefaults returns o with zero fields set to the defaults.
func (o Options) WithDefaults() Options {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	dur := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&o.MaxQueueMessages, DefaultMaxQueueMessages)
	def(&o.MaxQueueBytes, DefaultMaxQueueBytes)
	if o.SocketSendBuffer == 0 {
		o.SocketSendBuffer = DefaultSocketSendBuffer
	}
	if o.MaxMessageSize <= 0 {
		o.MaxMessageSize = DefaultMaxMessageSize
	}
	dur(&o.MessageTimeout, DefaultMessageTimeout)
	dur(&o.PingInterval, DefaultPingInterval)
	dur(&o.PongTimeout, DefaultPongTimeout)
	dur(&o.WriteTimeout, DefaultWriteTimeout)
	dur(&o.CloseGrace, DefaultCloseGrace)
	return o
}

// Conn is one upgraded WebSocket connection. Its fields are laid out to
// keep it small: an idle connection is mostly this struct.
type Conn struct {
	// Set at construction, read-only after.
	nc   net.Conn
	h    Handler
	opts *Options

	closed latch.Latch // fired when a close is requested, by either side
	done   latch.Latch // fired when the connection is finished

	// Guarded by mu: the hand-over between producers and the writer, and
	// (pending, handling, handlerFreed) between the reader and the handler
	// goroutine.
	mu            sync.Mutex
	queue         []*wire.Frame
	queueBytes    int
	pong          []byte // payload of the latest unanswered ping, nil if none
	closeInfo     CloseInfo
	closeDeadline int64          // unix ns: when the reader stops waiting for the peer; 0 before a close
	spaceFreed    chan struct{}  // made by a waiting Send, closed by the writer
	writerStopped chan struct{}  // made by finish while it waits, closed by the writer
	pending       message        // the message the handler goroutine takes next; op 0 if none
	handlerFreed  chan struct{}  // made by a waiting reader or finish, closed by the handler goroutine when it takes pending or ends
	watch         *netpoll.Watch // nil once the socket is closed (polled connections)
	closeHook     *func()        // run when a close is requested (AfterClose); nil if none
	conf          *conflation    // the rooms it conflates (conflate.go); nil if none

	// Also guarded by mu, for Stats (stats.go): when the queue last went
	// from empty to not (Unix ns), the batch the writer took and is
	// writing (nil when none), and since when that batch waited. Frames
	// are walked only when Stats asks, never per push.
	queuedSince   int64
	inflight      []*wire.Frame
	inflightSince int64

	// Flags, guarded by mu but for tcp and deflate (set at construction).
	pongDue        bool
	pingDue        bool // the reader asks for a keep-alive ping
	closing        bool
	sendCloseFrame bool // false when the socket already failed
	writing        bool // a writer goroutine runs
	writerDone     bool // the close is written (or the socket failed): no more writers
	handling       bool // a handler goroutine runs
	parked         bool // polled: no goroutine reads; the poller watches
	tcp            bool // a plain TCP socket: batches go out with writev; TLS needs them copied into records
	// deflate (set at construction): permessage-deflate was negotiated
	// (RFC 7692, no context takeover either way): queued frames go out in
	// their shared compressed form, and client messages may come
	// compressed.
	deflate bool
	// wroteAt (guarded by mu): when the writer last ended, inline or
	// not, on inlineClock: a frame that comes soon after is not written
	// inline but queued for a writer goroutine, with what follows it. Two
	// bytes, which fit beside the flags.
	wroteAt uint16

	// abandoned: the queue overflowed and the writer ends at once
	// (abandonLocked, endAbandoned). Set under mu; the writer reads it
	// without mu, after it sets its write deadline.
	abandoned atomic.Bool

	// A polled connection's reading (see poll.go). rd and timer are set by
	// Serve; rd is used by one reading goroutine at a time, which parked
	// hands from one to the next.
	rd       reader
	timer    *wheel.Timer
	lastRead atomic.Int64 // unix ns of the last frame's header
	pingAt   atomic.Int64 // unix ns of the keep-alive ping awaiting an answer, 0 if none
	msgDue   atomic.Int64 // unix ns by which the message in progress must be complete, 0 if none
}

// New wraps an upgraded connection. Call Serve to start it. deflate says
// the upgrade negotiated permessage-deflate without context takeover in
// either direction (see edge): frames are then written compressed (each
// frame compressed once, for every such connection) and compressed client
// messages accepted.
func New(nc net.Conn, h Handler, opts *Options, deflate bool) *Conn {
	_, tcp := nc.(*net.TCPConn)
	if opts.SocketSendBuffer > 0 {
		if tc, ok := tcpOf(nc); ok {
			_ = tc.SetWriteBuffer(opts.SocketSendBuffer) // the kernel's default is no failure
		}
	}
	c := &Conn{nc: nc, h: h, opts: opts, tcp: tcp, deflate: deflate}
	c.wroteAt = inlineClock() - inlineGapTicks // never written: long ago
	return c
}

// tcpOf is the TCP socket under nc, itself or under TLS.
func tcpOf(nc net.Conn) (*net.TCPConn, bool) {
	if tc, ok := nc.(interface{ NetConn() net.Conn }); ok {
		nc = tc.NetConn()
	}
	tc, ok := nc.(*net.TCPConn)
	return tc, ok
}

// Deflate reports whether the connection negotiated permessage-deflate.
func (c *Conn) Deflate() bool { return c.deflate }

// Serve starts reading: on the node's poller when Options allow it, so an
// idle connection costs no goroutine, else on a reader goroutine of its
// own. A writer goroutine runs only while there is something to write.
// Both stop by themselves when the connection closes, from either side;
// Close asks them to.
func (c *Conn) Serve() {
	if !c.servePolled() {
		go c.readLoop()
	}
}

// RemoteAddr is the peer's address.
func (c *Conn) RemoteAddr() net.Addr { return c.nc.RemoteAddr() }

// Done is closed when the connection has finished and HandleClose returned.
func (c *Conn) Done() <-chan struct{} { return c.done.Done() }

// Closed is closed as soon as a close is requested, by either side: work
// done for the connection (a replay, say) can stop then.
func (c *Conn) Closed() <-chan struct{} { return c.closed.Done() }

// Enqueue queues f for writing without blocking. It returns false when the
// connection is closing or f did not fit; a frame that does not fit closes
// the connection with 4008 (slow consumer), so nothing is dropped silently.
func (c *Conn) Enqueue(f *wire.Frame) bool {
	ok, _ := c.push(f, pushLive)
	return ok
}

// EnqueueHeld is Enqueue without starting the writer: a room delivering a
// burst of events holds every member's writer until Flush, so each
// connection writes the burst with one system call instead of one per
// event.
func (c *Conn) EnqueueHeld(f *wire.Frame) bool {
	ok, _ := c.push(f, pushHeld)
	return ok
}

// heldEnoughLocked reports whether the queue holds a quarter of its limits:
// a burst that long is written as it goes, so a member that keeps up is
// never closed for frames held back from it. Needs mu.
func (c *Conn) heldEnoughLocked() bool {
	return len(c.queue) >= c.opts.MaxQueueMessages/4 || c.queueBytes >= c.opts.MaxQueueBytes/4
}

// Flush starts the writer for what EnqueueHeld queued.
func (c *Conn) Flush() {
	c.mu.Lock()
	if len(c.queue) == 0 {
		c.mu.Unlock()
		return
	}
	c.unlockKick()
}

// Force queues f even past the queue's limits: for the few frames that must
// follow what is queued without risking a 4008 (a resume's hand-over, the
// drain notice). Callers bound how many they force. It returns false when
// the connection is closing.
func (c *Conn) Force(f *wire.Frame) bool {
	ok, _ := c.push(f, pushForce)
	return ok
}

// CanTake reports whether frames more frames of bytes in all fit in the
// queue now within half its limits, as replays do: the other half is left
// for the live events that follow, so forcing them in cannot make the next
// live event overflow the queue.
func (c *Conn) CanTake(frames, bytes int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return !c.closing && c.roomForLocked(frames, bytes)
}

// roomForLocked is CanTake's test; it needs mu.
func (c *Conn) roomForLocked(frames, bytes int) bool {
	return len(c.queue)+frames <= c.opts.MaxQueueMessages/2 && c.queueBytes+bytes <= c.opts.MaxQueueBytes/2
}

// WaitRoom waits until frames more frames of bytes would pass CanTake, the
// connection closes (ErrClosed) or ctx ends: for a hand-over that found
// the queue too full to add to.
func (c *Conn) WaitRoom(ctx context.Context, frames, bytes int) error {
	for {
		c.mu.Lock()
		switch {
		case c.closing:
			c.mu.Unlock()
			return ErrClosed
		case c.roomForLocked(frames, bytes):
			c.mu.Unlock()
			return nil
		}
		wait := c.spaceFreedLocked()
		// Frames held for a room's burst (EnqueueHeld) wait for no one:
		// the writer starts for them now.
		c.unlockKick()
		if err := c.awaitSpace(ctx, wait); err != nil {
			return err
		}
	}
}

// spaceFreedLocked returns the channel the writer closes when it next takes
// the queue; it needs mu.
func (c *Conn) spaceFreedLocked() <-chan struct{} {
	if c.spaceFreed == nil {
		c.spaceFreed = make(chan struct{})
	}
	return c.spaceFreed
}

// awaitSpace waits until wait is closed (the writer took the queue), the
// connection closes (ErrClosed) or ctx ends.
func (c *Conn) awaitSpace(ctx context.Context, wait <-chan struct{}) error {
	select {
	case <-wait:
		return nil
	case <-c.Closed():
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
}

// ErrClosed is returned by Send on a closing connection.
var ErrClosed = errors.New("connection closed")

// Send queues f, waiting while the queue is half full: for replays, which
// must neither overflow the queue nor be dropped, and which leave the other
// half for the live events that follow them. It fails once a close is
// requested or ctx ends. A frame larger than half the byte limit is sent
// alone.
func (c *Conn) Send(ctx context.Context, f *wire.Frame) error {
	for {
		ok, wait := c.push(f, pushReplay)
		switch {
		case ok:
			return nil
		case wait == nil:
			return ErrClosed
		}
		if err := c.awaitSpace(ctx, wait); err != nil {
			return err
		}
	}
}

// pushMode says how a frame is admitted to the queue.
type pushMode int

const (
	pushLive   pushMode = iota // within the limits, or close with 4008
	pushHeld                   // as pushLive, leaving the writer to Flush
	pushReplay                 // within half the limits, or wait for the writer
	pushForce                  // past the limits
)

// push queues f as mode says. For pushReplay over the limits it returns the
// channel closed when the writer next takes the queue. A closing connection
// takes nothing and returns no channel.
func (c *Conn) push(f *wire.Frame, mode pushMode) (bool, <-chan struct{}) {
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return false, nil
	}
	div := 1
	if mode == pushReplay {
		div = 2
	}
	fits := mode == pushForce ||
		len(c.queue) < c.opts.MaxQueueMessages/div && c.queueBytes+f.Len() <= c.opts.MaxQueueBytes/div ||
		mode == pushReplay && len(c.queue) == 0
	queued, dropped := false, 0
	if c.conf != nil && (mode == pushLive || mode == pushHeld) && (!fits || len(c.queue) >= c.conf.next) {
		// Live frames only: a replay waits for room instead, and forced
		// frames fit anyway.
		fits, dropped = c.conflateLocked(f)
		queued = true
	}
	var wait <-chan struct{}
	wasEmpty := len(c.queue) == 0
	switch {
	case fits && !queued:
		c.queue = append(c.queue, f)
		c.queueBytes += f.Len()
	case fits:
	case mode == pushLive || mode == pushHeld:
		c.abandonLocked()
	default:
		wait = c.spaceFreedLocked()
	}
	if wasEmpty && len(c.queue) > 0 {
		c.queuedSince = c.coarseNow() // the one clock read, per queue filled
	}
	switch {
	case fits && mode == pushHeld && !c.heldEnoughLocked():
		c.mu.Unlock() // Flush starts the writer
	case fits && mode == pushLive && c.inlineLocked(wasEmpty):
		c.writeInline() // unlocks mu
	default:
		c.unlockKick()
	}
	if dropped > 0 && c.opts.Conflated != nil {
		c.opts.Conflated(dropped)
	}
	return fits, wait
}

// abandonLocked closes a connection whose queue overflowed with 4008 (slow
// consumer), without waiting for its peer: a peer that stopped reading has
// full socket buffers, so neither the rest of a write nor a close frame
// would reach it before the write timeout, and waiting for it kept the
// connection (a member of its rooms, a writer, its buffers) for that long.
// A writer blocked on the socket is woken at once and resets the socket:
// that peer sees its connection reset, without a close frame. A peer that
// reads, only too slowly, gets the 4008 close frame if its socket (plain
// TCP) takes it without waiting (endAbandoned). Either way the node counts
// 4008. Needs mu; it makes no system call, for it runs on a room's
// fan-out.
func (c *Conn) abandonLocked() {
	if !c.startCloseLocked(wire.CloseSlowConsumer, "send queue overflow", false) {
		return
	}
	c.abandoned.Store(true)
	// Nothing waits for the peer's close reply: a parked connection is
	// finished as soon as its writer ends (handOverLocked).
	c.sendCloseFrame = false
	if c.writing {
		// A deadline in the past wakes a writer parked in a write: a
		// change to the runtime's timers, no system call. One that sets
		// its own deadline afterwards sees abandoned (writeBatch).
		_ = c.nc.SetWriteDeadline(time.Now())
	}
}

// Close closes the connection with code, dropping what is still queued.
func (c *Conn) Close(code ws.StatusCode, reason string) {
	c.close(code, reason, false)
}

// CloseAfterFlush writes what is queued, then closes with code.
func (c *Conn) CloseAfterFlush(code ws.StatusCode, reason string) {
	c.close(code, reason, true)
}

func (c *Conn) close(code ws.StatusCode, reason string, flush bool) {
	c.mu.Lock()
	c.startCloseLocked(code, reason, flush)
	c.unlockKick()
}

// startCloseLocked records the first close request; later ones are ignored.
func (c *Conn) startCloseLocked(code ws.StatusCode, reason string, flush bool) bool {
	if c.closing {
		return false
	}
	c.closing = true
	c.sendCloseFrame = true
	c.closed.Fire()
	if h := c.closeHook; h != nil {
		c.closeHook = nil
		go (*h)() // on its own goroutine: mu is held here
	}
	c.closeInfo = CloseInfo{Code: code, Reason: reason}
	if !flush {
		clear(c.queue)
		c.queue = nil
		c.queueBytes = 0
	}
	return true
}

// AfterClose arranges for f to run, on a goroutine of its own, when a
// close is requested (at once if one was); stop cancels that and reports
// whether it did. It is what a context done when the connection closes
// needs to be a parent without a goroutine watching it (see
// context.AfterFunc): one registration at a time costs the connection no
// goroutine while it waits; a second one, made while the first is in
// force, gets a goroutine of its own.
func (c *Conn) AfterClose(f func()) (stop func() bool) {
	h := &f
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.closing:
		go f()
		return func() bool { return false }
	case c.closeHook != nil:
		return c.afterCloseWatching(f)
	}
	c.closeHook = h
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.closeHook != h {
			return false
		}
		c.closeHook = nil
		return true
	}
}

// afterCloseWatching is AfterClose with a goroutine of its own, for a
// second registration while the first is in force.
func (c *Conn) afterCloseWatching(f func()) (stop func() bool) {
	stopped := make(chan struct{})
	var once sync.Once
	go func() {
		select {
		case <-c.Closed():
			once.Do(f)
		case <-stopped:
		}
	}()
	return func() bool {
		ran := true
		once.Do(func() { ran = false })
		if !ran {
			close(stopped)
		}
		return !ran
	}
}

// Closing reports whether a close has been requested.
func (c *Conn) Closing() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closing
}

// unlockKick releases mu, first making sure a writer runs for what the
// caller has just asked of it under mu (frames, a pong, a ping, a close).
// Setting writing under the same lock as the request means no request is
// left without a writer, and finish sees a writer that is about to start.
func (c *Conn) unlockKick() {
	start := !c.writing && !c.writerDone
	if start {
		c.writing = true
	}
	c.handOverLocked()
	c.mu.Unlock()
	if start {
		go c.writeLoop(nil, 0)
	}
}

// requestPing asks the writer for a keep-alive ping.
func (c *Conn) requestPing() {
	c.mu.Lock()
	c.pingDue = true
	c.unlockKick()
}

// requestPong asks the writer to answer a ping; only the latest is kept, as
// RFC 6455 section 5.5.3 allows.
func (c *Conn) requestPong(payload []byte) {
	c.mu.Lock()
	c.pong = append(c.pong[:0], payload...)
	c.pongDue = true
	c.unlockKick()
}

// Abort closes the socket at once, without a close frame: for when waiting
// for the peer is no longer allowed (a drain past its deadline).
func (c *Conn) Abort() {
	c.mu.Lock()
	if c.startCloseLocked(wire.CloseGoingAway, "aborted by server", false) {
		c.sendCloseFrame = false
	}
	c.unlockKick()
	c.closeSocket()
}
