package main

import (
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/roomcast/roomcast/internal/check"
	"github.com/roomcast/roomcast/internal/servertest"
)

// closedAddr is a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// check against one live node and one closed port: the table says which is
// up (with a round trip) and which is down, and the exit status is 1.
func TestCheckTellsUpFromDown(t *testing.T) {
	srv := servertest.Start(t, nil, nil)
	closed := closedAddr(t)
	code, stdout, stderr := runCmd(t.Context(), "", "check", "--service", "node="+srv.WSAddr(), "--service", "gone="+closed)
	if code != 1 || !strings.Contains(stderr, "1 of 2") {
		t.Fatalf("exit %d, stderr %q; want 1 and the count of down services", code, stderr)
	}
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "SERVICE") {
		t.Fatalf("table %q", stdout)
	}
	if f := strings.Fields(lines[1]); f[0] != "node" || f[2] != "up" || !strings.HasSuffix(strings.TrimSpace(lines[1]), "ms") {
		t.Fatalf("live node's row %q", lines[1])
	}
	if f := strings.Fields(lines[2]); f[0] != "gone" || f[2] != "down" || !strings.Contains(lines[2], "(tcp)") {
		t.Fatalf("closed port's row %q", lines[2])
	}

	// All up: exit 0; --json gives one object per service.
	code, stdout, stderr = runCmd(t.Context(), "", "check", "--json", "--service", "node="+srv.WSAddr())
	var r check.Result
	if code != 0 || json.Unmarshal([]byte(stdout), &r) != nil || !r.Up || r.RTTMS <= 0 || r.Name != "node" {
		t.Fatalf("exit %d, json %q (%+v), stderr %q", code, stdout, r, stderr)
	}
}

// A port that answers TCP but is no WebSocket service is down at the
// handshake.
func TestCheckNonWebSocketIsDownAtTheHandshake(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_, _ = c.Write([]byte("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"))
			c.Close()
		}
	}()
	code, stdout, _ := runCmd(t.Context(), "", "check", "--service", "web="+ln.Addr().String())
	if code != 1 || !strings.Contains(stdout, "down (handshake)") {
		t.Fatalf("exit %d, table %q", code, stdout)
	}
}

