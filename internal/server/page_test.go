package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
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
		"/views.js": "text/javascript", "/style.css": "text/css", "/index.html?x=1": "text/html",
		"/roomcast.js": "text/javascript"} {
		resp := get(path)
		if b := body(t, resp); resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), ctype) || len(b) == 0 {
			t.Errorf("GET %s: %s %q, %d bytes", path, resp.Status, resp.Header.Get("Content-Type"), len(b))
		}
	}

	// The client library may be imported by other sites' pages (a module
	// needs CORS for that); the dashboard's own files may not.
	if lib := get("/roomcast.js"); lib.Header.Get("Access-Control-Allow-Origin") != "*" || !strings.Contains(body(t, lib), "export class Client") {
		t.Errorf("GET /roomcast.js: Access-Control-Allow-Origin %q, or not the client library", lib.Header.Get("Access-Control-Allow-Origin"))
	}
	if app := get("/app.js"); app.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("GET /app.js: Access-Control-Allow-Origin %q, want none", app.Header.Get("Access-Control-Allow-Origin"))
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

// The page's origin check (GET /origin-check?origin=...) answers what the
// upgrade then does, for the request's Host, with the default policy and
// with a listed origin; a refusal names the setting. A page reached by a
// host name is refused by default (DNS rebinding), and the check says so.
func TestOriginCheckAgreesWithTheUpgrade(t *testing.T) {
	const name = "dash.example.test:8690"
	for _, tc := range []struct {
		policy string
		edit   func(*config.Serve)
		want   map[[2]string]bool // {host, origin} -> allowed; "" host: the node's address
	}{
		{"default", nil, map[[2]string]bool{
			{name, "http://" + name}:         false,
			{"", ""}:                         true, // the node's own IP address
			{name, "http://localhost:5173"}:  true,
			{name, "https://evil.example"}:   false,
			{"", "http://dash.example.test"}: false,
		}},
		{"listed", func(c *config.Serve) { c.AllowedOrigins = config.List{"http://" + name} }, map[[2]string]bool{
			{name, "http://" + name}:        true,
			{"", ""}:                        false,
			{name, "http://localhost:5173"}: false,
			{name, "https://evil.example"}:  false,
		}},
	} {
		srv := startNode(t, nil, tc.edit)
		for k, want := range tc.want {
			host, origin := k[0], k[1]
			if host == "" {
				host = srv.WSAddr()
			}
			if origin == "" {
				origin = "http://" + srv.WSAddr()
			}
			v := originCheck(t, srv, host, "origin="+url.QueryEscape(origin), http.StatusOK)
			if v.Allowed != want || v.Origin != origin {
				t.Errorf("%s policy, host %s, origin %s: check says %+v, want allowed %v", tc.policy, host, origin, v, want)
			}
			if refused := v.Flag == "--allowed-origins" && v.Env == "ROOMCAST_ALLOWED_ORIGINS"; refused == v.Allowed {
				t.Errorf("%s policy, origin %s: setting %q %q with allowed %v", tc.policy, origin, v.Flag, v.Env, v.Allowed)
			}
			up := rawRequest(t, srv, "GET /ws HTTP/1.1\r\nHost: "+host+"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
				"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nOrigin: "+origin+"\r\n\r\n", 0)
			if accepted := up.StatusCode == http.StatusSwitchingProtocols; accepted != want {
				t.Errorf("%s policy, host %s, origin %s: upgrade %s, want accepted %v", tc.policy, host, origin, up.Status, want)
			}
		}
	}
	// A question that is not an origin gets a clear 400, never a verdict.
	srv := startNode(t, nil, nil)
	for _, q := range []string{"", "origin=", "origin=dash.example.test", "origin=http%3A%2F%2Fa%2Fpath", "origin=%zz",
		"origin=http%3A%2F%2F*.example", "origin=http%3A%2F%2F" + strings.Repeat("a", 400)} {
		originCheck(t, srv, name, q, http.StatusBadRequest)
	}
}

// originVerdict is the JSON of the origin check.
type originVerdict struct {
	Origin  string `json:"origin"`
	Allowed bool   `json:"allowed"`
	Flag    string `json:"flag"`
	Env     string `json:"env"`
}

// originCheck asks the node's origin check with query for host and wants
// status; a 200 answer is decoded.
func originCheck(t *testing.T, srv *server.Server, host, query string, status int) originVerdict {
	t.Helper()
	resp := rawRequest(t, srv, "GET /origin-check?"+query+" HTTP/1.1\r\nHost: "+host+"\r\n\r\n", 0)
	b := body(t, resp)
	if resp.StatusCode != status {
		t.Fatalf("origin check %q for %s: %s %q, want %d", query, host, resp.Status, b, status)
	}
	var v originVerdict
	if status == http.StatusOK {
		if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("origin check: Content-Type %q", ct)
		}
		if err := json.Unmarshal([]byte(b), &v); err != nil {
			t.Fatalf("origin check %q: %v in %q", query, err, b)
		}
	}
	return v
}
