// Package check probes services for `roomcast check`: a roomcast node's own
// listeners (WebSocket, admin HTTP, embedded NATS), or WebSocket services
// named on the command line (a TCP connect, a WebSocket handshake and a ping
// round trip each), and tells which of their ports are already taken before
// they start (`check --free`).
package check

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/gobwas/ws"
)

// Service is one service to probe.
type Service struct {
	Name string `json:"service"`
	Addr string `json:"address"`        // host:port
	Kind Kind   `json:"kind,omitempty"` // "": a WebSocket service
}

// Kind is how a service is probed once its TCP connect succeeded.
type Kind string

// The kinds of service: a node's three listeners.
const (
	WebSocket Kind = ""     // a WebSocket handshake at / and a ping's round trip
	HTTP      Kind = "http" // GET /healthz answered (any status): the admin listener
	NATS      Kind = "nats" // the NATS server's INFO line
)

// Node is a roomcast node's own listeners at the given addresses: its
// WebSocket listener, admin listener and embedded NATS server (natsAddr
// "": none, the node uses an external NATS).
func Node(wsAddr, adminAddr, natsAddr string) []Service {
	out := []Service{
		{"roomcast websocket", wsAddr, WebSocket},
		{"roomcast admin", adminAddr, HTTP},
	}
	if natsAddr != "" {
		out = append(out, Service{"roomcast nats", natsAddr, NATS})
	}
	return out
}

// Ecosystem is the deployment's list of WebSocket services on this machine
// (`check --ecosystem`).
var Ecosystem = []Service{
	{"session-buddy", "127.0.0.1:8765", WebSocket},
	{"mahavishnu", "127.0.0.1:8690", WebSocket},
	{"crackerjack", "127.0.0.1:8686", WebSocket},
	{"akosha", "127.0.0.1:8692", WebSocket},
	{"dhruva", "127.0.0.1:8693", WebSocket},
	{"excalidraw-mcp", "127.0.0.1:3042", WebSocket},
	{"fastblocks", "127.0.0.1:8684", WebSocket},
}

// Result is one probe's outcome.
type Result struct {
	Service
	Up     bool    `json:"up"`
	Status string  `json:"status"`           // up, or the stage that failed: "tcp refused", "handshake failed", ...
	RTTMS  float64 `json:"rtt_ms,omitempty"` // the ping round trip
	Error  string  `json:"error,omitempty"`
}

// Probe checks every service at once, each within timeout, and returns the
// results in the order given.
func Probe(ctx context.Context, services []Service, timeout time.Duration) []Result {
	out := make([]Result, len(services))
	var wg sync.WaitGroup
	for i, s := range services {
		wg.Go(func() { out[i] = probe(ctx, s, timeout) })
	}
	wg.Wait()
	return out
}

func probe(ctx context.Context, s Service, timeout time.Duration) Result {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	r := Result{Service: s}
	fail := func(stage string, err error) Result {
		r.Status, r.Error = stage, err.Error()
		return r
	}
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", s.Addr)
	if err != nil {
		return fail("down (tcp)", err)
	}
	defer nc.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = nc.SetDeadline(dl)
	}
	var rtt time.Duration
	switch s.Kind {
	case HTTP:
		rtt, err = healthz(nc, s.Addr)
	case NATS:
		rtt, err = natsInfo(nc)
	default:
		return probeWebSocket(ctx, nc, r)
	}
	if err != nil {
		return fail("down ("+string(s.Kind)+")", err)
	}
	r.Up, r.Status, r.RTTMS = true, "up", float64(rtt.Microseconds())/1000
	return r
}

// probeWebSocket makes the handshake on nc and measures a ping's round
// trip, then closes normally.
func probeWebSocket(ctx context.Context, nc net.Conn, r Result) Result {
	s := r.Service
	fail := func(stage string, err error) Result {
		r.Status, r.Error = stage, err.Error()
		return r
	}
	dialer := ws.Dialer{NetDial: func(context.Context, string, string) (net.Conn, error) { return nc, nil }}
	_, br, _, err := dialer.Dial(ctx, "ws://"+s.Addr+"/")
	if err != nil {
		return fail("down (handshake)", err)
	}
	var rd io.Reader = nc
	if br != nil {
		rd = io.MultiReader(br, nc)
	}
	rtt, err := pingRoundTrip(nc, rd)
	if err != nil {
		return fail("down (ping)", err)
	}
	r.Up, r.Status, r.RTTMS = true, "up", float64(rtt.Microseconds())/1000
	_ = ws.WriteFrame(nc, ws.MaskFrame(ws.NewCloseFrame(ws.NewCloseFrameBody(ws.StatusNormalClosure, "check done"))))
	return r
}

