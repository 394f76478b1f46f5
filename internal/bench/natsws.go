package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"github.com/roomcast/roomcast/internal/client"
)

// The reference target is a nats-server with a WebSocket listener; its bench
// clients speak the NATS text protocol over WebSocket, as a browser using
// nats.ws would, so both targets are measured with a client of the same
// weight.

// natsConnect is the CONNECT the reference clients send: no acknowledgements
// (+OK) and no headers, so a delivery is exactly one MSG.
const natsConnect = `CONNECT {"verbose":false,"pedantic":false,"protocol":1,"headers":false,"name":"roomcast bench"}` + "\r\n"

// maxNATSControlLine bounds a protocol line (MSG arguments, INFO, -ERR):
// a longer one is a broken stream, not one to buffer without end.
const maxNATSControlLine = 64 << 10

// natsParser turns the byte stream of a NATS connection, arriving in
// WebSocket frames of any size, into protocol messages. A frame may hold
// several messages and a message may be split over frames, so bytes are
// buffered until a message is whole.
type natsParser struct {
	buf []byte // unconsumed bytes

	onMsg  func(subject, payload []byte) // both valid during the call only
	onPing func()
	onPong func()
	onErr  func(msg string)
}

// feed adds p to the stream and calls the handlers for every whole message.
func (p *natsParser) feed(data []byte) error {
	p.buf = append(p.buf, data...)
	off := 0
	defer func() {
		// Keep only the incomplete tail, at the front of the buffer.
		n := copy(p.buf, p.buf[off:])
		p.buf = p.buf[:n]
	}()
	for {
		rest := p.buf[off:]
		eol := bytes.Index(rest, []byte("\r\n"))
		if eol < 0 {
			if len(rest) > maxNATSControlLine {
				return fmt.Errorf("NATS protocol line longer than %d bytes", maxNATSControlLine)
			}
			return nil
		}
		line := rest[:eol]
		op, args, _ := bytes.Cut(line, []byte(" "))
		switch {
		case isOp(op, "MSG"):
			subject, size, err := parseMsgArgs(args)
			if err != nil {
				return err
			}
			end := eol + 2 + size + 2
			if len(rest) < end {
				return nil // the payload is still on its way
			}
			if p.onMsg != nil {
				p.onMsg(subject, rest[eol+2:eol+2+size])
			}
			off += end
			continue
		case isOp(op, "PING"):
			if p.onPing != nil {
				p.onPing()
			}
		case isOp(op, "PONG"):
			if p.onPong != nil {
				p.onPong()
			}
		case isOp(op, "-ERR"):
			if p.onErr != nil {
				p.onErr(string(args))
			}
		case isOp(op, "+OK"), isOp(op, "INFO"):
		default:
			return fmt.Errorf("unexpected NATS protocol line %.40q", line)
		}
		off += eol + 2
	}
}

// isOp reports whether op is the protocol operation name, in any case:
// the parser runs for every message the reference sends, so it compares
// in place rather than upper-casing a copy.
func isOp(op []byte, name string) bool { return bytes.EqualFold(op, []byte(name)) }

// parseMsgArgs reads "<subject> <sid> [reply-to] <#bytes>" without
// allocating: subject is a part of args.
func parseMsgArgs(args []byte) (subject []byte, size int, err error) {
	var f [5][]byte
	n := 0
	for rest := args; n < len(f); n++ {
		rest = bytes.TrimLeft(rest, " \t")
		if len(rest) == 0 {
			break
		}
		end := bytes.IndexAny(rest, " \t")
		if end < 0 {
			end = len(rest)
		}
		f[n], rest = rest[:end], rest[end:]
	}
	if n != 3 && n != 4 {
		return nil, 0, fmt.Errorf("bad MSG arguments %.80q", args)
	}
	size, err = strconv.Atoi(string(f[n-1]))
	if err != nil || size < 0 {
		return nil, 0, fmt.Errorf("bad MSG size in %.80q", args)
	}
	return f[0], size, nil
}

// natsConn is one reference client: a WebSocket connection speaking NATS.
// Read from one goroutine; writes (PONG, close) are serialised by wmu.
type natsConn struct {
	nc  net.Conn
	r   io.Reader
	wmu sync.Mutex
	mr  client.MessageReader // readFrame's, owned by the reading goroutine
}

// natsSubject is the subject of bench room i on the reference.
func natsSubject(i int) string { return "bench.r" + strconv.Itoa(i) }

