package server_test

import (
	"log/slog"
	"net"
	"strings"
	"testing"

	"github.com/roomcast/roomcast/internal/config"
	"github.com/roomcast/roomcast/internal/server"
	"github.com/roomcast/roomcast/internal/servertest"
)

// A node whose port is taken fails at once, naming the flag and the
// address, for each of its three listeners. (The embedded NATS server on
// its own would only give up after its start-up timeout, saying it was not
// ready: the message shows the port was checked first.)
func TestTakenPortsFailAtOnceAndClearly(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	addr := taken.Addr().String()
	for flag, set := range map[string]func(*config.Serve){
		"--listen":       func(c *config.Serve) { c.Listen = addr },
		"--admin-listen": func(c *config.Serve) { c.AdminListen = addr },
		"--nats-listen":  func(c *config.Serve) { c.NATSListen = addr },
	} {
		cfg := servertest.Config(t)
		set(cfg)
		srv, err := server.Start(t.Context(), cfg, servertest.Logger())
		if err == nil {
			srv.Shutdown()
			t.Fatalf("%s on a taken port: started", flag)
		}
		if !strings.Contains(err.Error(), flag) || !strings.Contains(err.Error(), addr+" is already in use") {
			t.Fatalf("%s on a taken port: %v; want the flag and the address named", flag, err)
		}
	}
}

// With all three ports taken, the node says so for all three at once
// (not the first only, to be met again on the next start), with a hint
// whose check --free command lists the same ports.
func TestTakenPortsAreReportedAllAtOnce(t *testing.T) {
	addrs := servertest.TakenAddrs(t, 3)
	cfg := servertest.Config(t)
	cfg.Listen, cfg.AdminListen, cfg.NATSListen = addrs[0], addrs[1], addrs[2]
	srv, err := server.Start(t.Context(), cfg, servertest.Logger())
	if err == nil {
		srv.Shutdown()
		t.Fatal("started on taken ports")
	}
	msg := err.Error()
	for i, flag := range []string{"--listen", "--admin-listen", "--nats-listen"} {
		if !strings.Contains(msg, flag+"): "+addrs[i]+" is already in use") {
			t.Errorf("%s at %s not named: %v", flag, addrs[i], err)
		}
	}
	if strings.Count(msg, "roomcast check --free") != 1 || !strings.Contains(msg, "--nats-listen or ROOMCAST_") {
		t.Errorf("want one hint naming check --free with the address flags: %v", err)
	}
}

// The start-up log gives the dashboard's URL (on loopback for a listener
// on every interface); none with --dashboard=false.
func TestStartupLogGivesTheDashboardURL(t *testing.T) {
	var logs servertest.SyncBuffer
	srv := servertest.StartLogged(t, nil, nil, slog.New(slog.NewTextHandler(&logs, nil)))
	want := "dashboard at http://" + srv.WSAddr() + "/"
	if !strings.Contains(logs.String(), want) {
		t.Fatalf("log %q; want %q", logs.String(), want)
	}
	for addr, url := range map[string]string{
		"0.0.0.0:8690": "http://127.0.0.1:8690/", "[::]:8690": "http://[::1]:8690/",
		"10.1.2.3:443": "http://10.1.2.3:443/", "[::1]:80": "http://[::1]:80/",
	} {
		if got := server.BrowserURL(false, addr); got != url {
			t.Errorf("%s: %q, want %q", addr, got, url)
		}
	}
	if got := server.BrowserURL(true, "127.0.0.1:8443"); got != "https://127.0.0.1:8443/" {
		t.Errorf("TLS: %q", got)
	}
	var quiet servertest.SyncBuffer
	servertest.StartLogged(t, nil, func(c *config.Serve) { c.Dashboard = false }, slog.New(slog.NewTextHandler(&quiet, nil)))
	if strings.Contains(quiet.String(), "dashboard at") {
		t.Fatalf("--dashboard=false logged a dashboard: %q", quiet.String())
	}
}
