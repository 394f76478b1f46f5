package main

import (
	"context"
	"strings"
	"testing"

	"github.com/roomcast/roomcast/internal/natstest"
	"github.com/roomcast/roomcast/internal/servertest"
)

// A command line that starts with a flag is serve's, as the image runs it
// (`docker run IMAGE --allow-anonymous`: the flags replace the default
// command `serve` after the entrypoint /roomcast): the node starts, and
// stops cleanly when asked.
func TestFlagsFirstRunServe(t *testing.T) {
	ns := natstest.RunServer(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var out, errb servertest.SyncBuffer
	done := make(chan int, 1)
	go func() {
		done <- runWith(ctx, &out, &errb, "", "--allow-anonymous", "--nats", ns.ClientURL(),
			"--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0")
	}()
	waitOutput(t, &errb, "roomcast serving")
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("roomcast --allow-anonymous ...: exit %d: %s", code, errb.String())
	}
}

// A flag-first command line goes to serve's flag parsing, so its mistakes
// are serve's usage errors; help and the named commands are unchanged.
func TestFlagsFirstErrorsAreServes(t *testing.T) {
	for _, args := range [][]string{{"--no-such-flag"}, {"--log-format", "xml"}, {"-allow-anonymous", "extra"}} {
		code, _, stderr := runCmd(t.Context(), "", args...)
		if code != 2 || !strings.Contains(stderr, "roomcast serve: ") {
			t.Errorf("roomcast %q: exit %d, stderr %.200q; want 2 and serve's message", args, code, stderr)
		}
	}
	for _, args := range [][]string{{"-h"}, {"--help"}} {
		code, _, stderr := runCmd(t.Context(), "", args...)
		if code != 0 || !strings.Contains(stderr, "usage: roomcast COMMAND") {
			t.Errorf("roomcast %q: exit %d, stderr %q; want 0 and the usage", args, code, stderr)
		}
	}
	if code, stdout, _ := runCmd(t.Context(), "", "version"); code != 0 || !strings.HasPrefix(stdout, "roomcast ") {
		t.Errorf("version: exit %d, %q", code, stdout)
	}
}
