package server_test

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/roomcast/roomcast/internal/client"
	"github.com/roomcast/roomcast/internal/config"
	"github.com/roomcast/roomcast/internal/server"
)

// rawRequest sends req on a new connection to the WebSocket port, in
// pieces of chunk bytes (0: at once), and returns the response.
func rawRequest(t *testing.T, srv *server.Server, req string, chunk int) *http.Response {
	t.Helper()
	nc, err := net.DialTimeout("tcp", srv.WSAddr(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = nc.Close() })
	_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
	if chunk <= 0 {
		chunk = len(req)
	}
	for rest := req; rest != ""; {
		n := min(chunk, len(rest))
		if _, err := io.WriteString(nc, rest[:n]); err != nil {
			t.Fatal(err)
		}
		rest = rest[n:]
	}
	method, _, _ := strings.Cut(req, " ")
	resp, err := http.ReadResponse(bufio.NewReader(nc), &http.Request{Method: method})
	if err != nil {
		t.Fatalf("%.40q: %v", req, err)
	}
	t.Cleanup(func() { _ = resp.Body.Close() })
	return resp
}

func body(t *testing.T, resp *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// Plain HTTP requests on the WebSocket port get the dashboard's files,
// with headers that keep the page to itself; anything else gets a clear
// refusal; upgrades at / and /ws work as before.
func TestDashboardIsServedBesideTheUpgrade(t *testing.T) {
	srv := startNode(t, nil, nil)
	get := func(path string) *http.Response {
		return rawRequest(t, srv, "GET "+path+" HTTP/1.1\r\nHost: "+srv.WSAddr()+"\r\nConnection: keep-alive\r\nAccept: */*\r\n\r\n", 0)
	}

	resp := get("/")
	page := body(t, resp)
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") ||
		!strings.Contains(page, `<script type="module" src="app.js">`) {
		t.Fatalf("GET /: %s %q, body %.80q", resp.Status, resp.Header.Get("Content-Type"), page)
	}
	for h, want := range map[string]string{
		"Content-Security-Policy": "default-src 'self'",
		"X-Content-Type-Options":  "nosniff",
	} {
		if !strings.Contains(resp.Header.Get(h), want) {
			t.Errorf("GET /: %s is %q, want %q in it", h, resp.Header.Get(h), want)
		}
	}
	if !resp.Close {
		t.Error("GET /: the response does not say Connection: close")
	}
	if !strings.Contains(resp.Header.Get("Content-Security-Policy"), "frame-ancestors 'none'") {
		t.Error("the page may be framed by another site")
	}
	for path, ctype := range map[string]string{"/app.js": "text/javascript", "/link.js": "text/javascript",
		"/views.js": "text/javascript", "/style.css": "text/css", "/index.html?x=1": "text/html"} {
		resp := get(path)
		if b := body(t, resp); resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), ctype) || len(b) == 0 {
			t.Errorf("GET %s: %s %q, %d bytes", path, resp.Status, resp.Header.Get("Content-Type"), len(b))
		}
	}

	for _, tc := range []struct {
		req    string
		status int
	}{
		{"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n", http.StatusNotFound},
		{"GET /../../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n", http.StatusNotFound},
		{"GET /static/index.html HTTP/1.1\r\nHost: x\r\n\r\n", http.StatusNotFound},
		{"GET /ws HTTP/1.1\r\nHost: x\r\n\r\n", http.StatusBadRequest},
		{"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", http.StatusMethodNotAllowed},
		{"garbage\r\n\r\n", http.StatusMethodNotAllowed},
	} {
		if resp := rawRequest(t, srv, tc.req, 0); resp.StatusCode != tc.status {
			t.Errorf("%q: %s, want %d", tc.req, resp.Status, tc.status)
		}
	}

	head := rawRequest(t, srv, "HEAD / HTTP/1.1\r\nHost: x\r\n\r\n", 0)
	if head.StatusCode != http.StatusOK || head.ContentLength <= 0 {
		t.Errorf("HEAD /: %s, length %d", head.Status, head.ContentLength)
	}
	// A head that arrives a few bytes at a time is read whole.
	if slow := rawRequest(t, srv, "GET /style.css HTTP/1.1\r\nHost: x\r\n\r\n", 3); slow.StatusCode != http.StatusOK {
		t.Errorf("a head sent in pieces: %s", slow.Status)
	}
	// A head larger than the upgrade's buffer is refused as before.
	big := "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 5000) + "\r\n\r\n"
	if resp := rawRequest(t, srv, big, 0); resp.StatusCode < 400 {
		t.Errorf("a 5 KB head: %s, want a refusal", resp.Status)
	}

	for _, path := range []string{"/", "/ws"} {
		subscribeOnce(t, "ws://"+srv.WSAddr()+path)
	}
}

// subscribeOnce dials url and subscribes to a room: the upgrade works.
func subscribeOnce(t *testing.T, url string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, url, nil)
	if err != nil {
		t.Fatalf("upgrade at %s: %v", url, err)
	}
	defer c.Close()
	if res, _ := subscribe(t, c, "pool:p1", nil); res.Status != "subscribed" {
		t.Fatalf("subscribe at %s: %+v", url, res)
	}
}

// With --dashboard=false a plain request is refused as a failed upgrade,
// as before the dashboard, and upgrades still work.
func TestDashboardCanBeTurnedOff(t *testing.T) {
	srv := startNode(t, nil, func(c *config.Serve) { c.Dashboard = false })
	resp := rawRequest(t, srv, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", 0)
	if resp.StatusCode != http.StatusBadRequest || strings.Contains(body(t, resp), "<html") {
		t.Errorf("GET / without the dashboard: %s", resp.Status)
	}
	subscribeOnce(t, "ws://"+srv.WSAddr()+"/")
}
