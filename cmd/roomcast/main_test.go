package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/roomcast/roomcast/internal/config"
	"github.com/roomcast/roomcast/internal/natstest"
	"github.com/roomcast/roomcast/internal/servertest"
	"github.com/roomcast/roomcast/internal/tlsconf/tlstest"
	"github.com/roomcast/roomcast/internal/wire"
)

// runCmd runs roomcast in-process and returns its exit status and output.
func runCmd(ctx context.Context, stdin string, args ...string) (int, string, string) {
	var out, errb servertest.SyncBuffer
	code := runWith(ctx, &out, &errb, stdin, args...)
	return code, out.String(), errb.String()
}

func runWith(ctx context.Context, out, errb *servertest.SyncBuffer, stdin string, args ...string) int {
	return runWithEnv(ctx, out, errb, stdin, nil, args...)
}

// runWithEnv is runWith with environment variables: vars, and no others.
func runWithEnv(ctx context.Context, out, errb *servertest.SyncBuffer, stdin string, vars map[string]string, args ...string) int {
	env := &environment{stdin: strings.NewReader(stdin), stdout: out, stderr: errb, getenv: func(k string) string { return vars[k] }}
	return run(ctx, env, args)
}

func TestUsageErrorsExitTwo(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"frobnicate"},
		{"serve", "--no-such-flag"},
		{"serve", "--log-format", "xml"},
		{"serve", "extra-arg"},
		{"serve", "--rebalance-tolerance", "-0.1"},
		{"serve", "--rebalance-tolerance", "NaN"},
		{"serve", "--rebalance-rate", "0"},
		{"serve", "--rebalance", "maybe"},
		{"publish", "pool:p1"},
		{"publish", "pool:a.b", "e", "{}"},
		{"publish", "pool:p1", "bad name", "{}"},
		{"publish", "pool:p1", "e", "{not json"},
		{"publish", "pool:p1", "e", "[1]"},
		{"publish", "pool:p1", "worker.status_changed", `{"worker_id":"w1","pool_id":"p1"}`},
		{"publish", "pool:p1", "worker.status_changed", `{"worker_id":"w1","status":"busy","pool_id":"p2"}`},
		{"publish", "pool:p1", "pool.status_changed", `{"pool_id":"p1","status":3}`},
		{"tail"},
		{"tail", "pool:>"},
		{"tail", "--since", "x", "pool:p1"},
		{"tail", "--epoch", "abc-1", "pool:p1"},
		{"tail", "--since", "1", "--epoch", "NOT AN EPOCH", "pool:p1"},
		{"demo", "--rate", "-1"},
		{"demo", "--pools", "0"},
		{"demo", "--workers", "5000"},
		{"demo", "extra"},
	} {
		code, _, stderr := runCmd(t.Context(), "", args...)
		if code != 2 || stderr == "" {
			t.Errorf("roomcast %q: exit %d, stderr %q; want 2 and a message", args, code, stderr)
		}
	}
}

func TestPublishToUnreachableNATSFailsClearly(t *testing.T) {
	code, _, stderr := runCmd(t.Context(), "", "publish", "--nats", "nats://127.0.0.1:1", "--timeout", "2s", "pool:p1", "e", "{}")
	if code != 1 || !strings.Contains(stderr, "connect to NATS") {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
}

// The README's tour: tail in one shell, publish in another.
func TestPublishShowsUpInTail(t *testing.T) {
	srv := servertest.Start(t, nil, nil)
	ctx, cancel := context.WithCancel(t.Context())
	var out, errb servertest.SyncBuffer
	done := make(chan int)
	go func() { done <- runWith(ctx, &out, &errb, "", "tail", "--url", servertest.WSURL(srv), "pool:demo") }()
	waitOutput(t, &errb, "subscribed to pool:demo")

	code, stdout, stderr := runCmd(t.Context(), "", "publish", "--nats", srv.NATSURL(), "pool:demo",
		"worker.status_changed", `{"worker_id":"w1","status":"busy","pool_id":"demo"}`)
	if code != 0 {
		t.Fatalf("publish: exit %d: %s", code, stderr)
	}
	seq := strings.TrimSpace(stdout)
	waitOutput(t, &out, "pool:demo  #"+seq+"  worker.status_changed     w1            busy")

	// Data from standard input.
	code, _, stderr = runCmd(t.Context(), `{"n":2}`, "publish", "--nats", srv.NATSURL(), "pool:demo", "custom.event", "-")
	if code != 0 {
		t.Fatalf("publish from stdin: exit %d: %s", code, stderr)
	}
	waitOutput(t, &out, `custom.event              {"n":2}`) // not an event of docs/protocol.md: the raw data
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("tail exit %d: %s", code, errb.String())
	}
}

