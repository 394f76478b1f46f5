// Package client is a small Go client of the roomcast protocol, shared by
// `tail`, `bench`, `check` and the tests.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/gobwas/httphead"
	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsflate"
	"github.com/gobwas/ws/wsutil"

	"github.com/roomcast/roomcast/internal/wire"
)

// Conn is one client connection. Read from one goroutine; Send from any.
type Conn struct {
	nc      net.Conn
	r       io.Reader
	deflate bool // permessage-deflate negotiated, without context takeover

	wmu sync.Mutex // serialises writes: requests and the reader's pongs

	mr MessageReader // plain messages' reader (messages), owned by the reading goroutine
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
	nc, br, hs, err := d.Dial(ctx, url)
	if err != nil {
		return nil, fmt.Errorf("connect %s: %w", url, err)
	}
	c := &Conn{nc: nc, r: nc, deflate: acceptedDeflate(hs.Extensions)}
	if br != nil {
		c.r = io.MultiReader(br, nc) // frames that arrived with the handshake
	}
	return c, nil
}

// deflateOffer is what DialCompressed offers: permessage-deflate with no
// context takeover either way, all this client can inflate (each message
// on its own) and all a roomcast server accepts.
var deflateOffer = wsflate.Parameters{ServerNoContextTakeover: true, ClientNoContextTakeover: true}.Option()

// DialCompressed is DialWith offering permessage-deflate (RFC 7692); the
// connection compresses what it sends and inflates what it reads if the
// server accepts (see Compressed), and works uncompressed if not.
func DialCompressed(ctx context.Context, d ws.Dialer, url string, header http.Header) (*Conn, error) {
	d.Extensions = []httphead.Option{deflateOffer}
	return DialWith(ctx, d, url, header)
}

// acceptedDeflate reports whether the server accepted permessage-deflate
// as offered: without server context takeover, so each message inflates on
// its own.
func acceptedDeflate(exts []httphead.Option) bool {
	for _, x := range exts {
		var p wsflate.Parameters
		if string(x.Name) == wsflate.ExtensionName && p.Parse(x) == nil && p.ServerNoContextTakeover {
			return true
		}
	}
	return false
}

// Compressed reports whether permessage-deflate was negotiated.
func (c *Conn) Compressed() bool { return c.deflate }

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
	if !c.deflate {
		return wsutil.WriteClientText(c.nc, p)
	}
	z, err := wire.Compress(nil, p)
	if err != nil {
		return err
	}
	f := ws.NewTextFrame(z)
	f.Header.Rsv = ws.Rsv(true, false, false)
	return ws.WriteFrame(c.nc, ws.MaskFrame(f))
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
	Epoch   string  `json:"epoch,omitempty"`
	// State asks for the room's keyed state in the response; Conflate
	// lets the node drop superseded keyed events when the connection
	// falls behind (docs/protocol.md section 3, "State", "Conflation").
	State    bool `json:"state,omitempty"`
	Conflate bool `json:"conflate,omitempty"`
}

// Subscribe sends a subscribe request for room; since may be nil (live only).
func (c *Conn) Subscribe(id, room string, since *uint64) error {
	return c.Request(wire.EventSubscribe, id, SubscribeData{Channel: room, Since: since})
}

// Resume sends a subscribe request for room that resumes after since in
// the stream named by epoch, the epoch of the subscribe response since
// came with: a since from another stream (recreated meanwhile) then gets
// every retained event and recovered: false. An empty epoch sends since
// alone.
func (c *Conn) Resume(id, room string, since uint64, epoch string) error {
	return c.Request(wire.EventSubscribe, id, SubscribeData{Channel: room, Since: &since, Epoch: epoch})
}

// Read returns the next message. Pings are answered on the way; a close
// from the server is returned as *CloseError. A zero deadline waits forever.
func (c *Conn) Read(deadline time.Time) (wire.Message, error) {
	p, err := c.ReadText(deadline)
	if err != nil {
		return wire.Message{}, err
	}
	var m wire.Message
	if err := json.Unmarshal(p, &m); err != nil {
		return wire.Message{}, fmt.Errorf("server sent invalid JSON: %w", err)
	}
	return m, nil
}

// ReadText is Read without the decoding: the payload of the next text
// message, for readers that parse the frames they expect themselves (the
// bench, whose decoding competes with the server for CPU).
func (c *Conn) ReadText(deadline time.Time) ([]byte, error) {
	_ = c.nc.SetReadDeadline(deadline)
	for {
		p, op, err := c.readData()
		if err != nil {
			return nil, err
		}
		if op == ws.OpText {
			return p, nil
		}
	}
}

// ReadFrame returns the payload of the next data message, text or binary
// (binary reports which), for clients that must tell the application
// about a binary message instead of skipping it (clients/go). Pings are
// answered on the way; a close from the server is returned as
// *CloseError. A zero deadline waits forever.
func (c *Conn) ReadFrame(deadline time.Time) (p []byte, binary bool, err error) {
	_ = c.nc.SetReadDeadline(deadline)
	p, op, err := c.readData()
	if err != nil {
		return nil, false, err
	}
	return p, op == ws.OpBinary, nil
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

// keptBuffer is the largest message buffer a plain connection keeps
// between reads that copy their message out: a larger one is handed to
// the caller (or dropped after an error), so one large state response
// neither costs a copy nor pins its megabytes for the connection's life.
const keptBuffer = 1 << 20

// readData reads the next data message, answering control frames on the
// way, and inflates it if it came compressed (RSV1). The payload is the
// caller's to keep.
func (c *Conn) readData() ([]byte, ws.OpCode, error) {
	if !c.deflate {
		m := c.messages()
		p, binary, err := m.Next()
		if cap(m.buf) > keptBuffer {
			m.buf = nil // p, if any, is the caller's now: a large message is not copied
		} else if err == nil {
			p = bytes.Clone(p)
		}
		if err != nil {
			return nil, 0, err
		}
		if binary {
			return p, ws.OpBinary, nil
		}
		return p, ws.OpText, nil
	}
	rw := lockedRW{c}
	var msg wsflate.MessageState
	state := ws.StateClientSide | ws.StateExtended
	control := wsutil.ControlFrameHandler(rw, state)
	rd := &wsutil.Reader{Source: rw, State: state, OnIntermediate: control,
		MaxMessageSize: maxServerMessage, Extensions: []wsutil.RecvExtension{&msg}}
	for {
		hdr, err := rd.NextFrame()
		if err != nil {
			return nil, 0, err
		}
		if hdr.OpCode.IsControl() {
			if err := control(hdr, rd); err != nil {
				return nil, 0, closeError(c, err)
			}
			continue
		}
		p, err := io.ReadAll(rd) // a control frame between fragments may close
		if err != nil {
			return nil, 0, closeError(c, err)
		}
		if msg.IsCompressed() {
			if p, err = wire.Inflate(nil, p, maxServerMessage); err != nil {
				return nil, 0, fmt.Errorf("server message: %w", err)
			}
		}
		if hdr.OpCode == ws.OpText && !utf8.Valid(p) {
			return nil, 0, errors.New("server sent a text message that is not valid UTF-8")
		}
		return p, hdr.OpCode, nil
	}
}

// closeError is a compressed connection's close as a plain one's reader
// returns it (*CloseError), the socket ended once the close reply is out;
// other errors are returned as they are.
func closeError(c *Conn, err error) error {
	var ce wsutil.ClosedError
	if !errors.As(err, &ce) {
		return err
	}
	_ = c.nc.Close()
	return &CloseError{Code: ce.Code, Reason: ce.Reason}
}
