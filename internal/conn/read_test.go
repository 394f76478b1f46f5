package conn

import (
	"encoding/binary"
	"net"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/roomcast/roomcast/internal/wire"
)

// closeBody is a close frame's payload: the code, then the reason.
func closeBody(code uint16, reason string) []byte {
	p := binary.BigEndian.AppendUint16(nil, code)
	return append(p, reason...)
}

// A client's close code is echoed when RFC 6455 section 7.4 (and the IANA
// registry it points to) lets it be sent on the wire, and answered with
// 1002 otherwise.
func TestEchoCode(t *testing.T) {
	for _, tc := range []struct {
		body []byte
		want ws.StatusCode
	}{
		{nil, wire.CloseNormal},
		{[]byte{0x03}, wire.CloseProtocol}, // one byte: no room for a code
		{closeBody(1000, "bye"), 1000},
		{closeBody(1001, ""), 1001},
		{closeBody(1003, ""), 1003},
		{closeBody(1007, ""), 1007},
		{closeBody(1011, ""), 1011},
		{closeBody(1012, ""), 1012}, // service restart
		{closeBody(1013, ""), 1013}, // try again later
		{closeBody(1014, ""), 1014}, // bad gateway
		{closeBody(3000, ""), 3000},
		{closeBody(4999, ""), 4999},
		{closeBody(999, ""), wire.CloseProtocol},
		{closeBody(1004, ""), wire.CloseProtocol}, // reserved
		{closeBody(1005, ""), wire.CloseProtocol}, // never on the wire
		{closeBody(1006, ""), wire.CloseProtocol}, // never on the wire
		{closeBody(1015, ""), wire.CloseProtocol}, // TLS failure, never on the wire
		{closeBody(1016, ""), wire.CloseProtocol}, // unassigned
		{closeBody(2999, ""), wire.CloseProtocol},
		{closeBody(5000, ""), wire.CloseProtocol},
		{closeBody(1000, "\xff"), wire.CloseProtocol}, // reason not UTF-8
	} {
		if got := echoCode(tc.body); got != tc.want {
			t.Errorf("echoCode(%x) = %d, want %d", tc.body, got, tc.want)
		}
	}
}

// expectClose reads frames until the server's close frame and checks its
// code; the socket ending without one fails the test.
func expectClose(t *testing.T, client net.Conn, want ws.StatusCode) {
	t.Helper()
	for {
		f := readFrame(t, client)
		if f.Header.OpCode != ws.OpClose {
			continue
		}
		if code, reason := ws.ParseCloseFrameData(f.Payload); code != want {
			t.Fatalf("close %d %q, want %d", code, reason, want)
		}
		return
	}
}

// A header the frame parser refuses (a 64-bit length with its most
// significant bit set, which RFC 6455 section 5.2 forbids) is a protocol
// error: it ends with a 1002 close frame, not a silent drop.
func TestBadHeaderLengthClosesWith1002(t *testing.T) {
	_, client, h := pair(t, Options{})
	hdr := []byte{0x81, 0x80 | 127, 0x80, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 4} // FIN text, masked, 8-byte length, mask
	if _, err := client.Write(hdr); err != nil {
		t.Fatal(err)
	}
	expectClose(t, client, wire.CloseProtocol)
	client.Close()
	if info := h.waitClosed(t); info.Code != wire.CloseProtocol || info.ByPeer {
		t.Fatalf("close info %+v, want 1002 by the server", info)
	}
}

// writeFragments writes parts as one message of op, one frame each.
func writeFragments(t *testing.T, client net.Conn, op ws.OpCode, parts ...[]byte) {
	t.Helper()
	for i, p := range parts {
		if i > 0 {
			op = ws.OpContinuation
		}
		if err := ws.WriteFrame(client, ws.MaskFrame(ws.NewFrame(op, i == len(parts)-1, p))); err != nil {
			t.Fatal(err)
		}
	}
}

// A text message that is not UTF-8 closes with 1007 (RFC 6455 section
// 8.1) instead of reaching the handler, which would see U+FFFD in it.
func TestInvalidUTF8TextClosesWith1007(t *testing.T) {
	_, client, h := pair(t, Options{})
	writeFragments(t, client, ws.OpText, []byte(`{"type":"ping","id":"`), []byte("\xff\xfe\"}"))
	expectClose(t, client, CloseInvalidPayload)
	client.Close()
	if info := h.waitClosed(t); info.Code != CloseInvalidPayload {
		t.Fatalf("close info %+v, want 1007", info)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.msgs) != 0 {
		t.Fatalf("the handler got %q", h.msgs)
	}
}

