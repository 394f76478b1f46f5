package conformance_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

// runner starts one library's runner (README.md, "The runner contract").
type runner interface {
	name() string
	// start runs a client configured by cfg until the test ends, or
	// session.stop; it returns once the runner reported ready.
	start(t testing.TB, cfg runnerConfig) *session
	// pausesReads reports whether the application's pause (data.pause_ms)
	// stops the client reading its socket. A page's busy thread does not:
	// Chromium goes on reading into its own buffers.
	pausesReads() bool
}

// session is one runner at work: what it reported, and how to stop it.
type session struct {
	*recorder
	stop func()
}

// runners is every library's runner.
func runners() []runner { return []runner{goRunner{}, pythonRunner{}, jsRunner{}} }

// waitReady waits for the runner's first record.
func waitReady(t testing.TB, rec *recorder) {
	t.Helper()
	rec.waitFor(t, "ready", func(recs []stamped) bool { return count(recs, "ready", "") > 0 })
}

// goRunner runs runGo (gorunner_test.go) in the test's own process, under
// the race detector.
type goRunner struct{}

func (goRunner) name() string { return "go" }

func (goRunner) pausesReads() bool { return true }

func (goRunner) start(t testing.TB, cfg runnerConfig) *session {
	t.Helper()
	rec := &recorder{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- runGo(ctx, cfg, rec.add) }()
	stop := sync.OnceFunc(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("go runner: %v", err)
			}
		case <-time.After(nodeWait):
			t.Errorf("go runner: not stopped within %s", nodeWait)
		}
	})
	t.Cleanup(stop)
	waitReady(t, rec)
	return &session{rec, stop}
}

// pythonRunner runs clients/python/tests/runner.py with a python3 that
// has the websockets library (Debian's python3-websockets).
type pythonRunner struct{}

func (pythonRunner) name() string { return "python" }

func (pythonRunner) pausesReads() bool { return true }

var findPython = sync.OnceValues(func() (string, error) {
	var last error
	for _, p := range []string{"/usr/bin/python3", "python3"} {
		out, err := exec.Command(p, "-c", "import websockets; print(websockets.__version__)").CombinedOutput()
		if err == nil {
			return p, nil
		}
		last = fmt.Errorf("%s: %w: %s", p, err, bytes.TrimSpace(out))
	}
	return "", last
})

func (pythonRunner) start(t testing.TB, cfg runnerConfig) *session {
	t.Helper()
	py, err := findPython()
	if err != nil {
		required(t, "no python3 with the websockets library (apt-get install python3-websockets): %v", err)
	}
	config, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(py, filepath.Join(repoRoot, "clients", "python", "tests", "runner.py"))
	cmd.Env = append(os.Environ(), "ROOMCAST_RUNNER_CONFIG="+string(config),
		"PYTHONPATH="+filepath.Join(repoRoot, "clients", "python"), "PYTHONUNBUFFERED=1")
	stderr := &lockedBuffer{}
	cmd.Stderr = stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start the python runner: %v", err)
	}
	rec := &recorder{}
	read := make(chan struct{})
	go func() {
		defer close(read)
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 64<<10), 4<<20)
		for sc.Scan() {
			var r record
			if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
				rec.add(record{Kind: "garbled", Text: sc.Text()})
				continue
			}
			rec.add(r)
		}
	}()
	stop := sync.OnceFunc(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-read:
		case <-time.After(nodeWait):
			_ = cmd.Process.Kill()
			<-read
		}
		_ = cmd.Wait()
		if t.Failed() || count(rec.all(), "garbled", "") > 0 {
			t.Logf("python runner's standard error:\n%s", stderr.String())
		}
	})
	t.Cleanup(stop)
	waitReady(t, rec)
	return &session{rec, stop}
}

// jsRunner opens clients/js/test/runner.html in a tab of the package's
// headless Chromium.
type jsRunner struct{}

func (jsRunner) name() string { return "js" }

func (jsRunner) pausesReads() bool { return false }

func (jsRunner) start(t testing.TB, cfg runnerConfig) *session {
	t.Helper()
	config, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	page := staticServer() + "/js/test/runner.html?config=" + url.QueryEscape(string(config))
	tab := openTab(t, page)
	rec := &recorder{}
	stopPolling := make(chan struct{})
	polled := make(chan struct{})
	go func() {
		defer close(polled)
		tab.poll(stopPolling, rec.add)
	}()
	stop := sync.OnceFunc(func() {
		close(stopPolling)
		<-polled
		tab.close()
		if t.Failed() {
			t.Logf("runner page's console:\n%s", tab.console())
		}
	})
	t.Cleanup(stop)
	waitReady(t, rec)
	return &session{rec, stop}
}

// lockedBuffer is a buffer a process writes while the test may read it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}