// tail reconnects to the next URL when its edge goes away and resumes after
// the last seq it printed: every event is printed once.
func TestTailResumesOnAnotherNode(t *testing.T) {
	ns := natstest.RunServer(t)
	a, b := servertest.Start(t, ns, nil), servertest.Start(t, ns, nil)
	tail := runBackground(t, "tail", "--json", "--url", servertest.WSURL(a), "--url", servertest.WSURL(b), "pool:t")
	out, errb := &tail.out, &tail.errb
	waitOutput(t, errb, "subscribed to pool:t")
	publish := func(n int) {
		code, _, stderr := runCmd(t.Context(), "", "publish", "--nats", ns.ClientURL(), "pool:t", "e", fmt.Sprintf(`{"n":%d}`, n))
		if code != 0 {
			t.Fatalf("publish %d: %s", n, stderr)
		}
	}
	for i := range 3 {
		publish(i)
	}
	waitOutput(t, out, `"n":2`)
	a.Shutdown()
	for i := 3; i < 6; i++ {
		publish(i) // while tail reconnects
	}
	waitOutput(t, out, `"n":5`)
	tail.stop()

	var got []int
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var m wire.Message
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("--json line %q: %v", line, err)
		}
		if m.Event == wire.EventDraining {
			continue
		}
		var d struct{ N int }
		_ = json.Unmarshal(m.Data, &d)
		got = append(got, d.N)
	}
	if fmt.Sprint(got) != "[0 1 2 3 4 5]" {
		t.Fatalf("tail printed %v, want each of 0..5 once, in order", got)
	}
	if !strings.Contains(errb.String(), "reconnecting") {
		t.Fatalf("tail did not reconnect: %s", errb.String())
	}
}

// waitOutput polls until buf contains want.
// background is a command running on a goroutine of its own, as tail does
// until interrupted.
type background struct {
	out, errb servertest.SyncBuffer
	done      chan int
	cancel    context.CancelFunc
}

// runBackground starts the command of args; the test's end stops it.
func runBackground(t *testing.T, args ...string) *background {
	ctx, cancel := context.WithCancel(t.Context())
	b := &background{done: make(chan int, 1), cancel: cancel}
	go func() { b.done <- runWith(ctx, &b.out, &b.errb, "", args...) }()
	t.Cleanup(func() { b.stop() })
	return b
}

// stop interrupts the command and returns its exit code.
func (b *background) stop() int {
	b.cancel()
	code, ok := <-b.done
	if ok {
		close(b.done)
	}
	return code
}

func waitOutput(t *testing.T, buf *servertest.SyncBuffer, want string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !strings.Contains(buf.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("output never contained %q; got:\n%s", want, buf.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// version prints the binary's version line; it takes no arguments.
func TestVersion(t *testing.T) {
	code, stdout, _ := runCmd(t.Context(), "", "version")
	if code != 0 || !strings.HasPrefix(stdout, "roomcast ") || !strings.Contains(stdout, "go1.") {
		t.Fatalf("version: exit %d, %q", code, stdout)
	}
	if code, _, _ := runCmd(t.Context(), "", "version", "extra"); code != 2 {
		t.Fatalf("version extra: exit %d, want 2", code)
	}
}

// tail reaches a wss:// edge whose certificate a private CA signed with
// --tls-ca, verifying the name --tls-server-name gives (the URL's host may
// be a port-forward's); an untrusted or misnamed certificate ends it at
// once with exit 1, a missing CA file with exit 2.
func TestTailOverTLSWithAPrivateCA(t *testing.T) {
	ca := tlstest.NewCA(t)
	cert, key, _ := ca.Server(t, "edge")
	srv := servertest.Start(t, nil, func(c *config.Serve) { c.TLSCert, c.TLSKey = cert, key })
	url := "wss://" + srv.WSAddr() + "/ws"

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var out, errb servertest.SyncBuffer
	done := make(chan int)
	go func() {
		done <- runWith(ctx, &out, &errb, "", "tail", "--url", url, "--tls-ca", ca.CertFile(t), "--tls-server-name", "localhost", "pool:tls")
	}()
	waitOutput(t, &errb, "subscribed to pool:tls")
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("tail exit %d: %s", code, errb.String())
	}

	code, _, stderr := runCmd(t.Context(), "", "tail", "--url", url, "--tls-server-name", "localhost", "pool:tls")
	if code != 1 || !strings.Contains(stderr, "certificate") {
		t.Fatalf("tail without the CA: exit %d, stderr %q; want 1 and a certificate error, at once", code, stderr)
	}
	code, _, stderr = runCmd(t.Context(), "", "tail", "--url", url, "--tls-ca", ca.CertFile(t), "--tls-server-name", "other.name", "pool:tls")
	if code != 1 || !strings.Contains(stderr, "other.name") {
		t.Fatalf("tail with a name the certificate lacks: exit %d, stderr %q", code, stderr)
	}
	if code, _, stderr := runCmd(t.Context(), "", "tail", "--tls-ca", "/nonexistent.pem", "pool:tls"); code != 2 || !strings.Contains(stderr, "--tls-ca") {
		t.Fatalf("a missing CA file: exit %d, %q", code, stderr)
	}
}
