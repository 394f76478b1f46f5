package conn

import (
	"bytes"
	"net"
	"strings"
	"testing"

	"github.com/gobwas/ws"

	"github.com/roomcast/roomcast/internal/wire"
)

// deflateEvent is a typical worker-pool event, long enough to be compressed.
var deflateEvent = []byte(`{"type":"event","room":"pool:p1","event":"worker.status_changed","seq":123,"ts":"2026-11-26T10:00:00.123Z",` +
	`"data":{"worker_id":"w-17","status":"busy","pool_id":"p1","task_id":"t-9921","queue_depth":12}}`)

// compressed deflates p as a client would send it.
func compressed(t *testing.T, p []byte) []byte {
	t.Helper()
	z, err := wire.Compress(nil, p)
	if err != nil {
		t.Fatal(err)
	}
	return z
}

// rsv1Frame is a masked client frame of op carrying p with RSV1 set.
func rsv1Frame(op ws.OpCode, fin bool, p []byte) ws.Frame {
	f := ws.NewFrame(op, fin, p)
	f.Header.Rsv = ws.Rsv(true, false, false)
	return ws.MaskFrame(f)
}

func writeFrames(t *testing.T, nc net.Conn, frames ...ws.Frame) {
	t.Helper()
	for _, f := range frames {
		if err := ws.WriteFrame(nc, f); err != nil {
			t.Fatal(err)
		}
	}
}

// One frame queued to connections with and without deflate reaches each as
// it negotiated, and is compressed once for all of them: they write the
// very same compressed bytes.
func TestSharedFrameIsCompressedOnce(t *testing.T) {
	c0, plain, _ := pair(t, Options{})
	conns := []*Conn{c0}
	var zipped []net.Conn
	for range 3 {
		c, nc := pairConn(t, Options{}, newRecordingHandler(), true)
		conns = append(conns, c)
		zipped = append(zipped, nc)
	}
	before := wire.Compressions()
	f := wire.NewTextFrame(deflateEvent)
	for _, c := range conns {
		if !c.Enqueue(f) {
			t.Fatal("enqueue refused")
		}
	}
	if got := readFrame(t, plain); got.Header.Rsv != 0 || !bytes.Equal(got.Payload, deflateEvent) {
		t.Fatalf("plain connection got rsv %d %q", got.Header.Rsv, got.Payload)
	}
	for i, nc := range zipped {
		got := readFrame(t, nc)
		if got.Header.Rsv != ws.Rsv(true, false, false) || got.Header.OpCode != ws.OpText || !got.Header.Fin {
			t.Fatalf("deflate connection %d got header %+v, want a final text frame with RSV1", i, got.Header)
		}
		if len(got.Payload) >= len(deflateEvent) {
			t.Fatalf("compressed payload %d bytes, plain %d", len(got.Payload), len(deflateEvent))
		}
		p, err := wire.Inflate(nil, got.Payload, 1<<20)
		if err != nil || !bytes.Equal(p, deflateEvent) {
			t.Fatalf("deflate connection %d: inflated %q, %v", i, p, err)
		}
	}
	if n := wire.Compressions() - before; n != 1 {
		t.Fatalf("the frame was compressed %d times for 3 connections, want once", n)
	}
}

// Control frames are never compressed, and small frames go out plain.
func TestDeflateLeavesControlAndSmallFramesPlain(t *testing.T) {
	c, client := pairConn(t, Options{}, newRecordingHandler(), true)
	writeFrames(t, client, ws.MaskFrame(ws.NewPingFrame([]byte("hi"))))
	if f := readFrame(t, client); f.Header.OpCode != ws.OpPong || f.Header.Rsv != 0 {
		t.Fatalf("got %+v, want a plain pong", f.Header)
	}
	c.Enqueue(wire.PongFrame("x"))
	if f := readFrame(t, client); f.Header.Rsv != 0 || !bytes.Contains(f.Payload, []byte(`"pong"`)) {
		t.Fatalf("small frame: %+v %q, want it plain", f.Header, f.Payload)
	}
}

