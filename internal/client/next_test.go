package client

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
)

// serve accepts one WebSocket connection on loopback, writes raw to it
// once upgraded, and returns the client's end; what the client sends back
// (pongs, its close reply) comes out on the returned channel, one
// message per frame.
func serve(t *testing.T, raw []byte) (*Conn, <-chan wsutil.Message) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	got := make(chan wsutil.Message, 16)
	go func() {
		defer close(got)
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		defer nc.Close()
		if _, err := ws.Upgrade(nc); err != nil {
			return
		}
		if _, err := nc.Write(raw); err != nil {
			return
		}
		for {
			msgs, err := wsutil.ReadClientMessage(nc, nil)
			for _, m := range msgs {
				got <- m
			}
			if err != nil {
				return
			}
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := Dial(ctx, "ws://"+ln.Addr().String(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	return c, got
}

// frame is one server frame: unmasked, as a server sends it.
func frame(fin bool, op ws.OpCode, p []byte) []byte {
	var b bytes.Buffer
	f := ws.NewFrame(op, fin, p)
	if err := ws.WriteFrame(&b, f); err != nil {
		panic(err)
	}
	return b.Bytes()
}

func join(frames ...[]byte) []byte { return bytes.Join(frames, nil) }

// Text messages come out whole, however they were framed and whatever
// their length's encoding; binary messages and pongs are skipped, and a
// ping is answered with its payload.
func TestNextTextReadsMessagesAndAnswersPings(t *testing.T) {
	long := strings.Repeat("x", 70_000) // a 64-bit length
	mid := strings.Repeat("y", 300)     // a 16-bit length
	big := strings.Repeat("z", 5<<19)   // read in several steps (readStep)
	c, got := serve(t, join(
		frame(true, ws.OpText, []byte(`{"a":1}`)),
		frame(true, ws.OpBinary, []byte{0xff, 0x00}),
		frame(true, ws.OpPing, []byte("are you there")),
		frame(false, ws.OpText, []byte("hel")),
		frame(true, ws.OpPong, nil), // a control frame inside a fragmented message
		frame(false, ws.OpContinuation, []byte("lo, ")),
		frame(true, ws.OpContinuation, []byte("wörld")),
		frame(true, ws.OpText, []byte(mid)),
		frame(true, ws.OpText, []byte(long)),
		frame(true, ws.OpText, nil),
		frame(true, ws.OpText, []byte(big)),
	))
	for _, want := range []string{`{"a":1}`, "hello, wörld", mid, long, "", big} {
		p, err := c.NextText()
		if err != nil {
			t.Fatalf("want %.20q: %v", want, err)
		}
		if string(p) != want {
			t.Fatalf("got %.20q (%d bytes), want %.20q (%d bytes)", p, len(p), want, len(want))
		}
	}
	select {
	case m := <-got:
		if m.OpCode != ws.OpPong || string(m.Payload) != "are you there" {
			t.Fatalf("client answered the ping with %v %q", m.OpCode, m.Payload)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the ping was not answered")
	}
}

// A close from the server ends the read with its code and reason, and is
// answered with a close frame.
func TestNextTextReturnsTheServersClose(t *testing.T) {
	c, got := serve(t, frame(true, ws.OpClose, ws.NewCloseFrameBody(4008, "slow consumer")))
	_, err := c.NextText()
	var ce *CloseError
	if !errors.As(err, &ce) || ce.Code != 4008 || ce.Reason != "slow consumer" {
		t.Fatalf("got %v, want the close 4008 slow consumer", err)
	}
	select {
	case m, ok := <-got:
		if ok && m.OpCode != ws.OpClose {
			t.Fatalf("client answered with %v, want a close", m.OpCode)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no close reply")
	}
}

// Every frame a server must not send is an error that says what was
// wrong, never a message.
func TestNextTextRefusesBadFrames(t *testing.T) {
	masked := frame(true, ws.OpText, []byte("hi"))
	masked[1] |= 0x80
	reserved := frame(true, ws.OpText, []byte("hi"))
	reserved[0] |= 0x40
	badOp := frame(true, ws.OpText, []byte("hi"))
	badOp[0] = badOp[0]&0xf0 | 0x3
	bigPing := frame(true, ws.OpPing, bytes.Repeat([]byte("p"), 126))
	fragPing := frame(false, ws.OpPing, nil)
	huge := []byte{0x81, 127, 0, 0, 0, 0, 0x10, 0, 0, 0} // 256 MiB
	for name, tc := range map[string]struct {
		raw  []byte
		want string
	}{
		"masked":               {masked, "masked"},
		"reserved bits":        {reserved, "reserved bits"},
		"unknown opcode":       {badOp, "unknown opcode"},
		"oversized control":    {bigPing, "control frame"},
		"fragmented control":   {fragPing, "control frame"},
		"continuation first":   {frame(true, ws.OpContinuation, []byte("x")), "continuation"},
		"message in a message": {join(frame(false, ws.OpText, []byte("a")), frame(true, ws.OpText, []byte("b"))), "inside another"},
		"too large":            {huge, "over"},
		"invalid UTF-8":        {frame(true, ws.OpText, []byte{0xff, 0xfe}), "UTF-8"},
	} {
		t.Run(name, func(t *testing.T) {
			c, _ := serve(t, tc.raw)
			p, err := c.NextText()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %q, %v; want an error about %s", p, err, tc.want)
			}
		})
	}
}

// NextText reads a message that arrived whole without allocating: the
// bench reads hundreds of thousands a second with it.
func TestNextTextAllocatesNothingPerMessage(t *testing.T) {
	const n = 300
	msg := frame(true, ws.OpText, []byte(`{"type":"event","seq":1}`))
	c, _ := serve(t, bytes.Repeat(msg, n+1))
	if _, err := c.NextText(); err != nil { // sizes the buffer
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(n-1, func() {
		if _, err := c.NextText(); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("%.1f allocations a message, want none", allocs)
	}
}

// Whatever the server sends, NextText returns messages or an error and
// never panics, and a message it returns is valid UTF-8 of at most the
// bound.
func FuzzNextText(f *testing.F) {
	f.Add(frame(true, ws.OpText, []byte(`{"a":1}`)))
	f.Add(join(frame(false, ws.OpText, []byte("a")), frame(true, ws.OpPing, []byte("p")), frame(true, ws.OpContinuation, []byte("b"))))
	f.Add(frame(true, ws.OpClose, ws.NewCloseFrameBody(1000, "bye")))
	f.Add([]byte{0x81, 126, 0, 3, 'a', 'b', 'c'})
	f.Add([]byte{0x81, 127, 0, 0, 0, 0, 0, 0, 0, 1, 'a'})
	f.Fuzz(func(t *testing.T, raw []byte) {
		server, client := net.Pipe()
		done := make(chan struct{})
		go func() { _, _ = io.Copy(io.Discard, server); close(done) }()
		c := &Conn{nc: client, r: bytes.NewReader(raw)}
		for range 64 {
			p, err := c.NextText()
			if err != nil {
				break
			}
			if len(p) > maxServerMessage {
				t.Fatalf("a message of %d bytes", len(p))
			}
		}
		client.Close()
		server.Close()
		<-done
	})
}

// A close is answered as RFC 6455 says: an empty close with an empty one
// (never 1005), the server's code otherwise, and a malformed close with
// 1002 and an error.
func TestNextTextAnswersClosesByTheRFC(t *testing.T) {
	for name, tc := range map[string]struct {
		body      []byte
		reply     []byte // the close reply's body
		wantClose ws.StatusCode
		wantErr   string
	}{
		"empty":         {nil, []byte{}, ws.StatusNoStatusRcvd, ""},
		"normal":        {ws.NewCloseFrameBody(1000, "bye"), ws.NewCloseFrameBody(1000, ""), 1000, ""},
		"one byte":      {[]byte{0x03}, ws.NewCloseFrameBody(1002, ""), 0, "one-byte"},
		"reserved code": {ws.NewCloseFrameBody(1005, ""), ws.NewCloseFrameBody(1002, ""), 0, "close"},
		"bad reason":    {append(ws.NewCloseFrameBody(1000, ""), 0xff), ws.NewCloseFrameBody(1002, ""), 0, "close"},
	} {
		t.Run(name, func(t *testing.T) {
			var out bytes.Buffer
			w := &countingWriter{w: &out}
			closed := false
			m := MessageReader{R: bytes.NewReader(frame(true, ws.OpClose, tc.body)), W: w, Closed: func() { closed = true }}
			_, _, err := m.Next()
			var ce *CloseError
			switch {
			case tc.wantErr == "" && (!errors.As(err, &ce) || ce.Code != tc.wantClose):
				t.Fatalf("got %v, want the close %d", err, tc.wantClose)
			case tc.wantErr != "" && (err == nil || errors.As(err, &ce) || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("got %v, want an error about %s", err, tc.wantErr)
			}
			if !closed {
				t.Fatal("Closed was not called")
			}
			if w.writes != 1 {
				t.Fatalf("the reply took %d writes, want one", w.writes)
			}
			f, err := ws.ReadFrame(&out)
			if err != nil {
				t.Fatal(err)
			}
			if !f.Header.Masked || f.Header.OpCode != ws.OpClose {
				t.Fatalf("reply %+v, want a masked close", f.Header)
			}
			ws.Cipher(f.Payload, f.Header.Mask, 0)
			if !bytes.Equal(f.Payload, tc.reply) {
				t.Fatalf("reply body %x, want %x", f.Payload, tc.reply)
			}
		})
	}
}

// countingWriter counts the Write calls a frame takes.
type countingWriter struct {
	w      io.Writer
	writes int
}

func (c *countingWriter) Write(p []byte) (int, error) {
	c.writes++
	return c.w.Write(p)
}

// ReadText and ReadFrame read plain connections with the same reader as
// NextText: their payloads are the caller's (a later read leaves them
// as they were), a buffer grown by a large message is not kept, binary
// messages come out of ReadFrame marked, and a close is a *CloseError
// after the reply went out.
func TestReadTextAndReadFrameShareTheReader(t *testing.T) {
	big := bytes.Repeat([]byte("z"), 3<<20) // past keptBuffer
	c, got := serve(t, join(
		frame(true, ws.OpText, []byte("first")),
		frame(true, ws.OpText, big),
		frame(true, ws.OpBinary, []byte{1, 2}),
		frame(true, ws.OpText, []byte("second")),
		frame(true, ws.OpClose, ws.NewCloseFrameBody(4008, "too slow")),
	))
	deadline := time.Now().Add(10 * time.Second)
	first, err := c.ReadText(deadline)
	if err != nil || string(first) != "first" {
		t.Fatalf("first read: %q, %v", first, err)
	}
	p, err := c.ReadText(deadline)
	if err != nil || !bytes.Equal(p, big) {
		t.Fatalf("large read: %d bytes, %v", len(p), err)
	}
	if string(first) != "first" {
		t.Fatalf("the first payload changed to %q", first)
	}
	if c.mr.buf != nil {
		t.Fatalf("a %d-byte buffer kept after a large message", cap(c.mr.buf))
	}
	if p, binary, err := c.ReadFrame(deadline); err != nil || !binary || !bytes.Equal(p, []byte{1, 2}) {
		t.Fatalf("binary read: %v %v %v", p, binary, err)
	}
	if p, err := c.ReadText(deadline); err != nil || string(p) != "second" {
		t.Fatalf("second read: %q, %v", p, err)
	}
	_, err = c.ReadText(deadline)
	var ce *CloseError
	if !errors.As(err, &ce) || ce.Code != 4008 || ce.Reason != "too slow" {
		t.Fatalf("after the close: %v, want a *CloseError 4008", err)
	}
	m, ok := <-got
	if !ok || m.OpCode != ws.OpClose {
		t.Fatalf("the client's reply: %+v (%v), want a close", m, ok)
	}
}

// A connection that ends between messages ends with io.EOF; one that
// ends inside a message or a frame, with io.ErrUnexpectedEOF.
func TestNextTellsAnEndInsideAMessage(t *testing.T) {
	whole := frame(true, ws.OpText, []byte("done"))
	for _, tc := range []struct {
		name string
		raw  []byte
		want error
	}{
		{"between messages", whole, io.EOF},
		{"between fragments", join(whole, frame(false, ws.OpText, []byte("par"))), io.ErrUnexpectedEOF},
		{"inside a payload", join(whole, frame(true, ws.OpText, []byte("cut"))[:3]), io.ErrUnexpectedEOF},
		{"inside a length", join(whole, frame(true, ws.OpText, bytes.Repeat([]byte("l"), 300))[:2]), io.ErrUnexpectedEOF},
		{"inside a ping", join(whole, frame(true, ws.OpPing, []byte("hi"))[:2]), io.ErrUnexpectedEOF},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := MessageReader{R: bytes.NewReader(tc.raw), W: io.Discard}
			if p, _, err := m.Next(); err != nil || string(p) != "done" {
				t.Fatalf("first message: %q, %v", p, err)
			}
			if _, _, err := m.Next(); !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}
