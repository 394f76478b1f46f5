package bench

import (
	"bufio"
	"bytes"
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
	"github.com/roomcast/roomcast/internal/wire"
)

// receiver is one bench connection, subscribed to one room, and what its
// reader goroutine records about the events it receives.
type receiver struct {
	// Set at construction. Exactly one of c (roomcast) and nats (the
	// reference) is set.
	c     *client.Conn
	nats  *natsConn
	index int    // of the connection: it went to URL index mod len(URLs)
	room  int    // index of the room
	name  string // the room's name, or its subject on the reference
	// also is a second room the connection follows (the cluster scenario's
	// room of every connection), its events counted apart; nil: none.
	also *receiver

	// mu guards what the reader writes below while it handles a message,
	// for a generator that reads a step's figures while the connection
	// stays open (take); otherwise they are read after the reader ended.
	mu sync.Mutex
	// Written by the reader goroutine only; read by others after it ended.
	hist       histogram
	lastSeq    uint64 // the latest seq seen
	lastN      uint64 // the latest counter seen; the publisher starts at 1
	gaps       int64  // counters skipped
	outOfOrder int64  // seq not above the previous one, or a counter repeated
	unexpected int64  // other messages: other rooms, errors, foreign events
	lastRecv   int64  // unix ns of the latest event
	err        error  // why the reader ended early; nil when the bench stopped it

	// Written by the reader, read while it runs: the wait for deliveries.
	received atomic.Int64
}

// tick is the data of a bench event.
type tick struct {
	SentNS int64  `json:"sent_ns"`
	N      uint64 `json:"n"`
}

// tickPrefix and tickMiddle frame the data as the publisher writes it.
const (
	tickPrefix = `{"sent_ns":`
	tickMiddle = `,"n":`
)

// parseTick decodes a tick's data. The data the publisher wrote comes back
// byte for byte, so the usual case is parsed by hand, which halves the
// bench's decoding cost under load; anything else goes through encoding/json.
func parseTick(p []byte) (tick, bool) {
	if rest, ok := bytes.CutPrefix(p, []byte(tickPrefix)); ok {
		if sent, rest, ok := bytes.Cut(rest, []byte(tickMiddle)); ok {
			if n, ok := bytes.CutSuffix(rest, []byte("}")); ok {
				s, err1 := strconv.ParseInt(string(sent), 10, 64)
				c, err2 := strconv.ParseUint(string(n), 10, 64)
				if err1 == nil && err2 == nil {
					return tick{SentNS: s, N: c}, true
				}
			}
		}
	}
	var t tick
	err := json.Unmarshal(p, &t)
	return t, err == nil
}

// tickEvent is the event name the publisher uses.
const tickEvent = "bench.tick"

// dialer opens and subscribes the bench connections.
type dialer struct {
	cfg     *Config
	header  http.Header
	tally   *tally
	readers *sync.WaitGroup // the reader goroutines
	readCtx context.Context // ends the readers
	// roomsOf, when set, is the rooms connection i follows: its own and
	// optionally a second (receiver.also); nil: room i mod Rooms alone.
	roomsOf func(i int) []int
}

// connectAll opens cfg.Conns connections, cfg.DialConcurrency at a time, each
// within cfg.DialTimeout, and subscribes connection i to room i mod Rooms on
// URL i mod len(URLs). Each subscribed connection gets a reader goroutine,
// which runs until d.readCtx ends or the connection fails. It returns the
// subscribed connections (failures are nil entries, counted in the tally),
// and stops early when ctx ends.
func (d *dialer) connectAll(ctx context.Context) []*receiver {
	recvs := make([]*receiver, d.cfg.Conns)
	var next atomic.Int64
	var workers sync.WaitGroup
	for range min(d.cfg.DialConcurrency, d.cfg.Conns) {
		workers.Add(1)
		go func() {
			defer workers.Done()
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= len(recvs) {
					return
				}
				r, stage, err := d.connect(ctx, i)
				if err != nil {
					if ctx.Err() == nil {
						d.tally.add(stage, err)
					}
					continue
				}
				recvs[i] = r
				d.startReader(r)
			}
		}()
	}
	workers.Wait()
	return recvs
}

// startReader starts r's reader goroutine, which d.readCtx ends.
func (d *dialer) startReader(r *receiver) {
	d.readers.Add(1)
	go func() {
		defer d.readers.Done()
		r.read(d.readCtx, d.tally)
	}()
}

