package wire

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/klauspost/compress/flate"
)

// Per-message deflate (RFC 7692) as roomcast speaks it: both directions
// without context takeover, so every message is compressed on its own. That
// is what lets an event be compressed once and the same compressed frame be
// written to every member that negotiated the extension.

// MinDeflate is the smallest payload worth compressing: below it the
// deflate block overhead eats most of the gain and the CPU is wasted. RFC
// 7692 lets each message be sent compressed or not (RSV1 says which).
const MinDeflate = 128

// deflateLevel trades ratio for CPU; a frame is compressed once for every
// member of its room, but on the event's path, so speed wins. The flate
// package is github.com/klauspost/compress/flate (already in the module
// graph through NATS), a drop-in for compress/flate: at this level it took
// a 200-byte event in about 5 µs against 14 µs, and 4 KiB in 12 µs against
// 50 µs (BenchmarkDeflate).
const deflateLevel = flate.BestSpeed

// deflateTail is what RFC 7692 section 7.2.1 strips from the end of each
// compressed message (the empty stored block of a sync flush) and section
// 7.2.2 has the receiver append again.
var deflateTail = []byte{0x00, 0x00, 0xff, 0xff}

// inflateTail is deflateTail followed by a final empty stored block, so the
// decompressor reaches a clean end of stream rather than running out of
// input mid-stream.
var inflateTail = []byte{0x00, 0x00, 0xff, 0xff, 0x01, 0x00, 0x00, 0xff, 0xff}

// deflated is a frame's compressed form, built at most once by the first
// writer that needs it.
type deflated struct {
	once sync.Once
	b    []byte // the whole frame as it goes on the wire, RSV1 set if compressed
}

// compressions counts the frames compressed (or found not worth it) so far.
var compressions atomic.Uint64

// Compressions reports how many frames had their compressed form built, in
// this process: each event is compressed once however many members get it.
func Compressions() uint64 { return compressions.Load() }

// Deflated returns the frame as it goes on the wire to a connection that
// negotiated permessage-deflate: the payload compressed, with RSV1 set in
// the header; or the plain frame when the payload is under MinDeflate or does
// not shrink. It is built once, by the first caller, and shared by every
// caller after; it is safe to call from many goroutines. Do not modify it.
func (f *Frame) Deflated() []byte {
	d := f.z.Load()
	if d == nil {
		d = new(deflated)
		if !f.z.CompareAndSwap(nil, d) {
			d = f.z.Load()
		}
	}
	d.once.Do(func() { d.b = deflateFrame(f) })
	return d.b
}

// compressors are pooled: a flate writer holds hundreds of KiB of tables.
var compressors = sync.Pool{New: func() any {
	w, err := flate.NewWriter(nil, deflateLevel)
	if err != nil {
		panic(err) // only for a bad level
	}
	return w
}}

// scratch buffers hold a payload being compressed, before it is copied to
// a buffer of its exact size.
var scratch = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// deflateFrame builds f's compressed frame, or returns f's own bytes when
// compressing is not worth it.
func deflateFrame(f *Frame) []byte {
	compressions.Add(1)
	p := f.Payload()
	if len(p) < MinDeflate {
		return f.b
	}
	buf := scratch.Get().(*bytes.Buffer)
	defer scratch.Put(buf)
	buf.Reset()
	z, err := compress(buf, p)
	if err != nil || len(z) >= len(p) {
		return f.b
	}
	out := make([]byte, maxHeaderLen+len(z))
	copy(out[maxHeaderLen:], z)
	return frameBytes(out, 0xC1) // FIN, RSV1, opcode text
}

// compress deflates p into buf as one message of RFC 7692 (flushed, the
// trailing 0x00 0x00 0xff 0xff removed) and returns buf's bytes.
func compress(buf *bytes.Buffer, p []byte) ([]byte, error) {
	w := compressors.Get().(*flate.Writer)
	defer compressors.Put(w)
	w.Reset(buf)
	if _, err := w.Write(p); err != nil {
		return nil, fmt.Errorf("deflate: %w", err)
	}
	if err := w.Flush(); err != nil {
		return nil, fmt.Errorf("deflate: %w", err)
	}
	z := buf.Bytes()
	if !bytes.HasSuffix(z, deflateTail) {
		return nil, errors.New("deflate: flush did not end with an empty stored block")
	}
	return z[:len(z)-len(deflateTail)], nil
}

// Compress deflates p as one RFC 7692 message, appending it to dst: what a
// client of this package (the Go client) sends with RSV1 set.
func Compress(dst, p []byte) ([]byte, error) {
	buf := bytes.NewBuffer(dst)
	z, err := compress(buf, p)
	if err != nil {
		return dst, err
	}
	return z, nil
}

// ErrInflatedTooBig is returned by Inflate when a message inflates past
// its limit.
var ErrInflatedTooBig = errors.New("inflated message over the size limit")

// ErrBadDeflate wraps what the decompressor said of data that is not a
// valid compressed message.
var ErrBadDeflate = errors.New("invalid compressed data")

// decompressors are pooled like compressors.
var decompressors = sync.Pool{New: func() any { return flate.NewReader(nil) }}

// Inflate decompresses one RFC 7692 message p, appending it to dst. It never
// holds more than limit bytes of output: a message inflating past limit
// fails with ErrInflatedTooBig, whatever its compressed size (a deflate
// bomb). Invalid data fails with an error wrapping ErrBadDeflate.
func Inflate(dst, p []byte, limit int64) ([]byte, error) {
	src := &twoReader{a: p, b: inflateTail}
	r := decompressors.Get().(io.ReadCloser)
	defer decompressors.Put(r)
	if err := r.(flate.Resetter).Reset(src, nil); err != nil {
		return dst, fmt.Errorf("%w: %w", ErrBadDeflate, err)
	}
	start := len(dst)
	for {
		if int64(len(dst)-start) > limit {
			return dst[:start], ErrInflatedTooBig
		}
		if len(dst) == cap(dst) {
			// Grow by doubling, but never past what the limit allows
			// (plus the one byte that shows a message is over it).
			want := max(2*(len(dst)-start), 4*len(p), 512)
			want = int(min(int64(want), limit+1-int64(len(dst)-start)))
			dst = slices.Grow(dst, max(want, 1))
		}
		n, err := r.Read(dst[len(dst):cap(dst)])
		dst = dst[:len(dst)+n]
		switch {
		case err == io.EOF:
			if int64(len(dst)-start) > limit {
				return dst[:start], ErrInflatedTooBig
			}
			return dst, nil
		case err != nil:
			return dst[:start], fmt.Errorf("%w: %w", ErrBadDeflate, err)
		}
	}
}

// twoReader reads a, then b, as one stream; it is an io.ByteReader so the
// decompressor reads it without a buffer of its own.
type twoReader struct{ a, b []byte }

func (r *twoReader) Read(p []byte) (int, error) {
	if len(r.a) == 0 {
		r.a, r.b = r.b, nil
	}
	if len(r.a) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.a)
	r.a = r.a[n:]
	return n, nil
}

func (r *twoReader) ReadByte() (byte, error) {
	if len(r.a) == 0 {
		r.a, r.b = r.b, nil
	}
	if len(r.a) == 0 {
		return 0, io.EOF
	}
	c := r.a[0]
	r.a = r.a[1:]
	return c, nil
}