// healthz asks an admin listener for /healthz and measures the time to its
// status line; any HTTP answer means the listener is up.
func healthz(nc net.Conn, addr string) (time.Duration, error) {
	start := time.Now()
	if _, err := fmt.Fprintf(nc, "GET /healthz HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", addr); err != nil {
		return 0, err
	}
	line, err := bufio.NewReader(nc).ReadString('\n')
	if err != nil {
		return 0, err
	}
	if !strings.HasPrefix(line, "HTTP/1.") {
		return 0, errors.New("not an HTTP answer")
	}
	return time.Since(start), nil
}

// natsInfo reads the INFO line a NATS server greets each client with, and
// measures the time to it from now.
func natsInfo(nc net.Conn) (time.Duration, error) {
	start := time.Now()
	line, err := bufio.NewReaderSize(nc, 4096).ReadSlice('\n')
	if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
		return 0, err
	}
	if !strings.HasPrefix(string(line), "INFO ") {
		return 0, errors.New("not a NATS server's INFO greeting")
	}
	return time.Since(start), nil
}

// pingRoundTrip sends a ping and waits for its pong, skipping the
// service's other frames (a greeting, say).
func pingRoundTrip(nc net.Conn, rd io.Reader) (time.Duration, error) {
	payload := []byte("roomcast check")
	start := time.Now()
	if err := ws.WriteFrame(nc, ws.MaskFrame(ws.NewPingFrame(payload))); err != nil {
		return 0, err
	}
	for range 100 {
		h, err := ws.ReadHeader(rd)
		if err != nil {
			return 0, err
		}
		if h.Length > 1<<20 {
			return 0, fmt.Errorf("a %d-byte frame before the pong", h.Length)
		}
		p := make([]byte, h.Length)
		if _, err := io.ReadFull(rd, p); err != nil {
			return 0, err
		}
		switch h.OpCode {
		case ws.OpPong:
			return time.Since(start), nil
		case ws.OpClose:
			return 0, errors.New("closed by the service")
		}
	}
	return 0, errors.New("no pong among the first 100 frames")
}

// Port is whether a service's port is free to listen on.
type Port struct {
	Service
	Free  bool   `json:"free"`
	Error string `json:"error,omitempty"`
}

// Free reports, for each service, whether its address can be listened on
// now (port-conflict detection before the services start).
func Free(services []Service) []Port {
	out := make([]Port, len(services))
	for i, s := range services {
		out[i] = Port{Service: s}
		ln, err := net.Listen("tcp", s.Addr)
		if err != nil {
			out[i].Error = err.Error()
			continue
		}
		_ = ln.Close()
		out[i].Free = true
	}
	return out
}

// ParseList reads services from text: one per line, "name host:port" or
// "name port" (on 127.0.0.1); blank lines and # comments are skipped.
func ParseList(r io.Reader) ([]Service, error) {
	var out []Service
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line, _, _ := strings.Cut(sc.Text(), "#")
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		if len(fields) != 2 {
			return nil, fmt.Errorf("line %d: want NAME HOST:PORT, got %q", n, strings.TrimSpace(line))
		}
		s, err := ParseService(fields[0] + "=" + fields[1])
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		out = append(out, s)
	}
	return out, sc.Err()
}

// ParseService reads "name=host:port" or "name=port" (on 127.0.0.1).
func ParseService(v string) (Service, error) {
	name, addr, ok := strings.Cut(v, "=")
	if !ok || name == "" || addr == "" {
		return Service{}, fmt.Errorf("service %q: want NAME=HOST:PORT", v)
	}
	if !strings.Contains(addr, ":") {
		addr = "127.0.0.1:" + addr
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil || port == "" {
		return Service{}, fmt.Errorf("service %q: address %q: want HOST:PORT", v, addr)
	}
	if _, err := net.LookupPort("tcp", port); err != nil {
		return Service{}, fmt.Errorf("service %q: port %q: %w", v, port, err)
	}
	return Service{Name: name, Addr: net.JoinHostPort(host, port)}, nil
}
