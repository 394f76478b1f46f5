package edge

import (
	"bufio"
	"bytes"
	"io"
	"testing"
	"testing/iotest"
)

// The head peek reads any bytes without panicking, consumes nothing, and
// finds the same head however the bytes arrive.
func FuzzPeekHead(f *testing.F) {
	for _, seed := range []string{
		"GET / HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n",
		"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
		"GET / HTTP/1.1\r\nupgrade :  WebSocket\r\n\r\n",
		"POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc",
		"garbage\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: x\r\n",
		"\r\n\r\n",
		"GET / HTTP/1.1\r\nUpgrade\r\n\r\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		whole, errWhole := peekHead(bufio.NewReaderSize(bytes.NewReader(in), headLimit))
		br := bufio.NewReaderSize(iotest.OneByteReader(bytes.NewReader(in)), headLimit)
		bytewise, errBytewise := peekHead(br)
		if whole != bytewise || (errWhole == nil) != (errBytewise == nil) {
			t.Fatalf("at once %+v %v, byte by byte %+v %v", whole, errWhole, bytewise, errBytewise)
		}
		if rest, _ := io.ReadAll(br); !bytes.Equal(rest, in) {
			t.Fatalf("the peek consumed input")
		}
		if errWhole == nil && whole.size > 0 && !bytes.HasSuffix(in[:whole.size], []byte("\r\n\r\n")) {
			t.Fatalf("head of %d bytes does not end with a blank line", whole.size)
		}
	})
}

// parseHead tells a WebSocket upgrade from a page request by the Upgrade
// header, in any case and spacing, and reads the request line and Host.
func TestParseHead(t *testing.T) {
	for _, tc := range []struct {
		head         string
		method, path string
		websocket    bool
		host         string
	}{
		{"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "GET", "/", false, "x"},
		{"GET /ws?token=a HTTP/1.1\r\nUPGRADE:websocket\r\n\r\n", "GET", "/ws?token=a", true, ""},
		{"GET / HTTP/1.1\r\nUpgrade: h2c\r\nhost:  Dash.Example:8690 \r\n\r\n", "GET", "/", false, "Dash.Example:8690"},
		{"GET / HTTP/1.1\r\nX-Upgrade: websocket\r\nX-Host: y\r\n\r\n", "GET", "/", false, ""},
		{"HEAD /app.js HTTP/1.0\r\n\r\n", "HEAD", "/app.js", false, ""},
		{"nonsense\r\n\r\n", "", "", false, ""},
	} {
		h := parseHead([]byte(tc.head))
		if h.method != tc.method || h.path != tc.path || h.websocket != tc.websocket || h.host != tc.host || h.size != len(tc.head) {
			t.Errorf("%q: %+v", tc.head, h)
		}
	}
}