// connect dials connection i and waits for its subscribe response; stage
// names what failed.
func (d *dialer) connect(ctx context.Context, i int) (r *receiver, stage string, err error) {
	ctx, cancel := context.WithTimeout(ctx, d.cfg.DialTimeout)
	defer cancel()
	url := d.cfg.URLs[i%len(d.cfg.URLs)]
	rooms := []int{i % d.cfg.Rooms}
	if d.roomsOf != nil {
		rooms = d.roomsOf(i)
	}
	room := rooms[0]
	wd := ws.Dialer{Timeout: d.cfg.DialTimeout, NetDial: dialBuffered, TLSConfig: d.cfg.TLS}
	if d.cfg.Protocol == ProtocolNATS {
		subjects := make([]string, len(rooms))
		for k, rm := range rooms {
			subjects[k] = natsSubject(rm)
		}
		nc, err := dialNATS(ctx, wd, url, subjects...)
		if err != nil {
			return nil, "subscribe", err
		}
		r := &receiver{nats: nc, index: i, room: room, name: subjects[0]}
		if len(rooms) > 1 {
			r.also = &receiver{index: i, room: rooms[1], name: subjects[1]}
		}
		return r, "", nil
	}
	dial := client.DialWith
	if d.cfg.Compression {
		dial = client.DialCompressed
	}
	c, err := dial(ctx, wd, url, d.header)
	if err != nil {
		return nil, "dial", err
	}
	r = &receiver{c: c, index: i, room: room, name: RoomName(room)}
	if len(rooms) > 1 {
		r.also = &receiver{index: i, room: rooms[1], name: RoomName(rooms[1])}
	}
	for _, name := range []string{r.name, r.alsoName()} {
		if name == "" {
			continue
		}
		if err := subscribe(ctx, c, name); err != nil {
			_ = c.Close()
			return nil, "subscribe", fmt.Errorf("%s on %s: %w", name, url, err)
		}
	}
	return r, "", nil
}

// readBufferSize is the read buffer of a bench connection. Unbuffered, the
// client reads each frame with two or three syscalls, which under load costs
// the bench more CPU than the edge spends sending; with the buffer, one read
// takes every frame that has arrived.
const readBufferSize = 2 << 10

// bufferedConn is a socket that reads through a buffer.
type bufferedConn struct {
	net.Conn
	br *bufio.Reader
}

func (c *bufferedConn) Read(p []byte) (int, error) { return c.br.Read(p) }

// dialBuffered is the ws.Dialer's NetDial: a TCP connection with a read
// buffer (TLS, for wss://, is layered on top by the dialer).
func dialBuffered(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	return &bufferedConn{Conn: nc, br: bufio.NewReaderSize(nc, readBufferSize)}, nil
}

// maxBeforeResponse bounds the messages skipped while waiting for the
// subscribe response.
const maxBeforeResponse = 1000

// subscribe subscribes c to room and waits, until ctx's deadline, for the
// response.
func subscribe(ctx context.Context, c *client.Conn, room string) error {
	const id = "bench"
	if err := c.Subscribe(id, room, nil); err != nil {
		return fmt.Errorf("send subscribe: %w", err)
	}
	deadline, _ := ctx.Deadline()
	fired := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(fired)
		_ = c.NetConn().SetReadDeadline(time.Now())
	})
	defer func() {
		if !stop() {
			<-fired // so it cannot cut short the reader's first read
		}
	}()
	for range maxBeforeResponse {
		m, err := c.Read(deadline)
		if err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("no subscribe response: %w", context.Cause(ctx))
			}
			return err
		}
		if m.ID != id {
			continue // an event of a room subscribed by someone else's publisher, a pong
		}
		switch m.Type {
		case wire.TypeResponse:
			return nil
		case wire.TypeError:
			var e wire.ErrorData
			_ = json.Unmarshal(m.Data, &e)
			return fmt.Errorf("refused: %s: %s", e.Code, e.Message)
		}
	}
	return errors.New("no subscribe response among the first messages")
}

// read is the reader goroutine: it records every message until ctx ends,
// which closes the connection (with a 1000 close frame), or the connection
// fails. Pings are answered by the client on the way.
func (r *receiver) read(ctx context.Context, t *tally) {
	if r.nats != nil {
		r.readNATS(ctx, t)
		return
	}
	closed := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(closed)
		_ = r.c.Close()
	})
	defer func() {
		if stop() {
			_ = r.c.NetConn().Close() // ended by an error: the bench did not close it
		} else {
			<-closed
		}
	}()
	_ = r.c.NetConn().SetReadDeadline(time.Time{}) // the subscribe's deadline ends here
	for {
		p, err := r.c.NextText() // p is valid until the next read: handleText keeps nothing of it
		now := time.Now().UnixNano()
		if err == nil {
			r.mu.Lock()
			err = r.handleText(p, now)
			r.mu.Unlock()
		}
		if err != nil {
			if ctx.Err() == nil {
				r.fail(err)
				t.add("read", fmt.Errorf("%s: %w", r.name, err))
			}
			return
		}
	}
}