// A compressed client message, whole or fragmented, is inflated and
// handed up.
func TestCompressedClientMessageIsInflated(t *testing.T) {
	_, client, h := func() (*Conn, net.Conn, *recordingHandler) {
		h := newRecordingHandler()
		c, nc := pairConn(t, Options{}, h, true)
		return c, nc, h
	}()
	msg := []byte(`{"type":"request","event":"subscribe","id":"sub_1","data":{"channel":"pool:p1"}}`)
	z := compressed(t, msg)
	writeFrames(t, client, rsv1Frame(ws.OpText, true, z))
	// Fragmented: RSV1 on the first frame only, inflated after reassembly.
	writeFrames(t, client,
		rsv1Frame(ws.OpText, false, z[:5]),
		ws.MaskFrame(ws.NewPingFrame(nil)),
		ws.MaskFrame(ws.NewFrame(ws.OpContinuation, true, z[5:])))
	// An uncompressed message still works on a deflate connection.
	writeFrames(t, client, ws.MaskFrame(ws.NewTextFrame(msg)))
	for i, got := range h.waitMessages(t, 3) {
		if !bytes.Equal(got, msg) {
			t.Fatalf("message %d: %q", i, got)
		}
	}
}

// closeFor writes frames on a connection (deflate or not) and checks the
// server closes with want.
func closeFor(t *testing.T, deflate bool, want ws.StatusCode, frames ...ws.Frame) {
	t.Helper()
	h := newRecordingHandler()
	_, client := pairConn(t, Options{MaxMessageSize: 64 << 10}, h, deflate)
	writeFrames(t, client, frames...)
	expectClose(t, client, want)
	client.Close() // the close handshake is done
	if info := h.waitClosed(t); info.Code != want {
		t.Fatalf("close info %+v, want %d", info, want)
	}
}

func TestRSV1WithoutDeflateIsAProtocolError(t *testing.T) {
	closeFor(t, false, wire.CloseProtocol, rsv1Frame(ws.OpText, true, compressed(t, deflateEvent)))
}

func TestRSV1OnContinuationOrControlIsAProtocolError(t *testing.T) {
	z := compressed(t, deflateEvent)
	closeFor(t, true, wire.CloseProtocol, rsv1Frame(ws.OpText, false, z[:4]), rsv1Frame(ws.OpContinuation, true, z[4:]))
	closeFor(t, true, wire.CloseProtocol, rsv1Frame(ws.OpPing, true, nil))
	bad := ws.MaskFrame(ws.NewTextFrame(z))
	bad.Header.Rsv = ws.Rsv(false, true, false) // RSV2: no extension gives it a meaning
	closeFor(t, true, wire.CloseProtocol, bad)
}

// A small message inflating past the size limit closes with 1009 (Inflate
// stops at the limit: see wire's TestInflateBomb).
func TestDeflateBombClosesWith1009(t *testing.T) {
	bomb := compressed(t, []byte(`{"type":"ping","id":"`+strings.Repeat("a", 8<<20)+`"}`))
	if len(bomb) > 64<<10 {
		t.Fatalf("bomb is %d bytes compressed, want it under the limit", len(bomb))
	}
	closeFor(t, true, wire.CloseTooBig, rsv1Frame(ws.OpText, true, bomb))
}

func TestCorruptDeflateClosesWith1007(t *testing.T) {
	closeFor(t, true, CloseInvalidPayload, rsv1Frame(ws.OpText, true, []byte{0xff, 0xff, 0xff, 0xff, 0x00}))
	// Valid deflate of invalid UTF-8 is refused as text, after inflating.
	closeFor(t, true, CloseInvalidPayload, rsv1Frame(ws.OpText, true, compressed(t, []byte("\xff\xfe not utf-8"))))
}
