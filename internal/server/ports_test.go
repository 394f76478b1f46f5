package server_test

import (
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
