package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"time"
)

// Targets a scenario measures.
const (
	TargetRoomcast = "roomcast" // a roomcast edge (measured) in front of a NATS JetStream server
	TargetNATS     = "nats"     // the reference: a nats-server with a WebSocket listener
	TargetFloor    = "floor"    // the floor (internal/floor, measured) in front of a core NATS server
)

// Targets lists the target names, in the order a scenario measures them.
var Targets = []string{TargetRoomcast, TargetNATS, TargetFloor}

// Servers are the processes of one target, started by the bench so that
// the measured process (PID) runs nothing but the server.
type Servers struct {
	Target  string
	WSURL   string // where the bench connects
	NATSURL string // where the bench publishes
	PID     int    // the measured process: the edge, or the reference
	// AdminURL is the edge's admin base URL (http://host:port), for its
	// metrics; empty for the reference.
	AdminURL string
	// AddEdge starts one more roomcast edge on the same NATS server (the
	// scale-out scenario); nil for the reference.
	AddEdge func(ctx context.Context) (Edge, error)

	cpus     []int // the CPUs every process of the target is pinned to; empty: not pinned
	children []*child
	edges    int    // roomcast edges started, for their names
	dir      string // JetStream storage, removed on Close
}

// Close kills the processes (the last started first) and removes their
// storage. It is safe to call more than once.
func (s *Servers) Close() {
	for i := len(s.children) - 1; i >= 0; i-- {
		s.children[i].kill()
	}
	s.children = nil
	if s.dir != "" {
		_ = os.RemoveAll(s.dir)
		s.dir = ""
	}
}

// StartServers starts target's processes from exe, the roomcast binary:
// `exe bench-nats-server` (the NATS server) and, for roomcast, `exe serve`
// connected to it, for the floor `exe bench-floor-server`. Every address is on loopback with a port the OS picks.
// Every process is pinned to cpus (none: not pinned).
func StartServers(ctx context.Context, exe, target string, cpus []int) (*Servers, error) {
	s := &Servers{Target: target, cpus: cpus}
	ok := false
	defer func() {
		if !ok {
			s.Close()
		}
	}()
	switch target {
	case TargetNATS:
		ready, pid, err := s.startNATS(ctx, exe, "--websocket")
		if err != nil {
			return nil, err
		}
		s.WSURL, s.NATSURL, s.PID = ready.WSURL, ready.NATSURL, pid
	case TargetRoomcast:
		dir, err := os.MkdirTemp("", "roomcast-bench-")
		if err != nil {
			return nil, fmt.Errorf("JetStream storage: %w", err)
		}
		s.dir = dir
		ready, _, err := s.startNATS(ctx, exe, "--jetstream", dir)
		if err != nil {
			return nil, err
		}
		s.NATSURL = ready.NATSURL
		first, err := s.startEdge(ctx, exe)
		if err != nil {
			return nil, err
		}
		s.WSURL, s.AdminURL, s.PID = first.WSURL, first.AdminURL, first.PID
		s.AddEdge = func(ctx context.Context) (Edge, error) { return s.startEdge(ctx, exe) }
	case TargetFloor:
		ready, _, err := s.startNATS(ctx, exe)
		if err != nil {
			return nil, err
		}
		s.NATSURL = ready.NATSURL
		if err := s.startFloor(ctx, exe); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("unknown target %q", target)
	}
	ok = true
	return s, nil
}

func (s *Servers) startNATS(ctx context.Context, exe string, args ...string) (NATSServerReady, int, error) {
	var ready NATSServerReady
	c, err := startChild(ctx, exe, s.cpus, append([]string{"bench-nats-server"}, args...), func(line []byte) bool {
		return json.Unmarshal(line, &ready) == nil && ready.NATSURL != ""
	})
	if err != nil {
		return ready, 0, fmt.Errorf("start the NATS server: %w", err)
	}
	s.children = append(s.children, c)
	return ready, c.cmd.Process.Pid, nil
}

// startFloor starts the floor server on s's NATS server: the measured process.
func (s *Servers) startFloor(ctx context.Context, exe string) error {
	var ready FloorServerReady
	c, err := startChild(ctx, exe, s.cpus, []string{"bench-floor-server", "--nats", s.NATSURL}, func(line []byte) bool {
		return json.Unmarshal(line, &ready) == nil && ready.WSURL != ""
	})
	if err != nil {
		return fmt.Errorf("start the floor server: %w", err)
	}
	s.children = append(s.children, c)
	s.WSURL, s.PID = ready.WSURL, c.cmd.Process.Pid
	return nil
}

// servingLine is the part of the edge's JSON log line that announces it.
type servingLine struct {
	Msg    string `json:"msg"`
	Listen string `json:"listen"`
	Admin  string `json:"admin"`
}

// Edge is one roomcast edge process.
type Edge struct {
	WSURL    string // ws://host:port/ws
	AdminURL string // http://host:port, or "" if it has no admin listener
	PID      int
}

// startEdge starts a roomcast edge on s's NATS server: the first is named
// bench, the next bench-1, bench-2 (each its own process, so each may hold
// up to 20,000 open files).
func (s *Servers) startEdge(ctx context.Context, exe string) (Edge, error) {
	return s.startEdgeOn(ctx, exe, s.NATSURL)
}