// check --free reports a taken port, from a services file.
func TestCheckFreeFindsATakenPort(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	file := filepath.Join(t.TempDir(), "services")
	content := "# name address\ntaken " + ln.Addr().String() + "\nfree " + closedAddr(t) + "\n"
	if err := os.WriteFile(file, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runCmd(t.Context(), "", "check", "--free", "--file", file)
	if code != 1 || !strings.Contains(stderr, "1 of 2 ports are taken") {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	if !strings.Contains(stdout, "taken") || !rowSays(stdout, "taken", "taken") || !rowSays(stdout, "free", "free") {
		t.Fatalf("table %q", stdout)
	}
}

// rowSays reports whether the row of service name says state.
func rowSays(table, name, state string) bool {
	for _, l := range strings.Split(table, "\n") {
		if f := strings.Fields(l); len(f) >= 3 && f[0] == name {
			return f[2] == state
		}
	}
	return false
}

// Bad lists are usage errors.
func TestCheckBadServicesAreRefused(t *testing.T) {
	for _, args := range [][]string{
		{"check", "--service", "nameless"},
		{"check", "--service", "x=host:notaport"},
		{"check", "--timeout", "0s"},
		{"check", "--file", "/no/such/file"},
		{"check", "--ecosystem", "--service", "a=1"},
		{"check", "--listen", "127.0.0.1:0"},
	} {
		if code, _, stderr := runCmd(t.Context(), "", args...); code != 2 || stderr == "" {
			t.Errorf("roomcast %q: exit %d, stderr %q; want 2", args, code, stderr)
		}
	}
}

// check with no list probes the node's own listeners where serve's flags
// put them, each its own way, named as roomcast's: all up, exit 0.
func TestCheckProbesTheNodesOwnListeners(t *testing.T) {
	srv := servertest.Start(t, nil, nil) // with its embedded NATS
	natsAddr := strings.TrimPrefix(srv.NATSURL(), "nats://")
	code, stdout, stderr := runCmd(t.Context(), "", "check", "--listen", srv.WSAddr(), "--admin-listen", srv.AdminAddr(), "--nats-listen", natsAddr)
	if code != 0 {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	for _, name := range []string{"websocket", "admin", "nats"} {
		if !rowSays(strings.ReplaceAll(stdout, "roomcast ", "roomcast-"), "roomcast-"+name, "up") {
			t.Errorf("no up row for roomcast %s: %q", name, stdout)
		}
	}
	if strings.Contains(stdout, "mahavishnu") {
		t.Errorf("the ecosystem's list by default: %q", stdout)
	}

	// The WebSocket probe on the admin port, the admin probe on the NATS
	// port and the NATS probe on the WebSocket port fail: each probe checks
	// what answers, not only that something does.
	code, stdout, _ = runCmd(t.Context(), "", "check", "--listen", srv.AdminAddr(), "--admin-listen", natsAddr, "--nats-listen", srv.WSAddr(), "--timeout", "1s")
	if code != 1 || strings.Count(stdout, "down (") != 3 {
		t.Fatalf("swapped ports: exit %d, table %q; want 3 down", code, stdout)
	}
}

// With no flags, check probes 127.0.0.1:8690, 9090 and 4222 (up or not on
// this machine), or where the ROOMCAST_* variables say; the ecosystem's
// list only with --ecosystem; --nats (an external NATS) drops the NATS row.
func TestCheckDefaultsAndTheEcosystemFlag(t *testing.T) {
	rows := func(vars map[string]string, args ...string) map[string]check.Result {
		t.Helper()
		var out, errb servertest.SyncBuffer
		code := runWithEnv(t.Context(), &out, &errb, "", vars, append([]string{"check", "--json", "--timeout", "200ms"}, args...)...)
		if code == 2 {
			t.Fatalf("%q: usage error %q", args, errb.String())
		}
		got := map[string]check.Result{}
		dec := json.NewDecoder(strings.NewReader(out.String()))
		for dec.More() {
			var r check.Result
			if err := dec.Decode(&r); err != nil {
				t.Fatal(err)
			}
			got[r.Name] = r
		}
		return got
	}
	got := rows(nil)
	want := map[string]string{"roomcast websocket": "127.0.0.1:8690", "roomcast admin": "127.0.0.1:9090", "roomcast nats": "127.0.0.1:4222"}
	if len(got) != len(want) {
		t.Fatalf("default rows %+v", got)
	}
	for name, addr := range want {
		if got[name].Addr != addr {
			t.Errorf("default %s at %q, want %s", name, got[name].Addr, addr)
		}
	}
	got = rows(map[string]string{"ROOMCAST_LISTEN": "127.0.0.1:18690", "PROMETHEUS_PORT": "19090", "ROOMCAST_NATS": "nats://10.0.0.1:4222"})
	if len(got) != 2 || got["roomcast websocket"].Addr != "127.0.0.1:18690" || got["roomcast admin"].Addr != "127.0.0.1:19090" {
		t.Errorf("from the environment: %+v", got)
	}
	if got := rows(nil, "--ecosystem"); got["mahavishnu"].Addr != "127.0.0.1:8690" || len(got) != len(check.Ecosystem) {
		t.Errorf("--ecosystem: %+v", got)
	}
}

// check --free reports every taken port of the node at once, the
// NATS and admin ports too.
func TestCheckFreeCoversAllThreePorts(t *testing.T) {
	addrs := servertest.TakenAddrs(t, 3)
	code, stdout, stderr := runCmd(t.Context(), "", "check", "--free", "--listen", addrs[0], "--admin-listen", addrs[1], "--nats-listen", addrs[2])
	if code != 1 || !strings.Contains(stderr, "3 of 3 ports are taken") {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	for _, a := range addrs {
		if !strings.Contains(stdout, a) {
			t.Errorf("table lacks %s: %q", a, stdout)
		}
	}
}