// UTF-8 is checked on the whole message: a character split between two
// fragments is valid.
func TestCharacterSplitBetweenFragmentsIsValid(t *testing.T) {
	_, client, h := pair(t, Options{})
	e := []byte("é") // two bytes
	writeFragments(t, client, ws.OpText, append([]byte(`{"id":"`), e[0]), append([]byte{e[1]}, `"}`...))
	if msgs := h.waitMessages(t, 1); string(msgs[0]) != `{"id":"é"}` {
		t.Fatalf("messages %q", msgs)
	}
}

// Binary messages are not text: no UTF-8 check applies to them.
func TestBinaryMessageIsNotCheckedAsText(t *testing.T) {
	c, client, _ := pair(t, Options{})
	writeFragments(t, client, ws.OpBinary, []byte{0xff, 0xfe})
	if err := ws.WriteFrame(client, ws.MaskFrame(ws.NewPingFrame([]byte("after")))); err != nil {
		t.Fatal(err)
	}
	if f := readFrame(t, client); f.Header.OpCode != ws.OpPong || string(f.Payload) != "after" {
		t.Fatalf("got %v %q, want the pong", f.Header.OpCode, f.Payload)
	}
	if c.Closing() {
		t.Fatal("a binary message closed the connection")
	}
}

// A client that starts a message and then trickles fragments and pings,
// each well within the keep-alive deadline, is closed with 1008 once the
// message is older than MessageTimeout.
func TestTricklingMessageIsClosedAfterMessageTimeout(t *testing.T) {
	const timeout = 300 * time.Millisecond
	_, client, h := pair(t, Options{MessageTimeout: timeout, PingInterval: 2 * time.Second, PongTimeout: 2 * time.Second})
	start := time.Now()
	if err := ws.WriteFrame(client, ws.MaskFrame(ws.NewFrame(ws.OpText, false, []byte(`{"type":`)))); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	trickled := make(chan struct{})
	go func() {
		defer close(trickled)
		tick := time.NewTicker(20 * time.Millisecond) // the pace of the trickle, not a synchronisation
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			f := ws.NewFrame(ws.OpContinuation, false, []byte(" "))
			if i%2 == 1 {
				f = ws.NewPingFrame(nil)
			}
			if ws.WriteFrame(client, ws.MaskFrame(f)) != nil {
				return
			}
		}
	}()
	expectClose(t, client, wire.ClosePolicy)
	close(stop)
	<-trickled
	if elapsed := time.Since(start); elapsed < timeout {
		t.Fatalf("closed after %s, before the message timeout %s", elapsed, timeout)
	}
	client.Close()
	if info := h.waitClosed(t); info.Code != wire.ClosePolicy || info.ByPeer {
		t.Fatalf("close info %+v, want 1008 by the server", info)
	}
}

// The message timeout bounds messages, not connections: after a message
// completes, a connection that answers pings stays open past it.
func TestMessageTimeoutLeavesKeepAliveAlone(t *testing.T) {
	const timeout = 100 * time.Millisecond
	_, client, h := pair(t, Options{MessageTimeout: timeout, PingInterval: 30 * time.Millisecond, PongTimeout: 2 * time.Second})
	writeFragments(t, client, ws.OpText, []byte(`{"type":`), []byte(`"ping"}`))
	h.waitMessages(t, 1)
	quietSince := time.Now()
	pings := answerPings(client)
	for i := 0; i < 5 || time.Since(quietSince) < 2*timeout; i++ {
		select {
		case <-pings:
		case info := <-h.closed:
			t.Fatalf("closed after %d pings: %+v", i, info)
		case <-time.After(10 * time.Second):
			t.Fatalf("only %d pings in 10s", i)
		}
	}
}

// A client that sends a message's first fragment and goes quiet is closed
// with 1008 when the message timeout passes, even when that is long
// before the next keep-alive check: a polled connection, whose reader has
// gone, is woken by the wheel at the message's deadline.
func TestQuietUnfinishedMessageIsClosedAtItsDeadline(t *testing.T) {
	const timeout, keepAlive = 100 * time.Millisecond, time.Minute
	_, client, _ := pair(t, Options{MessageTimeout: timeout, PingInterval: keepAlive, PongTimeout: keepAlive})
	if err := ws.WriteFrame(client, ws.MaskFrame(ws.NewFrame(ws.OpText, false, []byte(`{"type":`)))); err != nil {
		t.Fatal(err)
	}
	// readFrame gives up after 10 s, well before the keep-alive minute.
	expectClose(t, client, wire.ClosePolicy)
}
