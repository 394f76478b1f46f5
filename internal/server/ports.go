package server

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"

	"github.com/roomcast/roomcast/internal/config"
)

// listen opens a TCP listener for what (the WebSocket listener, the admin
// listener), saying plainly when the port is taken.
func listen(what, addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, portError(what, addr, err)
	}
	return ln, nil
}

// portsHint is what to do about taken ports: check --free reads serve's
// address flags and variables, so it lists the same ports.
const portsHint = "another roomcast or another process holds them: stop it or choose free addresses; " +
	"roomcast check --free, given the same --listen, --admin-listen and --nats-listen or ROOMCAST_* variables, lists every taken one"

// nodePort is one of the ports a node listens on.
type nodePort struct{ what, addr string }

// nodePorts are the node's fixed ports: its WebSocket and admin listeners,
// and the embedded NATS server's when it has one.
func nodePorts(cfg *config.Serve) []nodePort {
	out := []nodePort{
		{"WebSocket listener (--listen)", cfg.Listen},
		{"admin listener (--admin-listen)", cfg.AdminAddr()},
	}
	if cfg.Embedded() {
		out = append(out, nodePort{"embedded NATS (--nats-listen)", cfg.NATSListen})
	}
	return out
}

// checkPorts fails before anything starts when any of the node's ports is
// taken, naming every taken one at once (not the first only, to be met
// again on the next start), and any other listen error.
func checkPorts(cfg *config.Serve) error {
	var taken []string
	var errs []error
	for _, p := range nodePorts(cfg) {
		if strings.HasSuffix(p.addr, ":0") || strings.HasSuffix(p.addr, ":-1") {
			continue
		}
		ln, err := net.Listen("tcp", p.addr)
		switch {
		case err == nil:
			_ = ln.Close()
		case errors.Is(err, syscall.EADDRINUSE):
			taken = append(taken, fmt.Sprintf("%s: %s is already in use", p.what, p.addr))
		default:
			errs = append(errs, fmt.Errorf("%s: %w", p.what, err))
		}
	}
	if len(taken) > 0 {
		errs = append([]error{fmt.Errorf("%s (%s)", strings.Join(taken, "; "), portsHint)}, errs...)
	}
	return errors.Join(errs...)
}

// portError names the flag's listener and, for a taken port, what to do.
func portError(what, addr string, err error) error {
	if errors.Is(err, syscall.EADDRINUSE) {
		return fmt.Errorf("%s: %s is already in use (%s): %w", what, addr, portsHint, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}
