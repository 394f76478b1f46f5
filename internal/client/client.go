// Package client is a small Go client of the roomcast protocol, shared by
// `tail`, `bench`, `check` and the tests.
package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"github.com/roomcast/roomcast/internal/wire"
)

// Conn is one client connection. Read from one goroutine; Send from any.
type Conn struct {
	nc net.Conn
	r  io.Reader

	wmu sync.Mutex // serialises writes: requests and the reader's pongs
}

// CloseError is what Read returns when the server closes the connection.
type CloseError struct {
	Code   ws.StatusCode
	Reason string
}

func (e *CloseError) Error() string {
	return fmt.Sprintf("closed by server: %d %s", e.Code, e.Reason)
}

// Dial connects to a roomcast WebSocket URL (ws:// or wss://). header is
// sent with the upgrade request (Authorization, for one); it may be nil.
func Dial(ctx context.Context, url string, header http.Header) (*Conn, error) {
	return DialWith(ctx, ws.Dialer{Timeout: 10 * time.Second}, url, header)
}

// DialWith is Dial with a dialer of the caller's (TLS settings, socket
// options).
func DialWith(ctx context.Context, d ws.Dialer, url string, header http.Header) (*Conn, error) {
	if header != nil {
		d.Header = ws.HandshakeHeaderHTTP(header)
	}
	nc, br, _, err := d.Dial(ctx, url)
	if err != nil {
		return nil, fmt.Errorf("connect %s: %w", url, err)
	}
	c := &Conn{nc: nc, r: nc}
	if br != nil {
		c.r = io.MultiReader(br, nc) // frames that arrived with the handshake
	}
	return c, nil
}

// Close ends the connection with a 1000 close frame.
func (c *Conn) Close() error {
	c.wmu.Lock()
	_ = c.nc.SetWriteDeadline(time.Now().Add(time.Second))
	_ = ws.WriteFrame(c.nc, ws.MaskFrame(ws.NewCloseFrame(ws.NewCloseFrameBody(ws.StatusNormalClosure, ""))))
	c.wmu.Unlock()
	return c.nc.Close()
}

// NetConn is the underlying socket, for tests that misbehave on purpose.
func (c *Conn) NetConn() net.Conn { return c.nc }

// SendRaw writes p as one text message.
func (c *Conn) SendRaw(p []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.nc.SetWriteDeadline(time.Now().Add(10 * time.Second))
	return wsutil.WriteClientText(c.nc, p)
}

// Send writes one protocol message.
func (c *Conn) Send(m wire.Message) error {
	p, err := json.Marshal(m)
	if err != nil {
		return err
	}
	return c.SendRaw(p)
}

// Request sends a request of event with data and the given id.
func (c *Conn) Request(event, id string, data any) error {
	d, err := json.Marshal(data)
	if err != nil {
		return err
	}
	return c.Send(wire.Message{Type: wire.TypeRequest, Event: event, ID: id, Data: d})
}

// SubscribeData is the data of a subscribe request.
type SubscribeData struct {
	Channel string  `json:"channel"`
	Since   *uint64 `json:"since,omitempty"`
}

// Subscribe sends a subscribe request for room; since may be nil (live only).
func (c *Conn) Subscribe(id, room string, since *uint64) error {
	return c.Request(wire.EventSubscribe, id, SubscribeData{Channel: room, Since: since})
}

// Read returns the next message. Pings are answered on the way; a close
// from the server is returned as *CloseError. A zero deadline waits forever.
func (c *Conn) Read(deadline time.Time) (wire.Message, error) {
	p, err := c.ReadRaw(deadline)
	if err != nil {
		return wire.Message{}, err
	}
	var m wire.Message
	if err := json.Unmarshal(p, &m); err != nil {
		return wire.Message{}, fmt.Errorf("server sent invalid JSON: %w", err)
	}
	return m, nil
}

// ReadRaw returns the next text message undecoded, for callers that look
// at a few fields of many messages (a replay's benchmark, a raw printer)
// and need not pay for decoding each whole. Pings and closes are handled
// as by Read.
func (c *Conn) ReadRaw(deadline time.Time) ([]byte, error) {
	_ = c.nc.SetReadDeadline(deadline)
	for {
		p, op, err := wsutil.ReadServerData(lockedRW{c})
		if err != nil {
			var ce wsutil.ClosedError
			if errors.As(err, &ce) {
				// The close reply went out with the read; the handshake is
				// done, so end the socket as a browser would.
				_ = c.nc.Close()
				return nil, &CloseError{Code: ce.Code, Reason: ce.Reason}
			}
			return nil, err
		}
		if op == ws.OpText {
			return p, nil
		}
	}
}

// lockedRW reads from the connection and writes (pongs, close replies)
// under the write lock.
type lockedRW struct{ c *Conn }

func (l lockedRW) Read(p []byte) (int, error) { return l.c.r.Read(p) }

func (l lockedRW) Write(p []byte) (int, error) {
	l.c.wmu.Lock()
	defer l.c.wmu.Unlock()
	_ = l.c.nc.SetWriteDeadline(time.Now().Add(10 * time.Second))
	return l.c.nc.Write(p)
}