// handleText records one text message received at now. The bench's events
// are parsed by hand in the layout the edge writes them (wire.EventFrame),
// which keeps the bench's decoding cost near the reference client's;
// anything else goes through encoding/json.
func (r *receiver) handleText(p []byte, now int64) error {
	if r.countFrame(p, now) || r.also != nil && r.also.countFrame(p, now) {
		return nil
	}
	var m wire.Message
	if err := json.Unmarshal(p, &m); err != nil {
		return fmt.Errorf("server sent invalid JSON: %w", err)
	}
	if r.also != nil && m.Room == r.also.name {
		r.also.handle(m, now)
		return nil
	}
	r.handle(m, now)
	return nil
}

// fail records why the reader ended early.
func (r *receiver) fail(err error) {
	r.mu.Lock()
	r.err = err
	r.mu.Unlock()
}

// countFrame counts p if it is a bench event of r's room in
// wire.EventFrame's layout.
func (r *receiver) countFrame(p []byte, now int64) bool {
	seq, data, ok := parseEventFrame(p, r.name)
	if !ok {
		return false
	}
	d, ok := parseTick(data)
	if !ok || d.N == 0 {
		return false
	}
	r.countSeq(seq)
	r.count(d, now)
	return true
}

// alsoName is the name of the second room r follows, or "".
func (r *receiver) alsoName() string {
	if r.also == nil {
		return ""
	}
	return r.also.name
}

// eventPrefix starts every bench event as wire.EventFrame writes it.
const eventPrefix = `{"type":"event","event":"` + tickEvent + `","room":"`

// parseEventFrame reads a bench event of room in wire.EventFrame's layout:
// {"type":"event","event":"bench.tick","room":"<room>","seq":N[,"ts":"..."],"data":<data>}.
func parseEventFrame(p []byte, room string) (seq uint64, data []byte, ok bool) {
	rest, ok := bytes.CutPrefix(p, []byte(eventPrefix))
	if !ok {
		return 0, nil, false
	}
	if rest, ok = bytes.CutPrefix(rest, []byte(room)); !ok {
		return 0, nil, false
	}
	if rest, ok = bytes.CutPrefix(rest, []byte(`","seq":`)); !ok {
		return 0, nil, false
	}
	digits, rest, ok := bytes.Cut(rest, []byte(","))
	if !ok {
		return 0, nil, false
	}
	seq, err := strconv.ParseUint(string(digits), 10, 64)
	if err != nil {
		return 0, nil, false
	}
	if after, isTS := bytes.CutPrefix(rest, []byte(`"ts":"`)); isTS {
		_, after, ok = bytes.Cut(after, []byte(`",`))
		if !ok {
			return 0, nil, false
		}
		rest = after
	}
	if rest, ok = bytes.CutPrefix(rest, []byte(`"data":`)); !ok {
		return 0, nil, false
	}
	data, ok = bytes.CutSuffix(rest, []byte("}"))
	return seq, data, ok
}

// handle records one message received at now (unix ns).
func (r *receiver) handle(m wire.Message, now int64) {
	if m.Type != wire.TypeEvent {
		if m.Type == wire.TypeError {
			r.unexpected++
		}
		return // pongs, responses
	}
	d, ok := parseTick(m.Data)
	if m.Room != r.name || m.Event != tickEvent || !ok || d.N == 0 {
		r.unexpected++
		return
	}
	r.countSeq(m.Seq)
	r.count(d, now)
}

// countSeq checks an event's seq against the previous one.
func (r *receiver) countSeq(seq uint64) {
	if seq <= r.lastSeq {
		r.outOfOrder++
	}
	r.lastSeq = max(r.lastSeq, seq)
}

// count records one bench event received at now: its latency, and its
// counter against the previous one.
func (r *receiver) count(d tick, now int64) {
	r.received.Add(1)
	r.lastRecv = now
	r.hist.record(now - d.SentNS)
	switch {
	case d.N <= r.lastN:
		r.outOfOrder++
	case d.N > r.lastN+1:
		r.gaps += int64(d.N - r.lastN - 1)
		r.lastN = d.N
	default:
		r.lastN = d.N
	}
}