// dialNATS connects to a NATS WebSocket URL, subscribes to the subjects
// (sids 1, 2, ...), and waits, until ctx's deadline, for the PONG that
// proves the server processed the subscriptions.
func dialNATS(ctx context.Context, d ws.Dialer, url string, subjects ...string) (*natsConn, error) {
	subject := strings.Join(subjects, ",") // for errors
	nc, br, _, err := d.Dial(ctx, url)
	if err != nil {
		return nil, fmt.Errorf("connect %s: %w", url, err)
	}
	c := &natsConn{nc: nc, r: nc}
	if br != nil {
		c.r = io.MultiReader(br, nc)
	}
	cmds := natsConnect
	for i, s := range subjects {
		cmds += "SUB " + s + " " + strconv.Itoa(i+1) + "\r\n"
	}
	if err := c.write([]byte(cmds + "PING\r\n")); err != nil {
		_ = nc.Close()
		return nil, fmt.Errorf("subscribe %s: %w", subject, err)
	}
	deadline, _ := ctx.Deadline()
	_ = nc.SetReadDeadline(deadline)
	var ponged bool
	var refusal error
	p := natsParser{
		onPong: func() { ponged = true },
		onPing: func() { _ = c.write([]byte("PONG\r\n")) },
		onErr:  func(m string) { refusal = fmt.Errorf("refused: %s", m) },
	}
	for !ponged && refusal == nil {
		data, err := c.readFrame()
		if err == nil {
			err = p.feed(data)
		}
		if err != nil {
			_ = nc.Close()
			return nil, fmt.Errorf("subscribe %s: %w", subject, err)
		}
	}
	_ = nc.SetReadDeadline(time.Time{})
	if refusal != nil {
		_ = nc.Close()
		return nil, refusal
	}
	return c, nil
}

// write sends p as one masked binary frame.
func (c *natsConn) write(p []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.nc.SetWriteDeadline(time.Now().Add(10 * time.Second))
	return wsutil.WriteClientBinary(c.nc, p)
}

// readFrame returns the payload of the next data message, valid until the
// next call, with no allocation per message as the roomcast receivers read
// (client.MessageReader); control frames are answered on the way (under
// the write lock).
func (c *natsConn) readFrame() ([]byte, error) {
	if c.mr.R == nil {
		c.mr = client.MessageReader{R: c.r, W: natsLockedRW{c}, Closed: func() { _ = c.nc.Close() }}
	}
	p, _, err := c.mr.Next()
	var ce *client.CloseError
	if errors.As(err, &ce) {
		return nil, fmt.Errorf("closed by server: %d %s", ce.Code, ce.Reason)
	}
	return p, err
}

// close ends the connection with a 1000 close frame.
func (c *natsConn) close() error {
	c.wmu.Lock()
	_ = c.nc.SetWriteDeadline(time.Now().Add(time.Second))
	_ = ws.WriteFrame(c.nc, ws.MaskFrame(ws.NewCloseFrame(ws.NewCloseFrameBody(ws.StatusNormalClosure, ""))))
	c.wmu.Unlock()
	return c.nc.Close()
}

// natsLockedRW reads from the connection and writes control replies under
// the write lock.
type natsLockedRW struct{ c *natsConn }

func (l natsLockedRW) Read(p []byte) (int, error) { return l.c.r.Read(p) }

func (l natsLockedRW) Write(p []byte) (int, error) {
	l.c.wmu.Lock()
	defer l.c.wmu.Unlock()
	_ = l.c.nc.SetWriteDeadline(time.Now().Add(10 * time.Second))
	return l.c.nc.Write(p)
}

// tickFromPayload extracts the tick data from a worker payload as the
// publisher wrote it ({"event":"bench.tick","data":{...}}).
func tickFromPayload(p []byte) (tick, bool) {
	data, ok := bytes.CutPrefix(p, []byte(`{"event":"`+tickEvent+`","data":`))
	if !ok {
		return tick{}, false
	}
	data, ok = bytes.CutSuffix(data, []byte("}"))
	if !ok {
		return tick{}, false
	}
	return parseTick(data)
}

// readNATS is read for a reference connection: it records every MSG until
// ctx ends, which closes the connection, or the connection fails. The
// server's PINGs are answered, or it would drop the client.
func (r *receiver) readNATS(ctx context.Context, t *tally) {
	closed := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(closed)
		_ = r.nats.close()
	})
	defer func() {
		if stop() {
			_ = r.nats.nc.Close()
		} else {
			<-closed
		}
	}()
	var perr error
	p := natsParser{
		onMsg: func(subject, payload []byte) {
			now := time.Now().UnixNano()
			to := r
			if r.also != nil && string(subject) == r.also.name {
				to = r.also
			}
			d, ok := tickFromPayload(payload)
			if string(subject) != to.name || !ok || d.N == 0 {
				to.unexpected++
				return
			}
			to.count(d, now)
		},
		onPing: func() {
			if err := r.nats.write([]byte("PONG\r\n")); err != nil && perr == nil {
				perr = err
			}
		},
		onErr: func(m string) { r.unexpected++ },
	}
	for {
		data, err := r.nats.readFrame()
		if err == nil {
			r.mu.Lock()
			err = p.feed(data)
			r.mu.Unlock()
		}
		if err == nil {
			err = perr
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