// startEdgeOn is startEdge on the NATS server at natsURL, with extra flags.
func (s *Servers) startEdgeOn(ctx context.Context, exe, natsURL string, extra ...string) (Edge, error) {
	name := "bench"
	if s.edges > 0 {
		name = fmt.Sprintf("bench-%d", s.edges)
	}
	s.edges++
	var serving servingLine
	args := []string{"serve", "--nats", natsURL,
		"--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0",
		"--server-name", name, "--log-format", "json",
		"--retention-max-per-room", "0", // the resume scenario stores 100,000 events in one room
		"--rate-limit", "0", "--drain-timeout", "1s"}
	args = append(args, extra...)
	c, err := startChild(ctx, exe, s.cpus, args, func(line []byte) bool {
		return json.Unmarshal(line, &serving) == nil && serving.Msg == "roomcast serving" && serving.Listen != ""
	})
	if err != nil {
		return Edge{}, fmt.Errorf("start the roomcast edge %s: %w", name, err)
	}
	s.children = append(s.children, c)
	e := Edge{WSURL: "ws://" + serving.Listen + "/ws", PID: c.cmd.Process.Pid}
	if serving.Admin != "" {
		e.AdminURL = "http://" + serving.Admin
	}
	return e, nil
}

// settingsPrefixes are the environment variables serve reads its settings
// from (docs/protocol.md sections 5 and 6).
var settingsPrefixes = []string{"ROOMCAST_", "MAHAVISHNU_", "WEBSOCKET_", "PROMETHEUS_PORT="}

// childEnv is env without serve's settings: the operator's settings for
// their own edge (a JWT secret, TLS files, ports) must not change the one
// the bench measures, which its flags alone configure.
func childEnv(env []string) []string {
	out := make([]string, 0, len(env))
	for _, kv := range env {
		if !slices.ContainsFunc(settingsPrefixes, func(p string) bool { return strings.HasPrefix(kv, p) }) {
			out = append(out, kv)
		}
	}
	return out
}

// child is a server process and the watch on its output.
type child struct {
	cmd  *exec.Cmd
	out  *lineWatch
	done chan struct{} // closed when the process has ended and been waited for
	err  error         // the exit, once done is closed
}

// startChild starts exe with args, pinned to cpus (none: not pinned), and
// waits (at most readyTimeout, or until ctx ends or the process exits) for
// an output line that ready accepts.
func startChild(ctx context.Context, exe string, cpus []int, args []string, ready func([]byte) bool) (*child, error) {
	return startChildIO(ctx, exe, cpus, args, ready, childIO{})
}

// childIO is what a child talking to the bench has besides its arguments:
// its standard input, and a function called with every output line after
// the ready one (under the watch's lock: it must not block).
type childIO struct {
	stdin *os.File
	after func(line []byte)
}

// startChildIO is startChild with io.
func startChildIO(ctx context.Context, exe string, cpus []int, args []string, ready func([]byte) bool, io childIO) (*child, error) {
	w := &lineWatch{ready: ready, found: make(chan struct{}), after: io.after}
	cmd := exec.Command(exe, args...)
	cmd.Env = pinnedEnv(childEnv(os.Environ()), cpus)
	cmd.Stdout, cmd.Stderr = w, w
	if io.stdin != nil {
		cmd.Stdin = io.stdin
	}
	setChildAttrs(cmd)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s %s: %w", exe, args[0], err)
	}
	c := &child{cmd: cmd, out: w, done: make(chan struct{})}
	go func() { // owned by c: ends with the process, which kill ends
		c.err = cmd.Wait()
		close(c.done)
	}()
	if err := Pin(cmd.Process.Pid, cpus); err != nil {
		c.kill()
		return nil, err
	}
	timer := time.NewTimer(readyTimeout)
	defer timer.Stop()
	select {
	case <-w.found:
		return c, nil
	case <-c.done:
		return nil, fmt.Errorf("%s exited before it was ready (%v); its last output:\n%s", args[0], c.err, w.tail())
	case <-timer.C:
		c.kill()
		return nil, fmt.Errorf("%s not ready within %s; its last output:\n%s", args[0], readyTimeout, w.tail())
	case <-ctx.Done():
		c.kill()
		return nil, ctx.Err()
	}
}

// kill ends the process and waits until it is gone.
func (c *child) kill() {
	_ = c.cmd.Process.Kill()
	<-c.done
}

// lineWatch is a child's standard output and error: it reports the first
// line ready accepts and keeps the last lines for error messages.
type lineWatch struct {
	ready func([]byte) bool // called under mu
	found chan struct{}     // closed after the first line ready accepts
	after func([]byte)      // called under mu with each line after that one; nil: none

	mu      sync.Mutex
	partial []byte
	last    []string
	done    bool
}

// tailLines is how many of a child's last output lines an error shows.
const tailLines = 20

func (w *lineWatch) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.partial = append(w.partial, p...)
	for {
		line, rest, ok := bytes.Cut(w.partial, []byte("\n"))
		if !ok {
			break
		}
		switch {
		case !w.done && w.ready(line):
			w.done = true
			close(w.found)
		case w.done && w.after != nil:
			w.after(line)
		}
		w.last = append(w.last, string(line))
		if len(w.last) > tailLines {
			w.last = w.last[1:]
		}
		w.partial = rest
	}
	if len(w.partial) > 64<<10 {
		w.partial = w.partial[:0] // a line no one reads
	}
	return len(p), nil
}

func (w *lineWatch) tail() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return strings.Join(w.last, "\n")
}
