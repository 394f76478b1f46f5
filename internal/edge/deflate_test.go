package edge

import (
	"bufio"
	"io"
	"net/http"
	"testing"
	"time"
)

// serveCompression runs a Server with --compression on or off on a
// loopback listener and returns its address.
func serveCompression(t *testing.T, on bool) string {
	t.Helper()
	_, addr := serveEdge(t, Options{Compression: on})
	return addr
}

// upgradeWith sends an upgrade request offering extensions (none if
// empty) and returns the response.
func upgradeWith(t *testing.T, addr, extensions string) *http.Response {
	t.Helper()
	nc := dialRaw(t, addr)
	_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
	req := "GET / HTTP/1.1\r\nHost: " + addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
	if extensions != "" {
		req += "Sec-WebSocket-Extensions: " + extensions + "\r\n"
	}
	if _, err := io.WriteString(nc, req+"\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(nc), nil)
	if err != nil {
		t.Fatalf("read the upgrade response: %v", err)
	}
	return resp
}

// permessage-deflate is accepted, always without context takeover, only
// with --compression, and only as roomcast can honour it; an offer it
// cannot meet is declined, never the connection.
func TestDeflateNegotiation(t *testing.T) {
	const accepted = "permessage-deflate;server_no_context_takeover;client_no_context_takeover"
	on, off := serveCompression(t, true), serveCompression(t, false)
	for _, tc := range []struct {
		name, addr, offer, want string
	}{
		{"plain offer", on, "permessage-deflate", accepted},
		{"browser offer", on, "permessage-deflate; client_max_window_bits", accepted},
		{"no context takeover offered", on, "permessage-deflate; server_no_context_takeover; client_no_context_takeover", accepted},
		{"full window", on, "permessage-deflate; server_max_window_bits=15", accepted},
		{"small server window", on, "permessage-deflate; server_max_window_bits=10", ""},
		{"small window, then plain", on, "permessage-deflate; server_max_window_bits=10, permessage-deflate", accepted},
		{"unknown parameter", on, "permessage-deflate; zlevel=9", ""},
		{"bad window value", on, "permessage-deflate; client_max_window_bits=99", ""},
		{"other extension", on, "x-webkit-deflate-frame", ""},
		{"no offer", on, "", ""},
		{"off", off, "permessage-deflate; client_max_window_bits", ""},
	} {
		resp := upgradeWith(t, tc.addr, tc.offer)
		if resp.StatusCode != http.StatusSwitchingProtocols {
			t.Errorf("%s: status %d, want 101", tc.name, resp.StatusCode)
			continue
		}
		if got := resp.Header.Get("Sec-WebSocket-Extensions"); got != tc.want {
			t.Errorf("%s: extensions %q, want %q", tc.name, got, tc.want)
		}
	}
}
