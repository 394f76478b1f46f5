package conn

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/roomcast/roomcast/internal/netpoll"
	"github.com/roomcast/roomcast/internal/wheel"
)

// readerEnv names the reading mode a run of this package's tests uses.
// Every test runs in both: the tests themselves with the connections
// polled (plain TCP in production), then TestMain runs the binary again
// with reader goroutines (TLS in production).
const readerEnv = "ROOMCAST_CONN_TEST_READER"

// testPoll is the poller and wheel pairWith gives connections; nil in the
// reader-goroutine run.
var testPoll struct {
	poller *netpoll.Poller
	wheel  *wheel.Wheel
}

func TestMain(m *testing.M) {
	os.Exit(runBothModes(m))
}

func runBothModes(m *testing.M) int {
	if os.Getenv(readerEnv) == "goroutine" {
		return m.Run()
	}
	p, err := netpoll.New()
	if err != nil {
		fmt.Fprintln(os.Stderr, "netpoll:", err)
		return 1
	}
	testPoll.poller, testPoll.wheel = p, wheel.New(5*time.Millisecond)
	code := m.Run()
	testPoll.wheel.Close()
	p.Close()
	if code != 0 {
		return code
	}
	return rerunWithReaderGoroutines()
}

// rerunWithReaderGoroutines runs this test binary again, with the same
// flags but for output files, in the reader-goroutine mode.
func rerunWithReaderGoroutines() int {
	var args []string
	for _, a := range os.Args[1:] {
		if strings.Contains(a, "profile") || strings.Contains(a, "trace") {
			continue // one run writes them
		}
		args = append(args, a)
	}
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), readerEnv+"=goroutine")
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "reader-goroutine run:", err)
		return 1
	}
	return 0
}
