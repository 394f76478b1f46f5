package wire_test

import (
	"bytes"
	"compress/flate"
	"errors"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"

	"github.com/gobwas/ws"

	"github.com/roomcast/roomcast/internal/wire"
)

// poolEvent is a typical worker-pool event as it goes to clients.
const poolEvent = `{"type":"event","room":"pool:p1","event":"worker.status_changed","seq":123,"ts":"2026-11-26T10:00:00.123Z",` +
	`"data":{"worker_id":"w-17","status":"busy","pool_id":"p1","task_id":"t-9921","queue_depth":12}}`

// readDeflated parses a frame's wire bytes and returns its payload,
// inflated when RSV1 says it is compressed.
func readDeflated(t *testing.T, b []byte) (payload []byte, compressed bool) {
	t.Helper()
	fr, err := ws.ReadFrame(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("read frame: %v", err)
	}
	if !fr.Header.Fin || fr.Header.OpCode != ws.OpText {
		t.Fatalf("header %+v, want a final text frame", fr.Header)
	}
	if fr.Header.Rsv&0x4 == 0 {
		return fr.Payload, false
	}
	p, err := wire.Inflate(nil, fr.Payload, 1<<20)
	if err != nil {
		t.Fatalf("inflate: %v", err)
	}
	return p, true
}

func TestDeflatedRoundTrip(t *testing.T) {
	big := `{"type":"event","data":"` + strings.Repeat("worker w-17 is busy; ", 200) + `"}`
	for _, tc := range []struct {
		name, payload string
		compressed    bool
	}{
		{"pool event", poolEvent, true},
		{"4 KiB", big, true},
		{"small", `{"type":"pong"}`, false},
	} {
		f := wire.NewTextFrame([]byte(tc.payload))
		z := f.Deflated()
		p, compressed := readDeflated(t, z)
		if string(p) != tc.payload || compressed != tc.compressed {
			t.Errorf("%s: got %q compressed %v, want compressed %v", tc.name, p, compressed, tc.compressed)
		}
		if tc.compressed && len(z) >= f.Len() {
			t.Errorf("%s: compressed %d bytes, plain %d", tc.name, len(z), f.Len())
		}
		if string(f.Bytes()[f.Len()-len(tc.payload):]) != tc.payload {
			t.Errorf("%s: plain frame changed", tc.name)
		}
	}
}

// Many writers asking at once get the same compressed bytes, built once.
func TestDeflatedIsBuiltOnce(t *testing.T) {
	f := wire.NewTextFrame([]byte(poolEvent))
	before := wire.Compressions()
	var wg sync.WaitGroup
	got := make([][]byte, 8)
	for i := range got {
		wg.Go(func() { got[i] = f.Deflated() })
	}
	wg.Wait()
	if n := wire.Compressions() - before; n != 1 {
		t.Fatalf("compressed %d times, want once", n)
	}
	for _, b := range got[1:] {
		if &b[0] != &got[0][0] {
			t.Fatal("writers got different compressed frames")
		}
	}
}

// Payloads that do not shrink stay plain.
func TestIncompressibleStaysPlain(t *testing.T) {
	p := make([]byte, 1000)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range p {
		p[i] = byte(rng.Uint32())
	}
	f := wire.NewTextFrame(p)
	if &f.Deflated()[0] != &f.Bytes()[0] {
		t.Fatal("an incompressible frame was not kept plain")
	}
}

func TestInflateBomb(t *testing.T) {
	z, err := wire.Compress(nil, make([]byte, 10<<20)) // 10 MiB of zeros: ~10 KiB compressed
	if err != nil {
		t.Fatal(err)
	}
	out, err := wire.Inflate(nil, z, 64<<10)
	if !errors.Is(err, wire.ErrInflatedTooBig) {
		t.Fatalf("inflate a bomb: %d bytes, err %v; want ErrInflatedTooBig", len(out), err)
	}
	if c := cap(out); c > 2*(64<<10) {
		t.Fatalf("inflating a bomb held %d bytes for a limit of 64 KiB", c)
	}
	// Exactly at the limit is fine.
	z, _ = wire.Compress(nil, make([]byte, 64<<10))
	if out, err := wire.Inflate(nil, z, 64<<10); err != nil || len(out) != 64<<10 {
		t.Fatalf("inflate at the limit: %d bytes, %v", len(out), err)
	}
}

func TestInflateCorrupt(t *testing.T) {
	for _, p := range [][]byte{{0xff, 0xff, 0xff}, {0x07}, []byte("not deflate at all")} {
		if _, err := wire.Inflate(nil, p, 1<<20); !errors.Is(err, wire.ErrBadDeflate) {
			t.Errorf("inflate %x: %v, want ErrBadDeflate", p, err)
		}
	}
}

// Messages compressed by another implementation (a final block, as some
// clients send, or a plain sync flush) inflate.
func TestInflateForeign(t *testing.T) {
	var buf bytes.Buffer
	w, _ := flate.NewWriter(&buf, flate.BestCompression)
	_, _ = w.Write([]byte(poolEvent))
	_ = w.Close()
	if out, err := wire.Inflate(nil, buf.Bytes(), 1<<20); err != nil || string(out) != poolEvent {
		t.Fatalf("inflate a closed stream: %q, %v", out, err)
	}
}

// FuzzInflate: Inflate never panics, never returns more than its limit,
// and inflates what Compress made back to the input.
func FuzzInflate(f *testing.F) {
	for _, s := range []string{poolEvent, "", "x", strings.Repeat("ab", 300)} {
		z, _ := wire.Compress(nil, []byte(s))
		f.Add(z)
	}
	f.Add([]byte{0xff, 0xff, 0xff})
	f.Add([]byte{0x00, 0x00, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, p []byte) {
		const limit = 4096
		out, err := wire.Inflate(nil, p, limit)
		if len(out) > limit {
			t.Fatalf("%d bytes out for a limit of %d", len(out), limit)
		}
		if err != nil && !errors.Is(err, wire.ErrInflatedTooBig) && !errors.Is(err, wire.ErrBadDeflate) {
			t.Fatalf("unexpected error kind: %v", err)
		}
		if len(p) <= limit {
			z, err := wire.Compress(nil, p)
			if err != nil {
				t.Fatal(err)
			}
			back, err := wire.Inflate(nil, z, limit)
			if err != nil || !bytes.Equal(back, p) {
				t.Fatalf("round trip of %x: %x, %v", p, back, err)
			}
		}
	})
}
